"""Settling deliveries: a message is acked once all its deliveries are settled, and a share handed to a
retry or dead-letter queue counts as settled only when the broker confirms it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hookd.broker import Connection, Incoming, Outgoing, Topology
from hookd.config import DeliverySettings
from hookd.daemon.breaker import Breakers
from hookd.daemon.recorder import Recorder
from hookd.daemon.roster import Roster
from hookd.daemon.settlement import Settler
from hookd.daemon.task import Task
from hookd.messages import Delivery
from hookd.metrics import NoMetrics
from hookd.outcomes import Verdict
from hookd.retry import Attempt
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook

TOPOLOGY = Topology(exchange="x", prefix="t", retry_delays_s=(5.0, 60.0))


class FakeConnection:
    """Records what the settler asks of the broker; confirms only when the test says so."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[Outgoing] = []
        self.declared: list[float] = []
        self._waiting: list[Callable[[], None]] = []

    def ack(self, tag: int) -> None:
        self.acked.append(tag)

    def declare_delay(self, delay_s: float) -> None:
        self.declared.append(delay_s)

    def publish_pipelined(self, message: Outgoing, on_confirmed: Callable[[], None]) -> None:
        self.published.append(message)
        self._waiting.append(on_confirmed)

    def confirm_all(self) -> None:
        waiting, self._waiting = self._waiting, []
        for continuation in waiting:
            continuation()


def _settler(prefetch: int = 10, roster: Roster | None = None) -> Settler:
    """A settler whose roster's source keeps no disables (like a hooks file without a state database)."""
    settler = Settler(
        DeliverySettings(retry_delays_s=(5.0, 60.0)),
        TOPOLOGY,
        prefetch,
        metrics=NoMetrics(),
        record=Recorder(None),
        breakers=Breakers(threshold=5, cooldown_s=30, disable_after_s=0),
        roster=roster or Roster(HookSet(), persisted=False),
    )
    settler.reset()
    return settler


def _message(tag: int, queue: str = "t.events") -> Incoming:
    return Incoming(queue, "task.failed", b"{}", "evt-1", {}, None, tag, False)


def _tasks(settler: Settler, conn: FakeConnection, tag: int, hooks: int, queue: str = "t.events") -> list[Task]:
    held = settler.hold(cast(Connection, conn), _message(tag, queue), hooks)
    tasks = []
    for n in range(hooks):
        hook = Hook(id=f"h{n}", account_id="acme", url="https://example.com/", events=("task",), secret="s" * 32)
        tasks.append(Task(held, hook, Delivery(hook.id, "task.failed", "evt-1", "acme", f"d{n}", b"{}")))
    return tasks


def _attempt(verdict: Verdict, status: int | None = None, **fields: Any) -> Attempt:
    return Attempt(1, verdict, 0.01, status=status, **fields)


def test_the_message_is_acked_after_its_last_delivery() -> None:
    """An event message is acked when the last of its deliveries settles, not before."""
    settler, conn = _settler(), FakeConnection()
    first, second = _tasks(settler, conn, tag=7, hooks=2)
    settler.settle(first, _attempt(Verdict.DELIVERED, 200))
    assert conn.acked == []
    settler.settle(second, _attempt(Verdict.DELIVERED, 204))
    assert conn.acked == [7]


def test_a_retry_settles_its_share_only_when_the_broker_confirms_it() -> None:
    """A retry's share of the message counts as settled only once the broker confirmed the retry."""
    settler, conn = _settler(), FakeConnection()
    [task] = _tasks(settler, conn, tag=3, hooks=1)
    settler.settle(task, _attempt(Verdict.RETRYABLE, 503, error="HTTP 503"))
    [retry] = conn.published
    assert retry.routing_key == TOPOLOGY.retry_queue(5.0)
    assert retry.headers["hook_id"] == "h0" and retry.headers["retries"] == 1
    assert conn.acked == []  # not before the confirm: a crash now must bring the event back
    conn.confirm_all()
    assert conn.acked == [3]


def test_a_permanent_failure_is_dead_lettered_then_acked_on_confirm() -> None:
    """A permanent failure goes to the dead-letter queue; the message is acked on that confirm."""
    settler, conn = _settler(), FakeConnection()
    [task] = _tasks(settler, conn, tag=4, hooks=1)
    settler.settle(task, _attempt(Verdict.PERMANENT, 400, error="HTTP 400"))
    [dead] = conn.published
    assert dead.routing_key == TOPOLOGY.dead and dead.headers["reason"] == "permanent_failure"
    conn.confirm_all()
    assert conn.acked == [4]


def test_gone_disables_the_hook() -> None:
    """A 410 disables the hook (recorded in the roster) and dead-letters the delivery."""
    roster = Roster(HookSet(), persisted=False)
    settler, conn = _settler(roster=roster), FakeConnection()
    [task] = _tasks(settler, conn, tag=5, hooks=1)
    settler.settle(task, _attempt(Verdict.GONE, 410, error="HTTP 410"))
    assert dict(roster.disabled) == {"h0": "gone"}
    assert conn.published[0].routing_key == TOPOLOGY.dead


def test_a_retry_after_beyond_the_schedule_declares_its_delay_queue_once() -> None:
    """A Retry-After longer than the schedule declares its delay queue once for every delivery."""
    settler, conn = _settler(), FakeConnection()
    tasks = _tasks(settler, conn, tag=6, hooks=2)
    for task in tasks:
        settler.settle(task, _attempt(Verdict.RETRYABLE, 429, error="HTTP 429", retry_after_s=120.0))
    assert len(conn.declared) == 1 and conn.declared[0] >= 120.0
    assert {m.routing_key for m in conn.published} == {TOPOLOGY.retry_queue(conn.declared[0])}


def test_the_window_is_full_when_every_prefetched_message_is_held() -> None:
    """The prefetch window is full while every prefetched message is held, and frees on settling."""
    settler, conn = _settler(prefetch=2), FakeConnection()
    first = _tasks(settler, conn, tag=1, hooks=1)
    assert not settler.window_full()
    _tasks(settler, conn, tag=2, hooks=1)
    assert settler.window_full()
    settler.settle(first[0], _attempt(Verdict.DELIVERED, 200))
    assert not settler.window_full()


def test_a_partitions_window_is_its_share_of_the_prefetch() -> None:
    """A partition's consumer has a window of its own size (its share of the prefetch): it is full at
    that many held messages, while the events queue's window is the whole prefetch."""
    topology = Topology(exchange="x", prefix="t", retry_delays_s=(5.0, 60.0), partitions=4)
    settler = Settler(
        DeliverySettings(retry_delays_s=(5.0, 60.0)),
        topology,
        8,
        partition_prefetch=2,
        metrics=NoMetrics(),
        record=Recorder(None),
        breakers=Breakers(threshold=5, cooldown_s=30, disable_after_s=0),
        roster=Roster(HookSet(), persisted=False),
    )
    settler.reset()
    conn = FakeConnection()
    for tag in range(1, 3):
        _tasks(settler, conn, tag=tag, hooks=1)
    assert not settler.window_full()
    first = _tasks(settler, conn, tag=3, hooks=1, queue=topology.partition(1))
    assert not settler.window_full()
    _tasks(settler, conn, tag=4, hooks=1, queue=topology.partition(1))
    assert settler.window_full()
    settler.settle(first[0], _attempt(Verdict.DELIVERED, 200))
    assert not settler.window_full()
