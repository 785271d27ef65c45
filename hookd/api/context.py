"""What every route needs: the settings, the store, the state database, `Admin`; and JSON answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from flask import Response, current_app

from hookd.api.admin import Admin
from hookd.config import Settings
from hookd.state.db import Database
from hookd.subscriptions.sql_store import SqlStore

JSON = "application/json"
_EXTENSION = "hookd"


@dataclass(frozen=True)
class Context:
    """Built once by `create_app`; shared by every request thread (each piece is thread-safe)."""

    settings: Settings
    store: SqlStore
    state: Database
    admin: Admin

    @property
    def db(self) -> Database:
        """The hooks database: API keys, sessions and rate counters live beside the hooks."""
        return self.store.db


def context() -> Context:
    return cast(Context, current_app.extensions[_EXTENSION])


def install(app: Any, ctx: Context) -> None:
    app.extensions[_EXTENSION] = ctx


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """`data` as JSON (keys in the resource's own order, UTF-8 as is; should a value hold text UTF-8
    cannot carry, an unpaired surrogate, the whole answer is escaped to ASCII instead of failing)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        encoded = body.encode("utf-8")
    except UnicodeEncodeError:
        encoded = json.dumps(data, separators=(",", ":")).encode("ascii")
    return Response(encoded, status=status, headers=dict(headers or {}), mimetype=JSON)
