"""Settling deliveries on the broker (main thread only): ack, retry queue, park, dead letter, disable.

An event message is acked once each of its deliveries is settled: delivered, or handed to a retry
or dead-letter queue and confirmed by the broker (publishes are pipelined, so the share is settled
in the confirm's continuation). The daemon decides what to do; this module does it and says so in
the logs, the metrics and the history.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from hookd import logs
from hookd.broker import BrokerConnection, Incoming, Outgoing, Topology
from hookd.config import DeliverySettings
from hookd.daemon.breaker import Breakers, State
from hookd.daemon.lanes import Lanes
from hookd.daemon.recorder import Recorder
from hookd.messages import Target, dead_letter_headers, target_headers
from hookd.metrics import MetricsRecorder
from hookd.retry import HOOK_DISABLED, Attempt, Verdict, bucket_delay, dead_letter_reason, durable_delay, jittered_ms
from hookd.state.history import FAILED, RETRYING
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import SubscriptionStore

log = logs.get_logger("hookd.daemon.daemon")


@dataclass(slots=True)
class Work:
    """One consumed message awaiting settlement of all its deliveries before it is acked."""

    conn: BrokerConnection
    tag: int
    pending: int
    queue: str


@dataclass(slots=True)
class Job:
    """One delivery: a message's share for one hook."""

    work: Work
    hook: Hook
    target: Target
    body: bytes
    lanes: Lanes[Job] | None = None
    disable: bool = False  # set by the delivery thread: unbroken failure for delivery.disable_after_s


class Settler:
    """Settles deliveries on the connection they came from; tracks what each consumer holds."""

    def __init__(
        self,
        delivery: DeliverySettings,
        topology: Topology,
        prefetch: int,
        *,
        metrics: MetricsRecorder,
        record: Recorder,
        breakers: Breakers,
        store: SubscriptionStore,
    ) -> None:
        self._delivery = delivery
        self.topology = topology
        self._prefetch = prefetch
        self._metrics = metrics
        self._record = record
        self._breakers = breakers
        self._store = store
        self.disabled: dict[str, str] = {}  # hook id -> reason, until the store says inactive
        self._held: dict[str, int] = {}  # queue -> its messages consumed and not yet acked
        self._declared_delays: set[float] = set()

    def reset(self) -> None:
        """A new connection: nothing held on it, only the schedule's delay queues declared."""
        self._held = {}
        self._declared_delays = set(self._delivery.retry_delays_s)

    def hold(self, conn: BrokerConnection, msg: Incoming, deliveries: int) -> Work:
        """The message stays unacked (in its consumer's prefetch window) until its deliveries settle."""
        self._held[msg.queue] = self._held.get(msg.queue, 0) + 1
        return Work(conn, msg.delivery_tag, deliveries, msg.queue)

    def window_full(self) -> bool:
        """A consumer's prefetch window is all held by unsettled messages: the broker sends no more."""
        return any(count >= self._prefetch for count in self._held.values())

    def settle(self, job: Job, last: Attempt) -> None:
        """Act on the last attempt's verdict: ack, retry queue, disable or dead letter."""
        target, delivery = job.target, self._delivery
        if job.disable:
            self.disable(job.hook, "failing")
            self.finish(job, last, HOOK_DISABLED)
        elif last.verdict is Verdict.GONE:
            self.disable(job.hook, "gone")
            self.finish(job, last, dead_letter_reason(last))
        elif last.verdict is Verdict.RETRYABLE:
            delay = durable_delay(target.retries, delivery.retry_delays_s)
            if delay is None:
                self.finish(job, last, dead_letter_reason(last))
                return
            expiration: int | None = jittered_ms(delay, delivery.retry_jitter, random.random)
            if last.retry_after_s is not None:  # the receiver asked for a wait: at least that long
                delay, expiration = bucket_delay(last.retry_after_s, delivery.retry_delays_s), None
            retry = replace(target, attempts=last.number, retries=target.retries + 1)
            self._publish_delayed(job, retry, delay, expiration)  # settled once the broker has it
            self._metrics.retry_scheduled(target.event)
            self._record.settlement(target, job.body, RETRYING, last.number, last.status)
            log.info(
                "delivery.retry_scheduled",
                _event=target.event,
                hook_id=target.hook_id,
                delivery_id=target.delivery_id,
                attempts=last.number,
                retry=retry.retries,
                delay_s=delay,
            )
        elif last.verdict is Verdict.DELIVERED:
            self._metrics.delivered(target.event)
            self.done_with(job)
        else:
            self.finish(job, last, dead_letter_reason(last))

    def done_with(self, job: Job) -> None:
        work = job.work
        work.pending -= 1
        if work.pending == 0:
            work.conn.ack(work.tag)
            self._held[work.queue] -= 1

    def _publish_delayed(self, job: Job, target: Target, delay: float, expiration_ms: int | None) -> None:
        """Hand the delivery to a delay queue; its share of the message is settled on the broker's confirm."""
        conn = job.work.conn
        if delay not in self._declared_delays:
            conn.declare_delay(delay)
            self._declared_delays.add(delay)
        conn.publish_pipelined(
            Outgoing(
                self.topology.retry_queue(delay),
                job.body,
                target_headers(target),
                target.event_id,
                expiration_ms=expiration_ms,
            ),
            partial(self.done_with, job),
        )

    def park(self, job: Job, wait_s: float, reason: str) -> None:
        """Hold a delivery on the durable retry path without an attempt (it keeps its attempt count)."""
        delay = bucket_delay(wait_s)
        self._publish_delayed(job, job.target, delay, None)
        self._metrics.parked(job.target.event, reason)
        log.info(
            "delivery.parked",
            _event=job.target.event,
            hook_id=job.target.hook_id,
            delivery_id=job.target.delivery_id,
            reason=reason,
            delay_s=delay,
        )
        self._record.settlement(job.target, job.body, RETRYING, job.target.attempts, None)

    def finish(self, job: Job, last: Attempt | None, reason: str) -> None:
        """Dead-letter the delivery (the original body, its story in headers), then settle its share."""
        target = job.target
        attempts = last.number if last else target.attempts
        headers = dead_letter_headers(
            replace(target, attempts=attempts),
            reason=reason,
            last_status=last.status if last else None,
            error=last.error if last else None,
        )
        job.work.conn.publish_pipelined(
            Outgoing(self.topology.dead, job.body, headers, target.event_id), partial(self.done_with, job)
        )
        self._metrics.dead_lettered(target.event, reason)
        self._record.settlement(target, job.body, FAILED, attempts, last.status if last else None)
        log.error(
            "delivery.dead_lettered",
            _event=target.event,
            event_id=target.event_id,
            account_id=target.account_id,
            hook_id=target.hook_id,
            delivery_id=target.delivery_id,
            attempts=attempts,
            reason=reason,
            last_status=last.status if last else None,
        )

    def disable(self, hook: Hook, reason: str) -> None:
        """Stop delivering to a hook (410 Gone, or failing for delivery.disable_after_s), loudly."""
        if hook.id in self.disabled:
            return
        self.disabled[hook.id] = reason
        self._breakers.forget(hook.id)
        log.error("hook.disabled", hook_id=hook.id, account_id=hook.account_id, reason=reason, url=hook.url)
        self._record.health(hook.id, State.CLOSED.value, None, reason)
        update = getattr(self._store, "update", None)
        if callable(update):  # a database source keeps it: every worker and the admin see it
            threading.Thread(target=_persist_disable, args=(update, hook.id), daemon=True).start()


def _persist_disable(update: Any, hook_id: str) -> None:
    try:
        update(hook_id, active=False)
    except Exception as exc:  # the in-memory disable stands; say why it was not stored
        log.error("hook.disable_not_stored", hook_id=hook_id, error=str(exc))
