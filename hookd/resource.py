"""A hook shaped like the platform's web hook resource, with its per-event statuses (JSON-ready);
and a recorded delivery with its attempts.

One function builds it for `hookd hooks ... --json`, for the admin API and for the body of a ping (the
one place this shape is built). `settings.ordered` is the effective choice: the hook's own, else the
installation's `delivery.ordered_default`, which callers that have the settings pass. The secret (`salt`, also
under `secret`, and as `secret_whsec` in the Standard Webhooks form that the standardwebhooks and svix
libraries take) and the basic-auth password (`settings.basic_auth_data`) appear only when the caller
asks to reveal them. A previous secret still valid during a rotation overlap is never shown, only
when it stops being valid.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hookd.config import DEFAULT_ORDERED
from hookd.dispatch import expand
from hookd.signing import whsec
from hookd.state import queries
from hookd.state.db import Database
from hookd.subscriptions.model import Hook


def iso_time(moment: datetime | None) -> str | None:
    """JSON timestamps: ISO 8601 UTC with milliseconds and a `Z`, e.g. `2026-11-29T02:54:25.101Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hook_resource(
    hook: Hook,
    *,
    ordered_default: bool = DEFAULT_ORDERED,
    reveal: bool = False,
    statuses: Sequence[queries.Status] | None = None,
    for_receiver: bool = False,
) -> dict[str, Any]:
    """The platform's web hook resource for `hook`; `created_at`/`updated_at` when the source keeps them.
    `ordered_default`: the installation's `delivery.ordered_default`, shown for a hook without a choice.
    `for_receiver`: the body of a ping, which the receiver reads: without the operator's `allow_private`."""
    settings: dict[str, Any] = {"url": hook.url, "basic_auth": hook.basic_auth is not None}
    if reveal and hook.basic_auth is not None:
        pair = f"{hook.basic_auth.username}:{hook.basic_auth.password}".encode()
        settings["basic_auth_data"] = base64.b64encode(pair).decode("ascii")
    settings["insecure_ssl"] = hook.insecure_ssl
    settings["ordered"] = ordered_default if hook.ordered is None else hook.ordered
    settings["rate_limit"] = hook.rate_limit
    if hook.allow_private and not for_receiver:  # the operator's setting: shown to admins when set, never to receivers
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
    if hook.created_at is not None:
        resource["created_at"], resource["updated_at"] = iso_time(hook.created_at), iso_time(hook.updated_at)
    if statuses is not None:
        resource["statuses"] = [status_resource(s) for s in statuses]
    return resource


def status_resource(status: queries.Status) -> dict[str, Any]:
    """One event's last trigger, as the platform's hook resource lists it under `statuses`."""
    return {
        "name": status.event,
        "last_trigger_status": status.last_trigger_status,
        "last_trigger_time": iso_time(status.last_trigger_time),
        "last_response_code": status.last_response_code,
        "last_response": status.last_response,
    }


def delivery_resource(row: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A recorded delivery (a `queries.deliveries` or `queries.delivery` row) JSON-ready, never its
    body; with `attempts` (`queries.attempts`), its attempt log under `attempt_log`, oldest first.
    `hookd deliveries ... --json` and the admin API print this same shape."""
    resource = {k: (iso_time(v) if k in ("created_at", "updated_at") else v) for k, v in row.items() if k != "body"}
    if attempts is not None:
        resource["attempt_log"] = [
            {**{k: v for k, v in a.items() if k != "at"}, "at": iso_time(a["at"])} for a in attempts
        ]
    return resource


def hook_statuses(state: Database | None, hook: Hook) -> list[queries.Status]:
    """Per event the hook subscribes to (groups expanded, catalogue order), its last trigger."""
    return queries.statuses(state, hook.id, expand(hook.events))
