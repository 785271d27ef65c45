"""A hook shaped like the platform's web hook resource, its per-event statuses, and the hooks-file export.

The secret (`salt`, also under `secret`, and as `secret_whsec` in the Standard Webhooks form that the
standardwebhooks and svix libraries take) and the basic-auth password (`settings.basic_auth_data`)
appear only when the caller asks to reveal them: create, reset-secret, `show --json` and
`show --reveal-secret`. A previous secret still valid during a rotation overlap is never shown, only
when it stops being valid.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import yaml

from hookd.db import Database
from hookd.events import CLUSTER_EVENTS, GROUPS, JOB_EVENTS
from hookd.signing import whsec
from hookd.subscriptions.model import Hook

from .output import NONE, block, excerpt, human_time, iso_time, table

_CATALOGUE_ORDER = {name: index for index, name in enumerate(JOB_EVENTS + CLUSTER_EVENTS)}


def hook_resource(
    hook: Hook,
    *,
    reveal: bool = False,
    times: tuple[datetime | None, datetime | None] | None = None,
    statuses: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The platform's web hook resource for `hook` (JSON-ready)."""
    settings: dict[str, Any] = {"url": hook.url, "basic_auth": hook.basic_auth is not None}
    if reveal and hook.basic_auth is not None:
        pair = f"{hook.basic_auth.username}:{hook.basic_auth.password}".encode()
        settings["basic_auth_data"] = base64.b64encode(pair).decode("ascii")
    settings["insecure_ssl"] = hook.insecure_ssl
    if hook.allow_private:  # hookd's own operator setting: absent from the platform's shape unless set
        settings["allow_private"] = True
    resource: dict[str, Any] = {
        "id": hook.id,
        "type": "web",
        "name": hook.display_name,
        "active": hook.active,
        "events": list(hook.events),
        "settings": settings,
        "account_id": hook.account_id,
    }
    if reveal:
        resource["salt"] = hook.secret
        resource["secret"] = hook.secret
        resource["secret_whsec"] = whsec(hook.secret)
    if hook.old_secrets:
        resource["previous_secret_expires_at"] = iso_time(hook.old_secrets_expire_at)
    if times is not None:
        resource["created_at"], resource["updated_at"] = iso_time(times[0]), iso_time(times[1])
    if statuses is not None:
        resource["statuses"] = list(statuses)
    return resource


def subscribed_events(hook: Hook) -> list[str]:
    """Every event the hook receives, groups expanded, in catalogue order."""
    names: set[str] = set()
    for name in hook.events:
        names.update(GROUPS.get(name, {name}))
    return sorted(names, key=lambda n: (_CATALOGUE_ORDER.get(n, len(_CATALOGUE_ORDER)), n))


def read_statuses(state: Database | None, hook: Hook) -> list[dict[str, Any]]:
    """Per subscribed event: the last trigger's status, time and response (nulls before the first)."""
    found: dict[str, tuple[Any, ...]] = {}
    if state is not None:
        with state.transaction() as tx:
            rows = tx.fetchall(
                "SELECT event, last_trigger_status, last_trigger_time, last_response_code, last_response"
                " FROM hookd_delivery_status WHERE hook_id = ?",
                (hook.id,),
            )
        found = {str(row[0]): row[1:] for row in rows}
    statuses = []
    for name in subscribed_events(hook):
        status, at, code, response = found.get(name, (None, None, None, None))
        statuses.append(
            {
                "name": name,
                "last_trigger_status": status,
                "last_trigger_time": iso_time(at),
                "last_response_code": code,
                "last_response": response,
            }
        )
    return statuses


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
