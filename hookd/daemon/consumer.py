"""Turning consumed messages into deliveries and settling them (main thread only).

An event fans out to the hooks `dispatch` names; a targeted message (retry, ping, redelivery,
replay) is one delivery. Before a delivery starts, `dispatch.decide` is asked again: a refusal
dead-letters it (its hook was deleted, deactivated or disabled meanwhile) or parks it (open
circuit). Then the hook's lane admits it, queues it behind its running deliveries, or parks it when
the hook is stuck or its backlog is full. Results come back from the delivery engine and are settled here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookd import dispatch, logs
from hookd.broker import Connection, Incoming, Outgoing
from hookd.config import Settings
from hookd.daemon.breaker import Breakers
from hookd.daemon.engine import DeliveryEngine
from hookd.daemon.lanes import Admission, Lanes
from hookd.daemon.recorder import Recorder
from hookd.daemon.roster import Roster
from hookd.daemon.settlement import Settler
from hookd.daemon.task import Task
from hookd.errors import EventError
from hookd.events import decode
from hookd.messages import Delivery, parse_delivery
from hookd.outcomes import Parked, Verdict
from hookd.subscriptions.model import Hook

log = logs.get_logger("hookd.worker")
_PRESSURE_WAIT_S = 0.25  # with the prefetch window full, a hook silent this long is holding it up
_BACKLOG_PARK_S = 1.0
_HOOK_LOADING_PARK_S = 1.0


class Consumer:
    """The main thread's handling of every consumed message and every finished delivery."""

    def __init__(
        self,
        settings: Settings,
        *,
        roster: Roster,
        settler: Settler,
        engine: DeliveryEngine,
        breakers: Breakers,
        record: Recorder,
        reload: Callable[[], None] = lambda: None,
    ) -> None:
        delivery = settings.delivery
        self._reload = reload  # ask the watcher for a reload now
        self._settings = settings
        self._roster = roster
        self._settler = settler
        self._engine = engine
        self._breakers = breakers
        self._record = record
        self._lanes: Lanes[Task] = Lanes(delivery.per_hook_concurrency, delivery.per_hook_backlog)
        self._conn: Connection | None = None
        # A hook that answered nothing for a whole attempt deadline while work waited behind it is stuck
        # (hanging, not slow: a receiver answering in seconds answers within it): its waiting work is
        # parked, long enough not to churn the broker. With thousands of deliveries in flight and a
        # prefetch window as large, a slow hook's backlog no longer holds the window up.
        self._stuck_after_s = delivery.timeout_s
        # Overflow (a full backlog) behind a hook that has been quiet for a tenth of the deadline (0.5-2 s)
        # is parked as long as a stuck hook's work: parked for a second only, it would come back, find
        # the backlog still full and be parked again, churning the broker every second.
        self._quiet_after_s = max(0.5, min(delivery.timeout_s / 10, 2.0))
        self._slow_park_s = max(5.0, 5 * delivery.timeout_s)
        # Backlog beyond delivery.per_hook_backlog is kept when its hook works through all of it
        # within one attempt deadline (by its answers so far), else the excess is parked: it would
        # hold the prefetch window longer than a stuck hook may.

    def attach(self, conn: Connection | None) -> None:
        """A new connection (or none, after losing one): nothing held, no lanes, no pending wake-up."""
        self._conn = conn
        self._engine.attach(conn)
        if conn is not None:
            self._settler.reset()
            self._lanes = Lanes(self._settings.delivery.per_hook_concurrency, self._settings.delivery.per_hook_backlog)

    # -- consuming -------------------------------------------------------------------------------
    def on_message(self, msg: Incoming) -> None:
        # pika keeps dispatching while messages arrive, and parking or acking frees prefetch slots for
        # more: settle finished deliveries here too, or a steady stream would starve them.
        self.settle_finished()
        conn = self._conn
        assert conn is not None
        if msg.queue == self._settler.topology.events:
            self._on_event(conn, msg)
        else:
            self._on_targeted(conn, msg)

    def _on_event(self, conn: Connection, msg: Incoming) -> None:
        try:
            event = decode(
                msg.routing_key,
                msg.body,
                msg.message_id,
                msg.headers,
                max_bytes=self._settings.broker.max_message_bytes,
                timestamp=msg.timestamp,
            )
        except EventError as exc:
            self._park_invalid(conn, msg, exc)
            return
        account_hooks = self._roster.hooks.for_account(event.account_id)
        hooks = dispatch.recipients(account_hooks, event.name, self._roster.disabled, event.subject)
        log.debug(
            "event.received", _event=event.name, event_id=event.event_id, account_id=event.account_id, hooks=len(hooks)
        )
        if not hooks:
            conn.ack(msg.delivery_tag)
            return
        held = self._settler.hold(conn, msg, len(hooks))
        for hook in hooks:
            self._start(Task(held, hook, Delivery.of(event, hook.id)))

    def _on_targeted(self, conn: Connection, msg: Incoming) -> None:
        try:
            delivery = parse_delivery(msg.headers, msg.message_id, msg.body)
        except EventError as exc:
            self._park_invalid(conn, msg, exc)
            return
        hook = self._roster.get(delivery.hook_id)
        held = self._settler.hold(conn, msg, 1)
        if hook is None and self._roster.behind(delivery.hook_revision):
            # a ping of a hook created a moment ago, sent before this worker's next poll: load the
            # store now and take the ping again shortly, rather than call the hook unknown
            self._reload()
            self._settler.park(Task(held, _absent(delivery), delivery), _HOOK_LOADING_PARK_S, Parked.HOOK_LOADING)
            return
        self._start(Task(held, hook or _absent(delivery), delivery), found=hook is not None)

    def _park_invalid(self, conn: Connection, msg: Incoming, exc: EventError) -> None:
        headers: dict[str, Any] = dict(msg.headers)
        headers.update(
            {"reason": exc.reason, "error": exc.detail[:500], "routing_key": msg.routing_key, "queue": msg.queue}
        )
        tag = msg.delivery_tag
        invalid = self._settler.topology.invalid
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

    def _start(self, task: Task, *, found: bool = True) -> None:
        """Start a delivery now, queue it behind its hook, or settle it without an attempt: the rules of
        `dispatch.decide`, then the hook's lane. `found=False`: the task's hook is a stand-in for one
        that no longer exists."""
        hook = task.hook
        refusal = dispatch.decide(
            hook if found else None,
            task.delivery.event,
            targeted=True,
            disabled=self._roster.disabled.get(hook.id),
            circuit=lambda: self._circuit(hook.id),
        )
        if refusal is not None:
            if refusal.dead_letter is not None:
                self._settler.dead_letter(task, None, refusal.dead_letter)
            else:
                self._settler.park(task, refusal.wait_s, Parked.BREAKER_OPEN)
            return
        admission = self._lanes.admit(hook.id, task, self._stuck_after_s)
        if admission is Admission.RUN:
            task.lanes = self._lanes
            self._engine.submit(task)
        elif admission is Admission.STUCK:  # what take_stale would park a moment later anyway
            self._settler.park(task, self._slow_park_s, Parked.SLOW_HOOK)

    def _circuit(self, hook_id: str) -> dispatch.Refusal | None:
        decision, change = self._breakers.allow(hook_id)
        if change is not None:
            self._record.breaker(hook_id, change)
        return None if decision.allow else dispatch.circuit_open(wait_s=decision.wait_s)

    # -- settling --------------------------------------------------------------------------------
    def settle_finished(self) -> None:
        """Settle what the engine finished, and start what waited behind those hooks."""
        for done in self._engine.finished():
            task, last = done.task, done.last
            if last is not None and task.held.conn is self._conn:  # else the broker redelivers it
                self._settler.settle(task, last, disable=done.disable)
            if task.lanes is not None:  # its slot is free: the next delivery waiting for this hook goes
                answered = last is not None and (last.verdict is not Verdict.RETRYABLE or last.status is not None)
                duration_s = last.duration_s if last is not None else None
                following = task.lanes.release(task.hook.id, answered=answered, duration_s=duration_s)
                if following is not None and following.held.conn is self._conn:
                    self._start(following)

    def park_stuck(self) -> None:
        """Park the work waiting behind stuck hooks, and backlog a hook will not work through soon,
        so it does not hold the broker's prefetch window (every turn of the main loop)."""
        conn = self._conn
        for task in self._lanes.take_stale(self._stuck_after_s):
            if task.held.conn is conn:
                self._settler.park(task, self._slow_park_s, Parked.SLOW_HOOK)
        overflow = self._lanes.take_overflow(
            quiet_after_s=self._quiet_after_s, drain_budget_s=self._stuck_after_s, pressed=self._settler.window_full()
        )
        for task in overflow.quiet:  # behind a hook silent for a while: parked for long, not churned
            if task.held.conn is conn:
                self._settler.park(task, self._slow_park_s, Parked.SLOW_HOOK)
        wait_s = min(max(_BACKLOG_PARK_S, overflow.slow_drain_s), self._slow_park_s)
        for task in overflow.slow:  # back about when the kept backlog has been worked through
            if task.held.conn is conn:
                self._settler.park(task, wait_s, Parked.BACKLOG)
        if self._settler.window_full():
            # Nothing more comes until something settles: work queued behind a hook that has not
            # answered for a moment is parked briefly (as with a full backlog) so the others flow.
            for task in self._lanes.take_stale(_PRESSURE_WAIT_S):
                if task.held.conn is conn:
                    self._settler.park(task, _BACKLOG_PARK_S, Parked.BACKLOG)


def _absent(delivery: Delivery) -> Hook:
    """A stand-in for a hook that no longer exists, so its delivery can be dead-lettered like any other."""
    return Hook(id=delivery.hook_id, account_id=delivery.account_id, url="", events=(), secret="")
