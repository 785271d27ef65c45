"""What `hookd status` reads from the state database besides the workers' heartbeats: the hooks in
trouble (an open circuit, failing, disabled) with their last failed attempt, and the oldest delivery
waiting for a durable retry. Read only: a status command never writes or migrates a shared database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hookd.outcomes import Circuit
from hookd.state.db import Database, Transaction, parse_utc

#: Hook health breaker states that mean "in trouble" (`hookd_hook_health.breaker`).
_TRIPPED = (Circuit.OPEN.value, Circuit.HALF_OPEN.value)


@dataclass(frozen=True, slots=True)
class LastFailure:
    """A hook's most recent failed attempt."""

    at: datetime
    status: int | None
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class Trouble:
    """A hook in trouble: its circuit (`open`, `half_open` or None), its notice state (`failing`,
    `disabled` or None) with reason and since when, and its last failed attempt."""

    hook_id: str
    circuit: str | None
    circuit_since: datetime | None
    notice: str | None
    notice_reason: str | None
    notice_since: datetime | None
    last_failure: LastFailure | None


@dataclass(frozen=True, slots=True)
class Waiting:
    """The delivery that has waited longest for a durable retry."""

    delivery_id: str
    hook_id: str
    event: str
    attempts: int
    since: datetime


def troubles(db: Database) -> list[Trouble]:
    """Hooks with a tripped circuit (`hookd_hook_health`) or a `failing`/`disabled` notice state
    (`hookd_hook_notices`, every worker's view), by hook id."""
    with db.transaction() as tx:
        health = tx.fetchdicts(
            "SELECT hook_id, breaker, opened_at, failing_since FROM hookd_hook_health WHERE breaker IN (?, ?)", _TRIPPED
        )
        states = tx.fetchdicts(
            "SELECT hook_id, state, reason, since FROM hookd_hook_notices WHERE state IN ('failing', 'disabled')"
        )
        circuits = {str(r["hook_id"]): r for r in health}
        notices = {str(r["hook_id"]): r for r in states}
        found = []
        for hook_id in sorted(circuits.keys() | notices.keys(), key=_hook_order):
            circuit, notice = circuits.get(hook_id), notices.get(hook_id)
            found.append(
                Trouble(
                    hook_id=hook_id,
                    circuit=None if circuit is None else str(circuit["breaker"]),
                    circuit_since=None
                    if circuit is None
                    else _moment(circuit["opened_at"] or circuit["failing_since"]),
                    notice=None if notice is None else str(notice["state"]),
                    notice_reason=None if notice is None else notice["reason"],
                    notice_since=None if notice is None else _moment(notice["since"]),
                    last_failure=_last_failure(tx, hook_id),
                )
            )
    return found


def oldest_waiting(db: Database) -> Waiting | None:
    """The delivery recorded as waiting for a retry (`retrying`) the longest, by its first record."""
    with db.transaction() as tx:
        rows = tx.fetchdicts(
            "SELECT delivery_id, hook_id, event, attempts, created_at FROM hookd_deliveries"
            " WHERE state = 'retrying' ORDER BY created_at, delivery_id LIMIT 1"
        )
    if not rows:
        return None
    row = rows[0]
    return Waiting(
        str(row["delivery_id"]),
        str(row["hook_id"]),
        str(row["event"]),
        int(row["attempts"]),
        parse_utc(row["created_at"]),
    )


def _last_failure(tx: Transaction, hook_id: str) -> LastFailure | None:
    rows = tx.fetchdicts(
        "SELECT created_at, status, outcome, error FROM hookd_attempts WHERE hook_id = ? AND outcome <> 'delivered'"
        " ORDER BY created_at DESC, id DESC LIMIT 1",
        (hook_id,),
    )
    if not rows:
        return None
    row = rows[0]
    return LastFailure(parse_utc(row["created_at"]), row["status"], str(row["outcome"]), row["error"])


def _moment(value: Any) -> datetime | None:
    return None if value is None else parse_utc(value)


def _hook_order(hook_id: str) -> tuple[int, str]:
    """Numeric ids in numeric order, then the others."""
    return (int(hook_id), "") if hook_id.isdigit() else (1 << 62, hook_id)
