"""What a delivery attempt leaves behind besides its HTTP request: the canonical log line, the
history record, the metrics, the notices' triggers and the spans (exported when
`tracing.otlp_endpoint` is set). Kept apart from the engine and settlement so their control flow
reads on its own. Called from the engine's event loop (attempts, breaker changes) and the main thread
(consumes, settlements, disables); it holds no state of its own: history, metrics, notices and the
tracer are each safe from both threads."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hookd import logs
from hookd.daemon.breaker import Change
from hookd.daemon.notices import Notifier
from hookd.messages import Delivery
from hookd.metrics import MetricsRecorder, NoMetrics
from hookd.outcomes import Circuit, DeliveryState, Verdict
from hookd.retry import Attempt
from hookd.state.history import AttemptRecord, HealthRecord, HistoryWriter, Settlement
from hookd.tracecontext import TraceContext, new_trace
from hookd.tracing import NoTracer, Tracer

_COMPONENT = "hookd.worker"
log = logs.get_logger(_COMPONENT)


class Recorder:
    """Logs and records attempts, settlements and hook health; history is optional."""

    def __init__(
        self,
        history: HistoryWriter | None,
        metrics: MetricsRecorder | None = None,
        notices: Notifier | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.history = history
        self.metrics = metrics or NoMetrics()
        self.notices = notices
        self.tracer = tracer or NoTracer()
        self._exporting = not isinstance(self.tracer, NoTracer)  # tracing off: no span is even built

    def consumed(
        self, parent: TraceContext | None, *, queue: str, event: str, event_id: str, hooks: int, start_ns: int
    ) -> TraceContext:
        """A message was consumed and fanned out to `hooks` deliveries: the consume span, a child of the
        publisher's context (`parent`), or the root of a new trace when the message came without one."""
        ctx = parent.child() if parent is not None else new_trace()
        if self._exporting:
            attributes: dict[str, str | int] = {"messaging.destination.name": queue, "hookd.event": event}
            attributes.update({"hookd.event_id": event_id, "hookd.hooks": hooks})
            self.tracer.span("consume", ctx, start_ns, time.time_ns(), attributes, kind="consumer")
        return ctx

    def attempt(self, delivery: Delivery, result: Attempt) -> None:
        """One canonical line per attempt (and its history row, and its span: `delivery.trace` is the
        attempt's own context, the one its request carried as `traceparent`)."""
        self.metrics.attempt(delivery.event, delivery.hook_id, result.verdict, result.duration_s)
        if self._exporting and delivery.trace is not None:
            self._attempt_span(delivery, delivery.trace, result)
        logs.canonical(
            _COMPONENT,
            "info" if result.verdict is Verdict.DELIVERED else "warning",
            "delivery.attempt",
            {
                "_event": delivery.event,
                "event_id": delivery.event_id,
                "account_id": delivery.account_id,
                "hook_id": delivery.hook_id,
                "delivery_id": delivery.delivery_id,
                "attempt": result.number,
                "status": result.status,
                "duration_ms": round(result.duration_s * 1000, 1),
                "outcome": result.verdict,
                "error": result.error,
            },
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

    def _attempt_span(self, delivery: Delivery, ctx: TraceContext, result: Attempt) -> None:
        end = time.time_ns()
        attributes: dict[str, str | int] = {
            "hookd.hook_id": delivery.hook_id,
            "hookd.event": delivery.event,
            "hookd.delivery_id": delivery.delivery_id,
            "hookd.attempt": result.number,
            "hookd.outcome": str(result.verdict),
        }
        if result.status is not None:
            attributes["http.response.status_code"] = result.status
        if result.error:
            attributes["error.message"] = result.error[:500]
        error = result.verdict is not Verdict.DELIVERED
        self.tracer.span(
            "attempt", ctx, end - int(result.duration_s * 1e9), end, attributes, kind="client", error=error
        )

    def settlement(self, delivery: Delivery, state: str, attempts: int, status: int | None) -> None:
        """The delivery left this worker: a durable retry (or a park) scheduled, or dead-lettered."""
        if self._exporting and delivery.trace is not None and state != DeliveryState.DELIVERED:
            name = "dead-lettered" if state == DeliveryState.FAILED else "retry scheduled"
            now = time.time_ns()
            attributes: dict[str, str | int] = {"hookd.hook_id": delivery.hook_id, "hookd.attempts": attempts}
            attributes["hookd.event"] = delivery.event
            self.tracer.span(name, delivery.trace.child(), now, now, attributes, error=state == DeliveryState.FAILED)
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
