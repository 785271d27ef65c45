"""What a delivery attempt leaves behind besides its HTTP request: the canonical log line, the
history record, the metrics and the notices' triggers. Kept apart from the engine and settlement so
their control flow reads on its own. Called from the engine's event loop (attempts, breaker changes)
and the main thread (settlements, disables); it holds no state of its own: history, metrics and
notices are each safe from both threads."""

from __future__ import annotations

from datetime import UTC, datetime

from hookd import logs
from hookd.daemon.breaker import Change
from hookd.daemon.notices import Notifier
from hookd.messages import Delivery
from hookd.metrics import MetricsRecorder, NoMetrics
from hookd.outcomes import Circuit, Verdict
from hookd.retry import Attempt
from hookd.state.history import AttemptRecord, HealthRecord, HistoryWriter, Settlement

log = logs.get_logger("hookd.worker")


class Recorder:
    """Logs and records attempts, settlements and hook health; history is optional."""

    def __init__(
        self, history: HistoryWriter | None, metrics: MetricsRecorder | None = None, notices: Notifier | None = None
    ) -> None:
        self.history = history
        self.metrics = metrics or NoMetrics()
        self.notices = notices

    def attempt(self, delivery: Delivery, result: Attempt) -> None:
        """One canonical line per attempt (and its history row)."""
        self.metrics.attempt(delivery.event, delivery.hook_id, result.verdict, result.duration_s)
        level = log.info if result.verdict is Verdict.DELIVERED else log.warning
        level(
            "delivery.attempt",
            _event=delivery.event,
            event_id=delivery.event_id,
            account_id=delivery.account_id,
            hook_id=delivery.hook_id,
            delivery_id=delivery.delivery_id,
            attempt=result.number,
            status=result.status,
            duration_ms=round(result.duration_s * 1000, 1),
            outcome=result.verdict,
            error=result.error,
        )
        if self.notices is not None and result.verdict is Verdict.DELIVERED:
            self.notices.delivered(delivery.hook_id)
        if self.history is not None:
            self.history.record(
                AttemptRecord(
                    delivery_id=delivery.delivery_id,
                    hook_id=delivery.hook_id,
                    event=delivery.event,
                    event_id=delivery.event_id,
                    account_id=delivery.account_id,
                    attempt=result.number,
                    status=result.status,
                    outcome=result.verdict,
                    duration_ms=round(result.duration_s * 1000, 1),
                    error=result.error,
                    response_excerpt=result.excerpt,
                    at=datetime.now(UTC),
                    body=delivery.body,
                )
            )

    def settlement(self, delivery: Delivery, state: str, attempts: int, status: int | None) -> None:
        if self.history is None:
            return
        self.history.record(
            Settlement(
                delivery_id=delivery.delivery_id,
                hook_id=delivery.hook_id,
                event=delivery.event,
                event_id=delivery.event_id,
                account_id=delivery.account_id,
                state=state,
                attempts=attempts,
                last_status=status,
                at=datetime.now(UTC),
                body=delivery.body,
            )
        )

    def breaker(self, hook_id: str, change: Change, last: Attempt | None = None) -> None:
        """Log a circuit change loudly enough to be seen, and keep it for `hookd explain`; an opening
        after the attempt `last` is the hook's `hook.failing` notice."""
        if change.state is Circuit.OPEN:
            log.warning("breaker.opened", hook_id=hook_id, failures=change.failures)
            if self.notices is not None and last is not None:
                self.notices.opened(hook_id, change, last)
        elif change.state is Circuit.HALF_OPEN:
            log.info("breaker.half_open", hook_id=hook_id)
        else:
            log.info("breaker.closed", hook_id=hook_id)
        self.metrics.breaker(hook_id, change.state)
        self.health(hook_id, change.state, change, None)

    def disabled(self, hook_id: str, reason: str, last: Attempt | None, failures: int) -> None:
        """hookd disabled the hook: its health record, and its `hook.disabled` notice."""
        self.health(hook_id, Circuit.CLOSED, None, reason)
        if self.notices is not None:
            self.notices.disabled(hook_id, reason, last, failures)

    def health(self, hook_id: str, breaker: str, change: Change | None, disabled_reason: str | None) -> None:
        if self.history is None:
            return
        self.history.record(
            HealthRecord(
                hook_id=hook_id,
                breaker=breaker,
                consecutive_failures=change.failures if change else 0,
                failing_since=_utc(change.failing_since) if change else None,
                opened_at=_utc(change.opened_at) if change else None,
                disabled_reason=disabled_reason,
                at=datetime.now(UTC),
            )
        )


def _utc(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
