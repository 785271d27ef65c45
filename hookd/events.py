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
from hookd.ordering import entity_of
from hookd.outcomes import Invalid


@dataclass(frozen=True, slots=True)
class EventInfo:
    """One event of the catalogue: its name on the wire, its label in the console, what it means."""

    name: str
    label: str
    description: str


@dataclass(frozen=True, slots=True)
class EventGroup:
    """A group of events a hook may subscribe to as a whole (`job` stands for every job event)."""

    id: str
    name: str  # the platform's `group_name`: "Job"
    label: str  # the group box: "All Job Notifications"
    events: tuple[EventInfo, ...]


#: The catalogue, in the platform's order (its Service Hooks page): the one place events are listed.
CATALOGUE: tuple[EventGroup, ...] = (
    EventGroup(
        "job",
        "Job",
        "All Job Notifications",
        (
            EventInfo("job.submitted", "Job Submitted", "Job was submitted by user or schedule for execution."),
            EventInfo("job.started", "Job Started", "Job execution started."),
            EventInfo("job.stopped", "Job Stopped", "Job stopped by user."),
            EventInfo("job.completed", "Job Completed", "Job completed successfully."),
            EventInfo("job.failed", "Job Failed", "Job completed with failure."),
        ),
    ),
    EventGroup(
        "cluster",
        "Cluster",
        "All Cluster Notifications",
        (
            EventInfo("cluster.requested", "Cluster Requested", "Cluster creation requested by user or schedule."),
            EventInfo("cluster.available", "Cluster Available", "Cluster is available and jobs can be run on it."),
            EventInfo("cluster.terminated", "Cluster Terminated", "Cluster is terminated."),
            EventInfo("cluster.idled", "Cluster Idled", "No activity on the cluster for a specified interval."),
            EventInfo("cluster.error", "Cluster Error", "Cluster error occurred and jobs can't be executed on it."),
        ),
    ),
    EventGroup(
        "hook",
        "Hook",
        "All Hook Notifications",
        (
            EventInfo("hook.failing", "Hook Failing", "A hook's deliveries keep failing: its circuit opened."),
            EventInfo(
                "hook.disabled",
                "Hook Disabled",
                "A hook was disabled automatically: its receiver answered 410 Gone, or it failed for too long.",
            ),
            EventInfo(
                "hook.recovered",
                "Hook Recovered",
                "A hook delivers again: its first success after failing, or it was enabled after being disabled.",
            ),
        ),
    ),
)


def _group_events(group_id: str) -> tuple[str, ...]:
    return next(tuple(e.name for e in g.events) for g in CATALOGUE if g.id == group_id)


JOB_EVENTS = _group_events("job")
CLUSTER_EVENTS = _group_events("cluster")
#: hookd's own operational notifications about a hook, published by hookd itself (daemon/notices.py).
HOOK_EVENTS = _group_events("hook")
HOOK_FAILING, HOOK_DISABLED, HOOK_RECOVERED = HOOK_EVENTS
PING = "ping"
EVENTS: frozenset[str] = frozenset(e.name for g in CATALOGUE for e in g.events)
GROUPS: Mapping[str, frozenset[str]] = {g.id: frozenset(e.name for e in g.events) for g in CATALOGUE}
#: Names a hook may list in `events`: every event and every group.
SUBSCRIBABLE: frozenset[str] = EVENTS | frozenset(GROUPS)
#: Each event's place in the catalogue, for listing events in the platform's order.
CATALOGUE_ORDER: Mapping[str, int] = {e.name: index for index, e in enumerate(e for g in CATALOGUE for e in g.events)}
#: What the console shows for an event or a group name.
LABELS: Mapping[str, str] = {
    **{g.id: g.label for g in CATALOGUE},
    **{e.name: e.label for g in CATALOGUE for e in g.events},
}


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event as hookd understands it; `body` is forwarded byte for byte."""

    name: str
    event_id: str
    account_id: str
    body: bytes
    timestamp: datetime | None = None
    subject: str | None = None  # a `hook.*` event: the id of the hook it is about (never sent it)
    entity: str | None = None  # what it is about, for ordered delivery (hookd.ordering.entity_of)


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
        subject=_subject(parsed) if routing_key in HOOK_EVENTS else None,
        entity=entity_of(routing_key, parsed, headers),
    )


def routed(
    name: str,
    body: bytes,
    message_id: str | None,
    headers: Mapping[str, Any],
    *,
    entity_header: str,
    timestamp: datetime | None = None,
) -> Event | None:
    """An event the router already decoded (a partition's message): rebuilt from its headers without
    parsing the body again (only a `hook.*` notification's body is read, for its subject). None when
    the headers are not what the router writes (the caller decodes it the long way)."""
    account_id = normalize_account(headers.get("account_id"))
    entity = headers.get(entity_header)
    if name not in EVENTS or not message_id or account_id is None:
        return None
    subject = None
    if name in HOOK_EVENTS:
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        subject = _subject(parsed) if isinstance(parsed, dict) else None
    return Event(
        name=name,
        event_id=str(message_id).strip(),
        account_id=account_id,
        body=body,
        timestamp=timestamp,
        subject=subject,
        entity=entity if isinstance(entity, str) and entity else None,
    )


def _subject(body: Mapping[str, Any]) -> str | None:
    """The hook a `hook.*` notification is about: `hook.id` of its body (the hook resource)."""
    hook = body.get("hook")
    return normalize_account(hook.get("id")) if isinstance(hook, Mapping) else None
