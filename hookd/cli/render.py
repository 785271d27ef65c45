"""How the hook commands show hooks to people: key/value blocks and tables, and the hooks-file export."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import yaml

from hookd.signing import whsec
from hookd.subscriptions.model import Hook

from .output import NONE, block, excerpt, human_time, table


def render_hook(hook: Hook, title: str, *, reveal: bool, times: tuple[datetime | None, datetime | None] | None) -> str:
    """A hook as a key/value block for people."""
    auth = hook.basic_auth
    if auth is None:
        shown_auth = NONE
    elif reveal:
        shown_auth = f"{auth.username}:{auth.password}"
    else:
        shown_auth = f"{auth.username}:*** (--reveal-secret shows the password)"
    fields: list[tuple[str, object]] = [
        ("account", hook.account_id),
        ("name", hook.display_name),
        ("url", hook.url),
        ("events", ", ".join(hook.events)),
        ("active", hook.active),
        ("basic auth", shown_auth),
        ("insecure ssl", hook.insecure_ssl),
        ("allow private", hook.allow_private),
        ("secret", hook.secret if reveal else "*** (--reveal-secret shows it)"),
    ]
    if reveal:
        fields.append(("secret (whsec)", whsec(hook.secret)))
    if hook.old_secrets:
        fields.append(("previous secret valid until", hook.old_secrets_expire_at))
    if times is not None:
        fields += [("created", times[0]), ("updated", times[1])]
    return block(title, fields)


def render_statuses(statuses: Sequence[dict[str, Any]]) -> str:
    rows = [
        (
            s["name"],
            s["last_trigger_status"],
            human_time(s["last_trigger_time"]),
            s["last_response_code"],
            excerpt(s["last_response"], 60),
        )
        for s in statuses
    ]
    return table(["EVENT", "LAST STATUS", "LAST TRIGGER", "CODE", "LAST RESPONSE"], rows)


def render_list(hooks: Sequence[Hook]) -> str:
    rows = [(h.id, h.account_id, h.active, ",".join(h.events), h.url, h.name or NONE) for h in hooks]
    return table(["ID", "ACCOUNT", "ACTIVE", "EVENTS", "URL", "NAME"], rows)


def export_document(hooks: Iterable[Hook]) -> str:
    """The hooks in the hooks-file format (`config/hooks.yaml`), secrets inline, for `hooks import`."""
    entries = []
    for hook in hooks:
        entry: dict[str, Any] = {"id": hook.id, "account_id": hook.account_id}
        if hook.name:
            entry["name"] = hook.name
        entry.update({"url": hook.url, "events": list(hook.events), "active": hook.active, "secret": hook.secret})
        if hook.basic_auth is not None:
            entry["basic_auth"] = {"username": hook.basic_auth.username, "password": hook.basic_auth.password}
        entry["insecure_ssl"] = hook.insecure_ssl
        if hook.allow_private:
            entry["allow_private"] = True
        entries.append(entry)
    header = "# hookd hooks export: the hooks-file format, secrets included. Keep it private.\n"
    body = yaml.safe_dump({"hooks": entries}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000)
    return header + body
