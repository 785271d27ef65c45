"""Delivery status and history, written off the hot path.

Records are named tuples, immutable and a sixth of a frozen dataclass's cost to build (one per
attempt, measured). The engine's event loop and the main thread only `record()` (a non-blocking hand-over,
`hookd.handoff`); one writer thread turns what accumulated into one transaction per batch: the attempt log, the
per-delivery row (state, attempts, body for redelivery) and the per hook and event status the
platform's hook resource shows. If the database is down or the queue is full, records are dropped,
never blocking or failing a delivery: history is an observation of the delivery path, not part of it.
A drop is never silent: `dropped` is exposed as `hookd_history_dropped_total`, and the writer thread
logs `history.dropped` (at most every `_DROP_REPORT_S`) with how many were lost.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from hookd import logs
from hookd.errors import StoreError
from hookd.handoff import Handoff
from hookd.outcomes import DeliveryState, Trigger, Verdict
from hookd.state.db import Database, Transaction

log = logs.get_logger("hookd.history")
_DROP_REPORT_S = 10.0
_IDLE_S = 1.0  # an idle writer still looks at its purge and drop report this often


class AttemptRecord(NamedTuple):
    """One HTTP attempt (or a refusal before any connection)."""

    delivery_id: str
    hook_id: str
    event: str
    event_id: str
    account_id: str
    attempt: int
    status: int | None
    outcome: str
    duration_ms: float
    error: str | None
    response_excerpt: str | None
    at: datetime
    body: bytes


class Settlement(NamedTuple):
    """How a delivery ended this round: delivered, waiting for a durable retry, or dead-lettered."""

    delivery_id: str
    hook_id: str
    event: str
    event_id: str
    account_id: str
    state: str
    attempts: int
    last_status: int | None
    at: datetime
    body: bytes


class HealthRecord(NamedTuple):
    """A hook's circuit breaker state or automatic disabling, for `hookd explain` and operators."""

    hook_id: str
    breaker: str
    consecutive_failures: int
    failing_since: datetime | None
    opened_at: datetime | None
    disabled_reason: str | None
    at: datetime


_Record = AttemptRecord | Settlement | HealthRecord

_INSERT_ATTEMPT = (
    "INSERT INTO hookd_attempts (delivery_id, hook_id, event, event_id, account_id, attempt, status, outcome,"
    " duration_ms, error, response_excerpt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_DELIVERY = (
    "INSERT INTO hookd_deliveries (delivery_id, hook_id, event, event_id, account_id, state, attempts,"
    " last_status, created_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (delivery_id) DO UPDATE SET state = excluded.state,"
    " attempts = CASE WHEN excluded.attempts > hookd_deliveries.attempts THEN excluded.attempts"
    " ELSE hookd_deliveries.attempts END,"
    " last_status = COALESCE(excluded.last_status, hookd_deliveries.last_status),"
    " updated_at = excluded.updated_at, body = COALESCE(hookd_deliveries.body, excluded.body)"
)
_UPSERT_HEALTH = (
    "INSERT INTO hookd_hook_health (hook_id, breaker, consecutive_failures, failing_since, opened_at,"
    " disabled_reason, disabled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (hook_id) DO UPDATE SET breaker = excluded.breaker,"
    " consecutive_failures = excluded.consecutive_failures, failing_since = excluded.failing_since,"
    " opened_at = excluded.opened_at,"
    " disabled_reason = COALESCE(excluded.disabled_reason, hookd_hook_health.disabled_reason),"
    " disabled_at = COALESCE(excluded.disabled_at, hookd_hook_health.disabled_at), updated_at = excluded.updated_at"
)
_UPSERT_STATUS = (
    "INSERT INTO hookd_delivery_status (hook_id, event, last_trigger_status, last_trigger_time,"
    " last_response_code, last_response) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (hook_id, event) DO UPDATE SET last_trigger_status = excluded.last_trigger_status,"
    " last_trigger_time = excluded.last_trigger_time, last_response_code = excluded.last_response_code,"
    " last_response = excluded.last_response"
)


class HistoryWriter:
    """Batches history records into the state database on its own thread."""

    def __init__(
        self,
        db: Database,
        *,
        retention_days: float = 30.0,
        batch_size: int = 1000,
        flush_interval_s: float = 0.25,
        max_pending: int = 100_000,
    ) -> None:
        self._db = db
        self._retention = timedelta(days=retention_days)
        self._pending: Handoff[_Record] = Handoff(limit=max_pending, batch=batch_size, linger_s=flush_interval_s)
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._next_purge = 0.0
        self._lock = threading.Lock()  # guards `_dropped`: batches the database refused (the writer's count)
        self._dropped = 0
        self._reported = 0  # the writer's: dropped records already logged
        self._next_report = 0.0
        self.written = 0  # the writer's

    def start(self) -> None:
        self._thread.start()

    def record(self, item: _Record) -> None:
        """Never blocks: when the writer cannot keep up, the record is dropped and counted."""
        self._pending.put(item)

    @property
    def dropped(self) -> int:
        """Records dropped so far (queue full, or a batch the database refused)."""
        with self._lock:
            return self._dropped + self._pending.dropped

    def _drop(self, count: int) -> None:
        with self._lock:
            self._dropped += count

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush what is pending (within `timeout_s`) and stop the writer thread."""
        self._pending.close()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            batch = self._pending.take(idle_s=_IDLE_S)
            if batch:
                self._write(batch)
            elif self._pending.closed:
                self._report_drops()
                return
            self._report_drops()
            self._maybe_purge()

    def _report_drops(self) -> None:
        """Log how many records were dropped since the last report (at most every `_DROP_REPORT_S`)."""
        now = time.monotonic()
        if now < self._next_report:
            return
        total = self.dropped
        if total == self._reported:
            return
        log.warning("history.dropped", records=total - self._reported, dropped_total=total)
        self._reported = total
        self._next_report = now + _DROP_REPORT_S

    def _write(self, batch: list[_Record]) -> None:
        try:
            with self._db.transaction(write=True) as tx:
                write_batch(tx, batch)
        except StoreError as exc:
            self._drop(len(batch))
            log.warning("history.write_failed", records=len(batch), error=str(exc))
            return
        self.written += len(batch)

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + 3600
        cutoff = datetime.now(UTC) - self._retention
        try:
            with self._db.transaction(write=True) as tx:
                attempts = tx.execute("DELETE FROM hookd_attempts WHERE created_at < ?", (cutoff,))
                deliveries = tx.execute("DELETE FROM hookd_deliveries WHERE updated_at < ?", (cutoff,))
        except StoreError as exc:
            log.warning("history.purge_failed", error=str(exc))
            return
        if attempts or deliveries:
            log.info("history.purged", attempts=attempts, deliveries=deliveries, older_than=cutoff.isoformat())


def write_batch(tx: Transaction, batch: list[_Record]) -> None:
    """Write one batch in the caller's transaction: attempts first, then delivery, status and health
    rows, each keyed so that the batch's latest record for a delivery, event or hook wins. A record's
    time is converted once (`Transaction.stamp`) for all its rows, which go to the driver as they are."""
    attempts: list[tuple[Any, ...]] = []
    deliveries: dict[str, tuple[Any, ...]] = {}
    statuses: dict[tuple[str, str], tuple[Any, ...]] = {}
    health: dict[str, tuple[Any, ...]] = {}
    stamp = tx.stamp
    for item in batch:
        if isinstance(item, HealthRecord):
            health[item.hook_id] = _health_row(item)
        elif isinstance(item, AttemptRecord):
            at = stamp(item.at)
            attempts.append(_attempt_row(item, at))
            state = DeliveryState.DELIVERED if item.outcome == Verdict.DELIVERED else DeliveryState.RETRYING
            deliveries[item.delivery_id] = _delivery_row(item, state, item.attempt, item.status, at)
            statuses[(item.hook_id, item.event)] = _status_row(item, at)
        else:
            deliveries[item.delivery_id] = _delivery_row(
                item, item.state, item.attempts, item.last_status, stamp(item.at)
            )
    for sql, rows in (
        (_INSERT_ATTEMPT, attempts),
        (_UPSERT_DELIVERY, list(deliveries.values())),
        (_UPSERT_STATUS, list(statuses.values())),
    ):
        if rows:
            tx.executemany(sql, rows, prepared=True)
    if health:  # rare, with optional times of its own: adapted the usual way
        tx.executemany(_UPSERT_HEALTH, list(health.values()))


def _attempt_row(item: AttemptRecord, at: Any) -> tuple[Any, ...]:
    return (
        item.delivery_id,
        item.hook_id,
        item.event,
        item.event_id,
        item.account_id,
        item.attempt,
        item.status,
        item.outcome,
        item.duration_ms,
        item.error,
        item.response_excerpt,
        at,
    )


def _status_row(item: AttemptRecord, at: Any) -> tuple[Any, ...]:
    """The hook's per-event last trigger, as the platform's hook resource shows it."""
    trigger = Trigger.SUCCESS if item.outcome == Verdict.DELIVERED else Trigger.FAILURE
    response = item.response_excerpt if item.response_excerpt is not None else item.error
    return (item.hook_id, item.event, trigger, at, item.status, response)


def _health_row(item: HealthRecord) -> tuple[Any, ...]:
    disabled_at = item.at if item.disabled_reason else None
    return (
        item.hook_id,
        item.breaker,
        item.consecutive_failures,
        item.failing_since,
        item.opened_at,
        item.disabled_reason,
        disabled_at,
        item.at,
    )


def _delivery_row(
    item: AttemptRecord | Settlement, state: str, attempts: int, status: int | None, at: Any
) -> tuple[Any, ...]:
    return (
        item.delivery_id,
        item.hook_id,
        item.event,
        item.event_id,
        item.account_id,
        state,
        attempts,
        status,
        at,
        at,
        item.body,
    )
