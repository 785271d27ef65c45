"""The event catalogue and the decoding of incoming scheduler messages (pure, no I/O).

The scheduler publishes one message per lifecycle change: routing key = event name, body = the API
resource JSON object, `message_id` = event id, header `account_id`. Anything else breaks the contract
and is refused with a stable reason code (`outcomes.Invalid`) so it can be parked on `<prefix>.invalid`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hookd.errors import EventError
from hookd.outcomes import Invalid

JOB_EVENTS = ("job.submitted", "job.started", "job.stopped", "job.completed", "job.failed")
CLUSTER_EVENTS = (
    "cluster.requested",
    "cluster.available",
    "cluster.terminated",
    "cluster.idled",
    "cluster.error",
)
PING = "ping"
EVENTS: frozenset[str] = frozenset(JOB_EVENTS + CLUSTER_EVENTS)
GROUPS: Mapping[str, frozenset[str]] = {
    "job": frozenset(JOB_EVENTS),
    "cluster": frozenset(CLUSTER_EVENTS),
}
#: Names a hook may list in `events`: every event and both groups.
SUBSCRIBABLE: frozenset[str] = EVENTS | frozenset(GROUPS)
#: Each event's place in the catalogue, for listing events in the platform's order.
CATALOGUE_ORDER: Mapping[str, int] = {name: index for index, name in enumerate(JOB_EVENTS + CLUSTER_EVENTS)}


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event as hookd understands it; `body` is forwarded byte for byte."""

    name: str
    event_id: str
    account_id: str
    body: bytes
    timestamp: datetime | None = None


def normalize_account(value: object) -> str | None:
    """Account ids may be strings or integers on the wire and in hook files; compare them as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def decode(
    routing_key: str,
    body: bytes,
    message_id: str | None,
    headers: Mapping[str, Any] | None,
    *,
    max_bytes: int,
    timestamp: datetime | None = None,
) -> Event:
    """Validate one scheduler message against the contract; raise `EventError` with a reason code."""
    if len(body) > max_bytes:
        raise EventError(Invalid.TOO_LARGE, f"body is {len(body)} bytes, limit is {max_bytes}")
    if routing_key not in EVENTS:
        raise EventError(Invalid.UNKNOWN_EVENT, f"routing key {routing_key[:100]!r} is not a known event")
    if not message_id or not str(message_id).strip():
        raise EventError(Invalid.MISSING_ID, "message_id (the event id) is required")
    account = normalize_account((headers or {}).get("account_id"))
    if account is None:
        raise EventError(Invalid.MISSING_ACCOUNT, "header account_id (string or integer) is required")
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EventError(Invalid.NOT_JSON, f"body is not UTF-8 JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise EventError(Invalid.NOT_JSON, "body nests too deeply to be an API resource") from None
    if not isinstance(parsed, dict):
        raise EventError(Invalid.NOT_OBJECT, f"body is a JSON {type(parsed).__name__}, not an object")
    return Event(
        name=routing_key,
        event_id=str(message_id).strip(),
        account_id=account,
        body=body,
        timestamp=timestamp,
    )
