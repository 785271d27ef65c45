"""Turning consumed messages into deliveries and settling them (main thread only).

What comes from where:
- `<prefix>.events`: with ordered delivery (`broker.partitions` > 0) only its single active consumer
  gets events, and routes each, in order, to its entity's partition (`route`); without it, every
  worker fans events out directly.
- `<prefix>.partition.<n>` (the ones this worker owns, `Partitions`): an event fans out to the hooks
  `dispatch` names; an ordered hook's delivery goes through its chain (`Sequencer`), the others start
  at once. An ordered delivery back from its retry or park arrives here too.
- `<prefix>.deliveries`: targeted deliveries (retries, pings, redeliveries, replays), one delivery
  each; an ordered one is forwarded to its entity's partition instead.

Before a delivery starts, `dispatch.decide` is asked again: a refusal dead-letters it (its hook was
deleted, deactivated or disabled meanwhile) or parks it (open circuit). Then the hook's lane admits
it, queues it behind its running deliveries, or parks it when the hook is stuck or its backlog is
full. Results come back from the delivery engine and are settled here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from hookd import dispatch, logs
from hookd.broker import Connection, Incoming, Outgoing
from hookd.config import Settings
from hookd.daemon.breaker import Breakers
from hookd.daemon.engine import DeliveryEngine
from hookd.daemon.lanes import Admission, Lanes
from hookd.daemon.recorder import Recorder
from hookd.daemon.roster import Roster
from hookd.daemon.sequencer import Sequencer
from hookd.daemon.settlement import Settler
from hookd.daemon.task import Task
from hookd.errors import EventError
from hookd.events import Event, decode, routed
from hookd.messages import EVENT_HEADER, ORDERING_ENTITY_HEADER, Delivery, parse_delivery
from hookd.ordering import ChainKey, partition_of
from hookd.outcomes import DeadLetter, Parked, Verdict
from hookd.subscriptions.model import Hook
from hookd.tracecontext import from_headers

log = logs.get_logger("hookd.worker")
_PRESSURE_WAIT_S = 0.25  # with the prefetch window full, a hook silent this long is holding it up
_BACKLOG_PARK_S = 1.0
_HOOK_LOADING_PARK_S = 1.0


@dataclass(slots=True)
class _Partition:
    """A partition this worker owns: its consumer tag once consuming, and whether it is being released."""

    index: int
    tag: str | None = None
    releasing: bool = False


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
        sequencer: Sequencer,
        reload: Callable[[], None] = lambda: None,
    ) -> None:
        delivery = settings.delivery
        self._reload = reload  # ask the watcher for a reload now
        self._settings = settings
        self._topology = settler.topology
        self._roster = roster
        self._settler = settler
        self._engine = engine
        self._breakers = breakers
        self._record = record
        self._sequencer = sequencer
        self._lanes: Lanes[Task] = Lanes(delivery.per_hook_concurrency, delivery.per_hook_backlog)
        self._conn: Connection | None = None
        self._partitions: dict[int, _Partition] = {}
        self._queues: dict[str, int] = {self._topology.partition(n): n for n in range(self._topology.partitions)}
        self._unordered_logged = False
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

    def attach(self, conn: Connection | None) -> None:
        """A new connection (or none, after losing one): nothing held, no lanes, no partitions, no
        pending wake-up; then consume the events and the targeted deliveries."""
        self._conn = conn
        self._engine.attach(conn)
        self._sequencer.attach(conn)
        self._partitions.clear()
        if conn is None:
            return
        self._settler.reset()
        self._lanes = Lanes(self._settings.delivery.per_hook_concurrency, self._settings.delivery.per_hook_backlog)
        prefetch = self._settings.prefetch
        conn.consume_queue(self._topology.events, prefetch, self.on_message)
        conn.consume_queue(self._topology.deliveries, prefetch, self.on_message)

    # -- consuming -------------------------------------------------------------------------------
    def on_message(self, msg: Incoming) -> None:
        # pika keeps dispatching while messages arrive, and parking or acking frees prefetch slots for
        # more: settle finished deliveries here too, or a steady stream would starve them.
        self.settle_finished()
        conn = self._conn
        assert conn is not None
        if msg.queue == self._topology.events:
            if self._topology.partitions and self._sequencer.enabled:
                self._route(conn, msg)
            else:
                self._on_event(conn, msg)
        elif msg.queue == self._topology.deliveries:
            self._on_targeted(conn, msg)
        else:
            self._on_partition(conn, msg)

    def _decode(self, conn: Connection, msg: Incoming, routing_key: str) -> Event | None:
        try:
            return decode(
                routing_key,
                msg.body,
                msg.message_id,
                msg.headers,
                max_bytes=self._settings.broker.max_message_bytes,
                timestamp=msg.timestamp,
            )
        except EventError as exc:
            self._settler.park_invalid(conn, msg, exc)
            return None

    def _route(self, conn: Connection, msg: Incoming) -> None:
        """The router (this worker is `<prefix>.events`' active consumer): each event to its entity's
        partition, in the order consumed; acked once the broker confirmed the copy."""
        event = self._decode(conn, msg, msg.routing_key)
        if event is None:
            return
        entity = event.entity
        if entity is None and not self._unordered_logged:
            self._unordered_logged = True  # once per process: a scheduler publishing ids fixes it
            log.warning("event.unordered", _event=event.name, event_id=event.event_id, account_id=event.account_id)
        index = partition_of(event.account_id, entity or f"event:{event.event_id}", self._topology.partitions)
        headers = {**msg.headers, EVENT_HEADER: event.name}
        if entity is not None:
            headers[ORDERING_ENTITY_HEADER] = entity
        copy = Outgoing(self._topology.partition(index), msg.body, headers, msg.message_id, msg.timestamp)
        tag = msg.delivery_tag
        conn.publish_pipelined(copy, lambda: conn.ack(tag))

    def _on_event(self, conn: Connection, msg: Incoming) -> None:
        event = self._decode(conn, msg, msg.routing_key)
        if event is not None:
            self._fan_out(conn, msg, event)

    def _on_partition(self, conn: Connection, msg: Incoming) -> None:
        """A partition's message: an event to fan out, or an ordered delivery back from the durable path."""
        if "hook_id" in msg.headers:
            self._on_targeted(conn, msg, forwarded=True)
            return
        name = msg.headers.get(EVENT_HEADER)
        name = name if isinstance(name, str) else ""
        event = routed(
            name, msg.body, msg.message_id, msg.headers, entity_header=ORDERING_ENTITY_HEADER, timestamp=msg.timestamp
        ) or self._decode(conn, msg, name)
        if event is not None:
            self._fan_out(conn, msg, event)

    def _fan_out(self, conn: Connection, msg: Incoming, event: Event) -> None:
        started_ns = time.time_ns()
        account_hooks = self._roster.hooks.for_account(event.account_id)
        hooks = dispatch.recipients(account_hooks, event.name, self._roster.disabled, event.subject)
        log.debug(
            "event.received", _event=event.name, event_id=event.event_id, account_id=event.account_id, hooks=len(hooks)
        )
        if not hooks:
            conn.ack(msg.delivery_tag)
            return
        trace = self._record.consumed(
            from_headers(msg.headers),
            queue=msg.queue,
            event=event.name,
            event_id=event.event_id,
            hooks=len(hooks),
            start_ns=started_ns,
        )
        held = self._settler.hold(conn, msg, len(hooks))
        ordered = msg.queue in self._queues and event.entity is not None
        for hook in hooks:
            task = Task(held, hook, Delivery.of(event, hook.id, trace))
            if ordered and event.entity is not None and self._sequencer.ordered(hook):
                self._arrive(task, ChainKey(hook.id, event.account_id, event.entity))
            else:
                self._start(task)

    def _arrive(self, task: Task, key: ChainKey) -> None:
        """An ordered delivery joins its chain, unless it would wait behind an earlier one while its
        hook has too many waiting already (then it is dead-lettered: nothing lost, `hookd dlq replay`
        sends it again, unordered)."""
        if key in self._sequencer and self._sequencer.full(key.hook_id):
            self._settler.dead_letter(task, None, DeadLetter.TOO_MANY_WAITING)
            return
        task.chain = key
        self._sequencer.arrive(task)

    def _on_targeted(self, conn: Connection, msg: Incoming, *, forwarded: bool = False) -> None:
        started_ns = time.time_ns()
        try:
            delivery = parse_delivery(msg.headers, msg.message_id, msg.body)
        except EventError as exc:
            self._settler.park_invalid(conn, msg, exc)
            return
        trace = self._record.consumed(
            delivery.trace,
            queue=msg.queue,
            event=delivery.event,
            event_id=delivery.event_id,
            hooks=1,
            start_ns=started_ns,
        )
        delivery = replace(delivery, trace=trace)
        entity = msg.headers.get(ORDERING_ENTITY_HEADER)
        ordered = isinstance(entity, str) and bool(entity) and self._topology.partitions > 0
        if ordered and not forwarded:
            self._forward(conn, msg, delivery, str(entity))
            return
        hook = self._roster.get(delivery.hook_id)
        held = self._settler.hold(conn, msg, 1)
        if hook is None and self._roster.behind(delivery.hook_revision):
            # a ping of a hook created a moment ago, sent before this worker's next poll: load the
            # store now and take the ping again shortly, rather than call the hook unknown
            self._reload()
            self._settler.park(Task(held, _absent(delivery), delivery), _HOOK_LOADING_PARK_S, Parked.HOOK_LOADING)
            return
        task = Task(held, hook or _absent(delivery), delivery)
        if ordered and isinstance(entity, str):
            task.chain = ChainKey(delivery.hook_id, delivery.account_id, entity)
            self._sequencer.arrive(task)  # a head back from its retry: its chain is waiting for it
        else:
            self._start(task, found=hook is not None)

    def _forward(self, conn: Connection, msg: Incoming, delivery: Delivery, entity: str) -> None:
        """An ordered delivery back from its retry or park: to its entity's partition, where its
        chain waits for it (acked once the broker confirmed the copy)."""
        index = partition_of(delivery.account_id, entity, self._topology.partitions)
        copy = Outgoing(self._topology.partition(index), msg.body, dict(msg.headers), msg.message_id, msg.timestamp)
        tag = msg.delivery_tag
        conn.publish_pipelined(copy, lambda: conn.ack(tag))

    def start(self, task: Task) -> None:
        """Start a task the sequencer let go (its turn in its chain came); a stored one learns its hook here."""
        hook = self._roster.get(task.delivery.hook_id)
        if task.held.release is not None:  # read back from the database: it carried only the hook's id
            task.hook = hook or task.hook
        self._start(task, found=hook is not None)

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
        admission = self._lanes.admit(hook.id, task, self._stuck_after_s, cap=_paced_cap(hook))
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

    # -- partitions (PartitionOwner) ---------------------------------------------------------------
    def start_partition(self, index: int) -> None:
        """This worker owns partition `index` now: take its chains over, then consume it."""
        state = self._partitions[index] = _Partition(index)
        conn = self._conn

        def consume() -> None:
            if conn is not self._conn or conn is None or self._partitions.get(index) is not state:
                return
            if not state.releasing:
                state.tag = conn.consume_queue(
                    self._topology.partition(index), self._settings.partition_prefetch, self.on_message
                )

        self._sequencer.claim(index, consume)

    def stop_partition(self, index: int) -> bool:
        """Release partition `index`: stop consuming (what the broker had not handed over yet goes back,
        in order), store what waits in memory, let what runs finish; True once nothing of it is
        unsettled here."""
        state = self._partitions.get(index)
        conn = self._conn
        if state is None or conn is None:
            return True
        if not state.releasing:
            state.releasing = True
            if state.tag is not None:
                conn.cancel_consumer(state.tag)
        if not self._sequencer.release(index):
            return False
        if self._settler.held_in(self._topology.partition(index)):
            return False
        del self._partitions[index]
        return True

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


def _paced_cap(hook: Hook) -> int | None:
    """A rate-limited hook runs at most about a second's worth of its rate at once per worker: more would
    only wait for slots reserved further ahead, holding the engine's capacity and the prefetch window."""
    return None if hook.rate_limit is None else max(1, math.ceil(hook.rate_limit))


def _absent(delivery: Delivery) -> Hook:
    """A stand-in for a hook that no longer exists, so its delivery can be dead-lettered like any other."""
    return Hook(id=delivery.hook_id, account_id=delivery.account_id, url="", events=(), secret="")
