"""The `hookd_hooks` table: its columns and statements, and a `Hook` as a row and back, by column
name (never by position). Credentials go through the `Keyring` here: sealed into a row, and opened
before a row becomes a `Hook` (`SqlStore._opened`)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hookd.cipher import Keyring, is_encrypted
from hookd.state.db import parse_utc
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import Problem

#: The hook's own columns, written from a `Hook` (`row`) and read back into one (`hook`).
FIELDS = (
    "id",
    "account_id",
    "name",
    "url",
    "events",
    "active",
    "secret",
    "basic_auth_user",
    "basic_auth_password",
    "insecure_ssl",
    "allow_private",
    "ordered",
    "rate_limit",
)
#: Every column a read needs: the fields, the rotation overlap (written by `reset_secret` only) and times.
COLUMNS = (*FIELDS, "previous_secret", "previous_secret_expires_at", "created_at", "updated_at")
#: What `update` may change: everything but the id, the account and the secret (`reset_secret`).
UPDATABLE = tuple(c for c in FIELDS if c not in ("id", "account_id", "secret"))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM hookd_hooks"  # noqa: S608 (fixed column names only)
INSERT = (
    f"INSERT INTO hookd_hooks ({', '.join(FIELDS)}, created_at, updated_at)"  # noqa: S608 (fixed text)
    f" VALUES ({', '.join('?' * (len(FIELDS) + 2))})"
)
#: The columns holding credentials: sealed with the key when one is configured (`hookd.cipher`).
SECRET_COLUMNS = ("secret", "previous_secret", "basic_auth_password")
# An import replaces every column but created_at; whether a rotation overlap survives (previous_secret)
# is decided in Python (`_kept_overlap`): encrypted values cannot be compared in SQL.
IMPORTED = (*FIELDS, "previous_secret", "previous_secret_expires_at")
UPSERT = (
    f"INSERT INTO hookd_hooks ({', '.join(IMPORTED)}, created_at, updated_at)"  # noqa: S608 (fixed text)
    f" VALUES ({', '.join('?' * (len(IMPORTED) + 2))})"
    " ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in (*IMPORTED[1:], "updated_at"))
)
SELECT_SECRETS = f"SELECT id, {', '.join(SECRET_COLUMNS)} FROM hookd_hooks"  # noqa: S608 (fixed text)
UPDATE = f"UPDATE hookd_hooks SET {', '.join(f'{c} = ?' for c in UPDATABLE)}, updated_at = ? WHERE id = ?"  # noqa: S608


def events_tuple(events: object) -> tuple[str, ...]:
    """A list or tuple as a tuple; anything else as () so validation reports "must be a non-empty list"."""
    if isinstance(events, list | tuple):
        return tuple(events)
    return ()


def unsealed_problems(hook: Hook, keyring: Keyring) -> builtins.list[Problem]:
    """Without a key, values are stored as given: one that looks encrypted would be refused when read."""
    if keyring.encrypting:
        return []
    reserved = "must not begin with 'enc:', which marks an encrypted value in the database"
    problems = [Problem("secret", reserved)] if is_encrypted(hook.secret) else []
    if hook.basic_auth is not None and is_encrypted(hook.basic_auth.password):
        problems.append(Problem("basic_auth.password", reserved))
    return problems


def row(hook: Hook, keyring: Keyring) -> dict[str, object]:
    """The hook's own column values, by column name, in `FIELDS` order; credentials sealed."""
    auth = hook.basic_auth
    return {
        "id": hook.id,
        "account_id": hook.account_id,
        "name": hook.name,
        "url": hook.url,
        "events": json.dumps(builtins.list(hook.events)),
        "active": hook.active,
        "secret": keyring.seal(hook.secret, hook_id=hook.id, column="secret"),
        "basic_auth_user": None if auth is None else auth.username,
        "basic_auth_password": None
        if auth is None
        else keyring.seal(auth.password, hook_id=hook.id, column="basic_auth_password"),
        "insecure_ssl": hook.insecure_ssl,
        "allow_private": hook.allow_private,
        "ordered": hook.ordered,
        "rate_limit": hook.rate_limit,
    }


def hook(row: Mapping[str, Any], now: datetime | None = None) -> Hook:
    """An opened row (`SqlStore._opened`) as a `Hook`, leniently: a malformed `events` value reads as
    () and fails validation.

    A previous secret whose overlap has not ended yet becomes `old_secrets`; an expired one is ignored.
    """
    previous = row["previous_secret"]
    expiry = overlap_end(previous, row["previous_secret_expires_at"], now or datetime.now(UTC))
    try:
        events = json.loads(row["events"]) if isinstance(row["events"], str) else None
    except ValueError:
        events = None
    user = row["basic_auth_user"]
    return Hook(
        id=str(row["id"]),
        account_id=str(row["account_id"]),
        url=row["url"],
        events=events_tuple(events),
        secret=row["secret"],
        name=row["name"] or "",
        active=bool(row["active"]),
        basic_auth=None if user is None else BasicAuth(user, row["basic_auth_password"] or ""),
        insecure_ssl=bool(row["insecure_ssl"]),
        allow_private=bool(row["allow_private"]),
        ordered=None if row["ordered"] is None else bool(row["ordered"]),
        rate_limit=None if row["rate_limit"] is None else float(row["rate_limit"]),
        old_secrets=() if expiry is None else (previous,),
        old_secrets_expire_at=expiry,
        created_at=moment(row["created_at"]),
        updated_at=moment(row["updated_at"]),
    )


def moment(value: object) -> datetime | None:
    return None if value is None else parse_utc(value)


def overlap_end(previous: object, until: object, now: datetime) -> datetime | None:
    """When the rotation overlap of a row ends, if it has a previous secret and the overlap lasts."""
    if not isinstance(previous, str) or not previous or until is None:
        return None
    try:
        expiry = parse_utc(until)
    except (TypeError, ValueError):
        return None  # a hand-written, unreadable expiry: treat the overlap as over rather than endless
    return expiry if expiry > now else None
