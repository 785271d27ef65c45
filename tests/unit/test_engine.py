"""daemon.engine: the event loop runs tasks' attempts, at most max_in_flight at once, and hands every
result back to the main thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from hookd.broker import Topology
from hookd.config import DeliverySettings
from hookd.daemon.breaker import Breakers
from hookd.daemon.engine import DeliveryEngine
from hookd.daemon.recorder import Recorder
from hookd.daemon.task import Finished, Held, Task
from hookd.messages import Delivery
from hookd.metrics import NoMetrics
from hookd.outcomes import Verdict
from hookd.retry import Attempt
from hookd.subscriptions.model import Hook
from hookd.testing.stub_broker import StubBroker, StubConnection

TOPOLOGY = Topology(exchange="x", prefix="pool")


class ScriptedTransport:
    """Answers each hook's attempts from a script (the last verdict repeats); records every attempt."""

    def __init__(self, script: dict[str, list[Verdict]] | None = None, *, fail: bool = False) -> None:
        self.script = script or {}
        self.fail = fail
        self.attempts: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self.hold: threading.Event | None = None  # while set to an unset event, attempts wait
        self.now = self.peak = 0  # attempts running at once, now and at most
        self.closed_on: threading.Thread | None = None

    def sweep(self) -> None:
        return None

    def close(self) -> None:
        self.closed_on = threading.current_thread()

    async def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        if self.hold is not None:
            while not self.hold.is_set():
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.001)
        with self._lock:
            self.now -= 1
            self.attempts.append((hook.id, delivery.delivery_id, number))
            made = sum(1 for h, d, _ in self.attempts if (h, d) == (hook.id, delivery.delivery_id))
        if self.fail:
            raise RuntimeError("a bug in the transport")
        verdicts = self.script.get(hook.id, [Verdict.DELIVERED])
        verdict = verdicts[min(made, len(verdicts)) - 1]
        return Attempt(number, verdict, 0.001, status=200 if verdict is Verdict.DELIVERED else 503)


class Harness:
    """A pool on a stub connection; `run(tasks)` submits them and collects every result on this thread."""

    def __init__(
        self,
        transport: ScriptedTransport,
        *,
        breaker_threshold: int = 5,
        inline_attempts: int = 3,
        max_in_flight: int = 100,
        breakers: Breakers | None = None,
    ) -> None:
        self.broker = StubBroker()
        self.conn: StubConnection = self.broker.connect(TOPOLOGY)
        self.woken = 0
        self.breakers = breakers or Breakers(threshold=breaker_threshold, cooldown_s=30, disable_after_s=0)
        self.stop = threading.Event()
        self.pool = DeliveryEngine(
            DeliverySettings(max_in_flight=max_in_flight, inline_attempts=inline_attempts, inline_backoff_s=0),
            transport=transport,
            record=Recorder(None),
            breakers=self.breakers,
            metrics=NoMetrics(),
            stop=self.stop,
            on_results=self._on_results,
        )
        self.pool.start()
        self.pool.attach(self.conn)

    def _on_results(self) -> None:
        self.woken += 1

    def task(self, hook_id: str, attempts: int = 0) -> Task:
        hook = Hook(id=hook_id, account_id="acme", url="https://example.com/", events=("job",), secret="s" * 16)
        delivery = Delivery(hook_id, "job.failed", "evt-1", "acme", f"d-{hook_id}", b"{}", attempts)
        return Task(Held(self.conn, 1, 1, TOPOLOGY.events), hook, delivery)

    def run(self, tasks: list[Task]) -> dict[str, Attempt | None]:
        for task in tasks:
            self.pool.submit(task)
        results: dict[str, Attempt | None] = {}
        deadline = 200  # poll turns of up to 50 ms: a liveness bound, not a speed target
        while len(results) < len(tasks) and deadline:
            self.conn.poll(0.05)  # runs the pool's wake-up callbacks, as the daemon's main loop does
            results.update((done.task.hook.id, done.last) for done in self.pool.finished())
            deadline -= 1
        assert len(results) == len(tasks), f"only {len(results)} of {len(tasks)} results came back"
        return results


@pytest.fixture
def harness_factory() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.stop.set()
        harness.pool.close()
        harness.conn.close()


def _harness(
    made: list[Harness], transport: ScriptedTransport, breakers: Breakers | None = None, **options: int
) -> Harness:
    harness = Harness(transport, breakers=breakers, **options)
    made.append(harness)
    return harness


def test_results_come_back_to_the_main_thread_with_a_wake_up(harness_factory: list[Harness]) -> None:
    """Every submitted task's last attempt comes back through `finished()`, announced by a wake-up."""
    transport = ScriptedTransport()
    harness = _harness(harness_factory, transport)
    results = harness.run([harness.task(str(n)) for n in range(10)])
    assert all(last is not None and last.verdict is Verdict.DELIVERED for last in results.values())
    assert 1 <= harness.woken <= 10
    assert not harness.pool.busy


def test_inline_retries_continue_the_attempt_numbers(harness_factory: list[Harness]) -> None:
    """A retryable attempt is retried in process; numbers continue from the delivery's attempts so far."""
    transport = ScriptedTransport({"h": [Verdict.RETRYABLE, Verdict.RETRYABLE, Verdict.DELIVERED]})
    harness = _harness(harness_factory, transport)
    last = harness.run([harness.task("h", attempts=4)])["h"]
    assert last is not None and last.verdict is Verdict.DELIVERED and last.number == 7
    assert [n for _, _, n in transport.attempts] == [5, 6, 7]


def test_a_task_of_a_lost_connection_is_handed_back_unstarted(harness_factory: list[Harness]) -> None:
    """After a reconnect, work taken on the old connection is not attempted: its message is back on the broker."""
    transport = ScriptedTransport()
    harness = _harness(harness_factory, transport)
    stale = harness.task("old")
    harness.pool.attach(harness.broker.connect(TOPOLOGY))  # the daemon reconnected meanwhile
    harness.pool.submit(stale)
    finished: list[Finished] = []
    assert harness.broker.wait(lambda: bool(finished.extend(harness.pool.finished()) or finished), 5)
    assert finished == [Finished(stale, None)]
    assert transport.attempts == []


def test_a_bug_in_an_attempt_becomes_a_retryable_result(harness_factory: list[Harness]) -> None:
    """An exception from the transport must not lose the event: it is reported as retryable."""
    harness = _harness(harness_factory, ScriptedTransport(fail=True), inline_attempts=1)
    last = harness.run([harness.task("h")])["h"]
    assert last is not None and last.verdict is Verdict.RETRYABLE and "internal error" in (last.error or "")


def test_an_opening_circuit_stops_the_inline_retries(harness_factory: list[Harness]) -> None:
    """Once the hook's circuit opens, the task gives up in-process retries (the durable path takes over)."""
    transport = ScriptedTransport({"h": [Verdict.RETRYABLE]})
    harness = _harness(harness_factory, transport, breaker_threshold=2, inline_attempts=5)
    last = harness.run([harness.task("h")])["h"]
    assert last is not None and last.verdict is Verdict.RETRYABLE
    assert len(transport.attempts) == 2
    assert harness.breakers.is_open("h")


def test_no_more_than_max_in_flight_attempts_run_at_once(harness_factory: list[Harness]) -> None:
    """Beyond `max_in_flight`, tasks wait inside the engine and start, in order, as others finish."""
    transport = ScriptedTransport()
    transport.hold = threading.Event()
    harness = _harness(harness_factory, transport, max_in_flight=3)
    for n in range(8):
        harness.pool.submit(harness.task(str(n)))
    assert harness.broker.wait(lambda: transport.now == 3, 5)
    assert transport.now == 3 and harness.pool.outstanding == 8 and harness.pool.busy
    transport.hold.set()
    assert harness.broker.wait(lambda: len(transport.attempts) == 8, 5)
    assert transport.peak == 3
    assert sorted(hook for hook, _, _ in transport.attempts) == [str(n) for n in range(8)]


def test_inline_retries_stop_once_the_tasks_connection_is_gone(harness_factory: list[Harness]) -> None:
    """A task whose message went back to the broker (reconnect) makes no further in-process attempt:
    the delivery is another consumer's now, and a late retry could overtake its later events."""
    transport = ScriptedTransport({"h": [Verdict.RETRYABLE]})
    transport.hold = threading.Event()
    harness = _harness(harness_factory, transport, inline_attempts=5)
    harness.pool.submit(harness.task("h"))
    assert harness.broker.wait(lambda: transport.now == 1, 5)
    harness.pool.attach(harness.broker.connect(TOPOLOGY))  # reconnected while the first attempt ran
    transport.hold.set()
    finished: list[Finished] = []
    assert harness.broker.wait(lambda: bool(finished.extend(harness.pool.finished()) or finished), 5)
    assert len(transport.attempts) == 1
    assert finished[0].last is not None and finished[0].last.verdict is Verdict.RETRYABLE


def test_a_failing_hook_past_disable_after_comes_back_marked_for_disabling(harness_factory: list[Harness]) -> None:
    """The disable decision travels with the result (no shared flag on the task)."""
    transport = ScriptedTransport({"h": [Verdict.RETRYABLE]})
    wall = iter(range(0, 10_000, 100))  # every reading of the wall clock is 100 s later
    breakers = Breakers(threshold=10, cooldown_s=30, disable_after_s=150, wall=lambda: float(next(wall)))
    harness = _harness(harness_factory, transport, breakers=breakers, inline_attempts=3)
    harness.pool.submit(harness.task("h"))
    finished: list[Finished] = []
    assert harness.broker.wait(lambda: bool(finished.extend(harness.pool.finished()) or finished), 5)
    assert finished[0].disable


def test_close_stops_the_loop_and_closes_the_transport_on_it(harness_factory: list[Harness]) -> None:
    """`close()` closes the transport's pools on the loop's own thread, then joins that thread."""
    transport = ScriptedTransport()
    harness = _harness(harness_factory, transport)
    harness.run([harness.task("h")])
    harness.pool.close()
    assert transport.closed_on is not None and transport.closed_on.name == "delivery-engine"
    assert not transport.closed_on.is_alive()
