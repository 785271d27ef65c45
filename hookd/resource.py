"""A hook shaped like the platform's web hook resource, its per-event statuses, and the hooks-file export.

The secret (`salt`, also under `secret`, and as `secret_whsec` in the Standard Webhooks form that the
standardwebhooks and svix libraries take) and the basic-auth password (`settings.basic_auth_data`)
appear only when the caller asks to reveal them: create, reset-secret, `show --json` and
`show --reveal-secret`. A previous secret still valid during a rotation overlap is never shown, only
when it stops being valid.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hookd.cli.output import iso_time
from hookd.events import CLUSTER_EVENTS, GROUPS, JOB_EVENTS
from hookd.signing import whsec
from hookd.state.db import Database
from hookd.subscriptions.model import Hook

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
