"""Reading the state tables that `history.py` writes: the one place their columns are read.

`hookd_deliveries` (one row per delivery: state, attempts, body), `hookd_attempts` (the attempt
log), `hookd_delivery_status` (per hook and event: the last trigger) and `hookd_hook_health`
(breaker state and automatic disabling). The commands, `hookd explain` and the admin API read them
through these functions, which return plain values with aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hookd.outcomes import Circuit
from hookd.state.db import Database, parse_utc

_DELIVERY_COLUMNS = (
    "delivery_id, hook_id, event, event_id, account_id, state, attempts, last_status, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Health:
    """A hook's row of `hookd_hook_health` (no row: healthy)."""

    breaker: str = Circuit.CLOSED.value
    opened_at: datetime | None = None
    disabled_reason: str | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """The last trigger of one event of a hook (all None before the first)."""

    event: str
    last_trigger_status: str | None = None
    last_trigger_time: datetime | None = None
    last_response_code: int | None = None
    last_response: str | None = None


def _moment(value: object) -> datetime | None:
    return None if value is None else parse_utc(value)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery row with its timestamps as datetimes."""
    return {k: (_moment(v) if k in ("created_at", "updated_at") else v) for k, v in row.items()}


def deliveries(
    db: Database,
    *,
    hook_id: str | None = None,
    state: str | None = None,
    event: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Recorded deliveries matching every filter given, most recently updated first."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("hook_id = ?", hook_id),
        ("state = ?", state),
        ("event = ?", event),
        ("updated_at >= ?", since),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    # Only fixed fragments are joined; every value is bound.
    sql = (
        f"SELECT {_DELIVERY_COLUMNS} FROM hookd_deliveries{where}"  # noqa: S608
        " ORDER BY updated_at DESC, delivery_id DESC LIMIT ? OFFSET ?"
    )
    with db.transaction() as tx:
        return [_row(r) for r in tx.fetchdicts(sql, (*params, limit, offset))]


def delivery(db: Database, delivery_id: str, *, with_body: bool = False) -> dict[str, Any] | None:
    """One delivery row, plus `body` (with_body) or `body_bytes`; None when it is not recorded."""
    extra = "body" if with_body else "LENGTH(body) AS body_bytes"
    with db.transaction() as tx:
        found = tx.fetchdicts(
            f"SELECT {_DELIVERY_COLUMNS}, {extra} FROM hookd_deliveries WHERE delivery_id = ?",  # noqa: S608
            (delivery_id,),
        )
    if not found:
        return None
    row = _row(found[0])
    if with_body and row["body"] is not None:
        row["body"] = bytes(row["body"])  # PostgreSQL's bytea comes back as memoryview
    return row


def attempts(db: Database, delivery_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The attempt log of each delivery, oldest first (`at`, `attempt`, `status`, `duration_ms`,
    `outcome`, `error`, `response_excerpt`)."""
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return found
    marks = ", ".join("?" * len(delivery_ids))
    columns = "delivery_id, created_at, attempt, status, duration_ms, outcome, error, response_excerpt"
    order = "ORDER BY created_at, attempt, id"
    sql = f"SELECT {columns} FROM hookd_attempts WHERE delivery_id IN ({marks}) {order}"  # noqa: S608 (fixed text)
    with db.transaction() as tx:
        rows = tx.fetchdicts(sql, tuple(delivery_ids))
    for row in rows:
        at = _moment(row.pop("created_at"))
        found[row.pop("delivery_id")].append({"at": at, **row})
    return found


def statuses(db: Database | None, hook_id: str, events: Iterable[str]) -> list[Status]:
    """The last trigger of each of `events` for the hook, in the order given (empty ones included)."""
    found: dict[str, Status] = {}
    if db is not None:
        with db.transaction() as tx:
            rows = tx.fetchdicts(
                "SELECT event, last_trigger_status, last_trigger_time, last_response_code, last_response"
                " FROM hookd_delivery_status WHERE hook_id = ?",
                (hook_id,),
            )
        for row in rows:
            found[str(row["event"])] = Status(
                event=str(row["event"]),
                last_trigger_status=row["last_trigger_status"],
                last_trigger_time=_moment(row["last_trigger_time"]),
                last_response_code=row["last_response_code"],
                last_response=row["last_response"],
            )
    return [found.get(name, Status(name)) for name in events]


def health(db: Database | None, hook_ids: Iterable[str]) -> dict[str, Health]:
    """Health rows of these hooks; a state database without rows (or none at all) means healthy."""
    wanted = set(hook_ids)
    if db is None or not wanted:
        return {}
    with db.transaction() as tx:
        rows = tx.fetchdicts("SELECT hook_id, breaker, opened_at, disabled_reason, disabled_at FROM hookd_hook_health")
    return {
        str(r["hook_id"]): Health(
            breaker=str(r["breaker"]),
            opened_at=_moment(r["opened_at"]),
            disabled_reason=r["disabled_reason"] or None,
            disabled_at=_moment(r["disabled_at"]),
        )
        for r in rows
        if str(r["hook_id"]) in wanted
    }


def find_delivery(db: Database, ident: str) -> tuple[str, str, str | None] | None:
    """(event, account, hook id) of the delivery `ident` names, or (event, account, None) for an
    event id; None when the history knows neither."""
    with db.transaction() as tx:
        row = tx.fetchone("SELECT event, account_id, hook_id FROM hookd_deliveries WHERE delivery_id = ?", (ident,))
        if row is not None:
            return str(row[0]), str(row[1]), str(row[2])
        row = tx.fetchone("SELECT event, account_id FROM hookd_deliveries WHERE event_id = ? LIMIT 1", (ident,))
    return None if row is None else (str(row[0]), str(row[1]), None)


def hourly_deliveries(
    db: Database, hook_ids: Sequence[str], since: datetime
) -> dict[str, dict[datetime, tuple[int, int]]]:
    """Per hook, per hour (its start, UTC) since `since`: (delivered, failed) deliveries, by the hour of
    their last update. `failed` counts the ones given up and the ones waiting to be retried."""
    found: dict[str, dict[datetime, tuple[int, int]]] = {h: {} for h in hook_ids}
    if not hook_ids:
        return found
    marks = ", ".join("?" * len(hook_ids))
    with db.transaction() as tx:
        hour = (
            "substr(updated_at, 1, 13)"
            if tx.dialect == "sqlite"
            else "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"
        )
        rows = tx.fetchall(
            f"SELECT hook_id, {hour} AS hour, SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END),"  # noqa: S608
            f" SUM(CASE WHEN state = 'delivered' THEN 0 ELSE 1 END) FROM hookd_deliveries"
            f" WHERE hook_id IN ({marks}) AND updated_at >= ? GROUP BY hook_id, {hour}",
            (*hook_ids, since),
        )
    for hook_id, key, delivered, failed in rows:
        start = datetime.strptime(str(key), "%Y-%m-%dT%H").replace(tzinfo=UTC)
        found[str(hook_id)][start] = (int(delivered or 0), int(failed or 0))
    return found


def last_delivery(db: Database, hook_id: str) -> dict[str, Any] | None:
    """The hook's most recently updated delivery with its last attempt (`last_attempt`), or None."""
    rows = deliveries(db, hook_id=hook_id, limit=1)
    if not rows:
        return None
    log = attempts(db, [rows[0]["delivery_id"]])[rows[0]["delivery_id"]]
    return {**rows[0], "last_attempt": log[-1] if log else None}
