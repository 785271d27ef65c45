"""Settling deliveries on the broker (main thread only): ack, retry queue, park, dead letter, disable.

An event message is acked once each of its deliveries is settled: delivered, or handed to a retry
or dead-letter queue and confirmed by the broker (publishes are pipelined, so the share is settled
in the confirm's continuation). The consumer decides what to do; this module does it and says so in
the logs, the metrics and the history.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from hookd import logs
from hookd.broker import Connection, Incoming, Outgoing, Topology
from hookd.config import DeliverySettings
from hookd.daemon.breaker import Breakers
from hookd.daemon.recorder import Recorder
from hookd.daemon.roster import Roster
from hookd.daemon.sequencer import Sequencer
from hookd.daemon.task import Held, Task
from hookd.errors import EventError
from hookd.messages import ORDERING_ENTITY_HEADER, Delivery, dead_letter_headers, delivery_headers
from hookd.metrics import MetricsRecorder
from hookd.outcomes import DeadLetter, DeliveryState, Disabled, Verdict, dead_letter_reason
from hookd.retry import Attempt, bucket_delay, durable_delay, jittered_ms
from hookd.subscriptions.model import Hook

log = logs.get_logger("hookd.worker")


class Settler:
    """Settles deliveries on the connection they came from; tracks what each consumer holds."""

    def __init__(
        self,
        delivery: DeliverySettings,
        topology: Topology,
        prefetch: int,
        *,
        partition_prefetch: int | None = None,
        metrics: MetricsRecorder,
        record: Recorder,
        breakers: Breakers,
        roster: Roster,
        sequencer: Sequencer | None = None,
    ) -> None:
        self._delivery = delivery
        self.sequencer = sequencer  # ordered deliveries: told when a head ends or goes away
        self.topology = topology
        self._prefetch = prefetch
        self._partition_prefetch = prefetch if partition_prefetch is None else partition_prefetch
        self._partitions = frozenset(topology.partition_queues())
        self._metrics = metrics
        self._record = record
        self._breakers = breakers
        self._roster = roster
        self._held: dict[str, int] = {}  # queue -> its messages consumed and not yet acked
        self._declared_delays: set[float] = set()

    def reset(self) -> None:
        """A new connection: nothing held on it, only the schedule's delay queues declared."""
        self._held = {}
        self._declared_delays = set(self._delivery.retry_delays_s)

    def hold(self, conn: Connection, msg: Incoming, deliveries: int) -> Held:
        """The message stays unacked (in its consumer's prefetch window) until its deliveries settle."""
        self._held[msg.queue] = self._held.get(msg.queue, 0) + 1
        return Held(conn, msg.delivery_tag, deliveries, msg.queue)

    def held_in(self, queue: str) -> int:
        """Messages of `queue` held here, not yet settled."""
        return self._held.get(queue, 0)

    def window_full(self) -> bool:
        """A consumer's prefetch window is all held by unsettled messages: the broker sends no more."""
        return any(count >= self._window(queue) for queue, count in self._held.items())

    def _window(self, queue: str) -> int:
        return self._partition_prefetch if queue in self._partitions else self._prefetch

    def settle(self, task: Task, last: Attempt, *, disable: bool = False) -> None:
        """Act on the last attempt's verdict: ack, retry queue, disable (`disable`: the hook failed
        without a break for delivery.disable_after_s) or dead letter."""
        if disable:
            self.disable(task.hook, Disabled.FAILING, last)
            self.dead_letter(task, last, DeadLetter.HOOK_DISABLED)
        elif last.verdict is Verdict.GONE:
            self.disable(task.hook, Disabled.GONE, last)
            self.dead_letter(task, last, dead_letter_reason(last.verdict))
        elif last.verdict is Verdict.RETRYABLE:
            self._retry(task, last)
        elif last.verdict is Verdict.DELIVERED:
            self._metrics.delivered(task.delivery.event)
            self._ended(task, partial(self.done_with, task))
        else:
            self.dead_letter(task, last, dead_letter_reason(last.verdict))

    def _retry(self, task: Task, last: Attempt) -> None:
        """The next durable retry of the schedule (or at least the receiver's Retry-After); dead-letter
        once the schedule is spent."""
        delivery, settings = task.delivery, self._delivery
        delay = durable_delay(delivery.retries, settings.retry_delays_s)
        if delay is None:
            self.dead_letter(task, last, dead_letter_reason(last.verdict))
            return
        expiration: int | None = jittered_ms(delay, settings.retry_jitter, random.random)
        if last.retry_after_s is not None:  # the receiver asked for a wait: at least that long
            delay, expiration = bucket_delay(last.retry_after_s, settings.retry_delays_s), None
        retry = replace(delivery, attempts=last.number, retries=delivery.retries + 1)
        self._publish_delayed(task, retry, delay, expiration)  # settled once the broker has it
        self._metrics.retry_scheduled(delivery.event)
        self._record.settlement(delivery, DeliveryState.RETRYING, last.number, last.status)
        log.info(
            "delivery.retry_scheduled",
            _event=delivery.event,
            hook_id=delivery.hook_id,
            delivery_id=delivery.delivery_id,
            attempts=last.number,
            retry=retry.retries,
            delay_s=delay,
        )

    def done_with(self, task: Task) -> None:
        """This task's share of its message is settled; the message is acked with the last share."""
        held = task.held
        held.pending -= 1
        if held.pending != 0:
            return
        if held.release is not None:
            held.release()
        else:
            held.conn.ack(held.tag)
            self._held[held.queue] -= 1

    def _ended(self, task: Task, settle: Callable[[], None]) -> None:
        """The delivery ended (delivered or dead-lettered): `settle` its share of the message; an ordered
        one's chain goes on, and it settles once its chain's row, if it had one, is gone."""
        if task.chain is not None and self.sequencer is not None:
            self.sequencer.ended(task, settle)
        else:
            settle()

    def _publish_delayed(self, task: Task, delivery: Delivery, delay: float, expiration_ms: int | None) -> None:
        """Hand the delivery to a delay queue; its share of the message is settled on the broker's
        confirm. An ordered one carries its entity (it comes back through its partition) and its chain
        is told it went away."""
        conn = task.held.conn
        if delay not in self._declared_delays:
            conn.declare_delay(delay)
            self._declared_delays.add(delay)
        headers = delivery_headers(delivery)
        if task.chain is not None:
            headers[ORDERING_ENTITY_HEADER] = task.chain.entity
        message = Outgoing(
            self.topology.retry_queue(delay), delivery.body, headers, delivery.event_id, expiration_ms=expiration_ms
        )
        publish = partial(conn.publish_pipelined, message, partial(self.done_with, task))
        if task.chain is not None and self.sequencer is not None:
            self.sequencer.away(task, publish)
        else:
            publish()

    def park_invalid(self, conn: Connection, msg: Incoming, exc: EventError) -> None:
        """A message that breaks the contract: copied to `<prefix>.invalid` with why, then acked."""
        headers: dict[str, Any] = dict(msg.headers)
        headers.update(
            {"reason": exc.reason, "error": exc.detail[:500], "routing_key": msg.routing_key, "queue": msg.queue}
        )
        tag = msg.delivery_tag
        invalid = self.topology.invalid
        conn.publish_pipelined(
            Outgoing(invalid, msg.body, headers, msg.message_id, msg.timestamp), lambda: conn.ack(tag)
        )
        log.error(
            "event.invalid",
            reason=exc.reason,
            error=exc.detail,
            routing_key=msg.routing_key[:100],
            message_id=msg.message_id,
            parked_in=invalid,
        )

    def park(self, task: Task, wait_s: float, reason: str) -> None:
        """Hold a delivery on the durable retry path without an attempt (it keeps its attempt count)."""
        delivery = task.delivery
        delay = bucket_delay(wait_s)
        self._publish_delayed(task, delivery, delay, None)
        self._metrics.parked(delivery.event, reason)
        log.info(
            "delivery.parked",
            _event=delivery.event,
            hook_id=delivery.hook_id,
            delivery_id=delivery.delivery_id,
            reason=reason,
            delay_s=delay,
        )
        self._record.settlement(delivery, DeliveryState.RETRYING, delivery.attempts, None)

    def dead_letter(self, task: Task, last: Attempt | None, reason: DeadLetter) -> None:
        """Dead-letter the delivery (the original body, its story in headers), then settle its share."""
        delivery = task.delivery
        attempts = last.number if last else delivery.attempts
        status = last.status if last else None
        headers = dead_letter_headers(
            replace(delivery, attempts=attempts), reason=reason, last_status=status, error=last.error if last else None
        )
        message = Outgoing(self.topology.dead, delivery.body, headers, delivery.event_id)
        self._ended(task, partial(task.held.conn.publish_pipelined, message, partial(self.done_with, task)))
        self._metrics.dead_lettered(delivery.event, reason)
        self._record.settlement(delivery, DeliveryState.FAILED, attempts, status)
        log.error(
            "delivery.dead_lettered",
            _event=delivery.event,
            event_id=delivery.event_id,
            account_id=delivery.account_id,
            hook_id=delivery.hook_id,
            delivery_id=delivery.delivery_id,
            attempts=attempts,
            reason=reason,
            last_status=status,
        )

    def disable(self, hook: Hook, reason: Disabled, last: Attempt | None = None) -> None:
        """Stop delivering to a hook (410 Gone, or failing for delivery.disable_after_s), loudly."""
        if not self._roster.disable(hook, reason):
            return
        failures = self._breakers.failures(hook.id) + (1 if reason is Disabled.GONE else 0)  # a 410 fails too
        self._breakers.forget(hook.id)
        log.error("hook.disabled", hook_id=hook.id, account_id=hook.account_id, reason=reason, url=hook.url)
        self._record.disabled(hook.id, reason, last, failures)
