"""Ordered delivery end to end on the in-memory broker: one entity's events reach a hook in the order
they were published, through failures, durable retries, dead letters and a worker that dies, while
unordered hooks, other entities, pings and redeliveries are not held; an event without an entity is
delivered unordered (logged once per process); the waiting gauge counts what waits."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from support.inprocess import DELIVERED, Answer, InProcessDaemon, ScriptedTransport

from hookd.config import DeliverySettings
from hookd.messages import Delivery
from hookd.metrics import Metrics
from hookd.outcomes import Verdict
from hookd.publisher import delivery_message, ping_message
from hookd.state import ordered
from hookd.state.db import Database
from hookd.subscriptions.model import Hook
from hookd.targeted import redelivery
from hookd.testing.stub_broker import StubBroker

HookFactory = Callable[..., Hook]
LIFECYCLE = ("job.submitted", "job.started", "job.completed")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite state database in the test's folder."""
    with Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}") as db:
        db.migrate()
        yield db


@pytest.fixture
def daemons() -> Iterator[list[InProcessDaemon]]:
    started: list[InProcessDaemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def _delivery(**options: object) -> DeliverySettings:
    """Quick retries, no breaker, no jitter: what the tests below drive is the ordering."""
    values: dict[str, object] = {
        "inline_attempts": 1,
        "inline_backoff_s": 0,
        "retry_delays_s": (0.2, 0.2, 0.2),
        "breaker_threshold": 0,
        "retry_jitter": 0,
    }
    values.update(options)
    return DeliverySettings(**values)  # type: ignore[arg-type]


def _publish_jobs(daemon: InProcessDaemon, jobs: range) -> None:
    for job in jobs:
        for event in LIFECYCLE:
            daemon.publish(event, "acme", json.dumps({"id": job, "status": event}).encode())


def _first_arrivals(transport: ScriptedTransport, hook_id: str) -> dict[int, list[str]]:
    """Per job, its events in the order they first reached the receiver (a repeat is not an arrival)."""
    found: dict[int, list[str]] = {}
    for made in transport.to(hook_id):
        events = found.setdefault(json.loads(made.body)["id"], [])
        if made.event not in events:
            events.append(made.event)
    return found


def _out_of_order(transport: ScriptedTransport, hook_id: str, jobs: range) -> list[int]:
    arrivals = _first_arrivals(transport, hook_id)
    return [job for job in jobs if arrivals.get(job) != list(LIFECYCLE)]


def _drained(daemon: InProcessDaemon, state: Database) -> Callable[[], bool]:
    """Nothing left anywhere: no message in any queue (delay queues included), none unacked, no row."""

    def check() -> bool:
        broker = daemon.broker
        return not broker.held() and not any(broker.ready(q) for q in broker.queues if q != daemon.topology.dead)

    def done() -> bool:
        return daemon.broker.wait(check, 0.05) and not ordered.places(state)

    return done


def _wait(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    pause = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return True
        pause.wait(0.05)
    return condition()


def _a_head_in_a_durable_retry(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> tuple[InProcessDaemon, ScriptedTransport, threading.Event]:
    """Job 0 published to an ordered hook whose attempts fail until the event returned is set: its
    `job.submitted` goes round the durable retry path (every 0.3 s) with a row marked away, and
    `job.started` and `job.completed` wait in the state database behind it."""
    release = threading.Event()

    def first_fails_until_released(_hook: Hook, _number: int) -> Answer:
        return DELIVERED if release.is_set() else (Verdict.RETRYABLE, 503)

    transport = ScriptedTransport(first_fails_until_released)
    d = InProcessDaemon(
        [make_hook(id="1", events=("job",))],
        transport,
        state=state,
        partitions=2,
        delivery=_delivery(retry_delays_s=(0.3,) * 40),
    )
    daemons.append(d)
    _publish_jobs(d, range(1))
    assert _wait(lambda: len(ordered.places(state)) == 3), "the head and two successors are not stored"
    return d, transport, release


def test_a_jobs_events_reach_an_ordered_hook_in_publish_order(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """60 jobs x 3 events, a receiver taking 0-20 ms and failing one attempt in six (some for good):
    every job's events first arrive in publish order, nothing is left waiting, nothing is lost."""
    rng = random.Random(7)
    lock = threading.Lock()

    def flaky(_hook: Hook, _number: int) -> Answer:
        with lock:
            roll = rng.random()
        if roll < 0.15:
            return (Verdict.RETRYABLE, 503)
        return (Verdict.PERMANENT, 400) if roll < 0.17 else DELIVERED

    transport = ScriptedTransport(flaky, latency=lambda: rng.random() * 0.02)
    hook = make_hook(id="1", events=("job",))
    d = InProcessDaemon([hook], transport, state=state, partitions=4, delivery=_delivery())
    daemons.append(d)
    _publish_jobs(d, range(60))
    assert _wait(_drained(d, state)), "deliveries still waiting"
    assert _out_of_order(transport, "1", range(60)) == []
    dead = d.broker.ready(d.topology.dead)
    delivered = {m.delivery_id for m in transport.to("1")}
    assert len(delivered) == 180 and dead >= 1  # every delivery was attempted; the 400s dead-lettered


def test_a_head_in_a_durable_retry_holds_its_successors_in_the_database(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """While `job.submitted` waits in a retry queue, `job.started` and `job.completed` wait in the state
    database (not in the prefetch window), and follow it once it is delivered."""
    d, transport, release = _a_head_in_a_durable_retry(daemons, make_hook, state)
    assert not d.broker.held()  # nothing held unacked while the head waits
    assert {m.event for m in transport.made} == {"job.submitted"}
    release.set()
    assert _wait(_drained(d, state))
    assert _first_arrivals(transport, "1")[0] == list(LIFECYCLE)


def test_a_dead_lettered_head_releases_its_successors(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """A head refused for good (400) is dead-lettered, and the events after it are delivered."""

    def refuse_submitted(_hook: Hook, delivery: Delivery, _number: int) -> Answer:
        return (Verdict.PERMANENT, 400) if delivery.event == "job.submitted" else DELIVERED

    transport = ScriptedTransport(answer_for=refuse_submitted)
    d = InProcessDaemon(
        [make_hook(id="1", events=("job",))], transport, state=state, partitions=2, delivery=_delivery()
    )
    daemons.append(d)
    _publish_jobs(d, range(3))
    assert _wait(_drained(d, state))
    assert d.broker.ready(d.topology.dead) == 3
    assert all(events == list(LIFECYCLE) for events in _first_arrivals(transport, "1").values())


def test_an_unordered_hook_and_other_entities_are_not_held(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """While job 1's head hangs at an ordered hook, job 1's next event waits, but jobs 2 and 3 reach
    it, and an unordered hook gets every event, job 1's included."""

    def job_one_submitted(hook: Hook, delivery: Delivery) -> bool:
        return hook.id == "1" and delivery.event == "job.submitted" and json.loads(delivery.body)["id"] == 1

    transport = ScriptedTransport(hold=job_one_submitted)
    ordered_hook = make_hook(id="1", events=("job",))
    free_hook = make_hook(id="2", events=("job",), ordered=False)
    d = InProcessDaemon([ordered_hook, free_hook], transport, state=state, partitions=2, delivery=_delivery())
    daemons.append(d)
    _publish_jobs(d, range(1, 4))
    assert _wait(lambda: len(transport.to("1")) == 7 and len(transport.to("2")) == 9)
    assert _first_arrivals(transport, "1")[1] == ["job.submitted"]  # the rest of job 1 waits
    transport.released.set()
    assert _wait(_drained(d, state))
    assert _out_of_order(transport, "1", range(1, 4)) == []


def test_a_second_worker_shares_the_partitions_and_takes_them_all_when_the_first_dies(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """Two workers split the partitions; when one dies mid-stream (its connection lost at once), the
    other owns every partition and no job is delivered out of order or lost."""
    rng = random.Random(3)
    transport = ScriptedTransport(latency=lambda: rng.random() * 0.01)
    broker = StubBroker()
    hook = make_hook(id="1", events=("job",))
    first = InProcessDaemon(
        [hook], transport, state=state, partitions=8, delivery=_delivery(), broker=broker, token="t"
    )
    second = InProcessDaemon(
        [hook], transport, state=state, partitions=8, delivery=_delivery(), broker=broker, token="t"
    )
    daemons.extend([first, second])
    assert _wait(lambda: sorted(first.daemon.partitions + second.daemon.partitions) == list(range(8)))
    assert _wait(lambda: len(first.daemon.partitions) == len(second.daemon.partitions) == 4)
    _publish_jobs(first, range(40))
    assert _wait(lambda: len(transport.to("1")) >= 30)
    first.crash()
    daemons.remove(first)
    assert _wait(lambda: sorted(second.daemon.partitions) == list(range(8)))
    _publish_jobs(second, range(40, 60))
    assert _wait(_drained(second, state))
    assert _out_of_order(transport, "1", range(60)) == []


def test_past_the_bound_a_waiting_delivery_is_dead_lettered_not_lost(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """With `ordered_max_waiting: 2`, the third delivery that would wait is dead-lettered with reason
    `too_many_waiting` (replayable); the ones kept are delivered in order once the head ends."""

    def job_one_submitted(_hook: Hook, delivery: Delivery) -> bool:
        return delivery.event == "job.submitted"

    transport = ScriptedTransport(hold=job_one_submitted)
    hooks = [make_hook(id="1", events=("job",))]
    d = InProcessDaemon(hooks, transport, state=state, partitions=1, delivery=_delivery(ordered_max_waiting=2))
    daemons.append(d)
    for event in ("job.submitted", "job.started", "job.completed", "job.failed"):
        d.publish(event, "acme", b'{"id": 1}')
    assert _wait(lambda: d.broker.ready(d.topology.dead) == 1)
    [dead] = d.broker.messages(d.topology.dead)
    assert (dead.headers["reason"], dead.headers["event"]) == ("too_many_waiting", "job.failed")
    transport.released.set()
    assert _wait(_drained(d, state))
    assert [m.event for m in transport.to("1")] == ["job.submitted", "job.started", "job.completed"]


def _fails_until(release: threading.Event, event: str) -> Callable[[Hook, Delivery, int], Answer]:
    """Answers: 503 to `event` until `release` is set, 200 to everything else."""

    def answer(_hook: Hook, delivery: Delivery, _number: int) -> Answer:
        return (Verdict.RETRYABLE, 503) if delivery.event == event and not release.is_set() else DELIVERED

    return answer


def test_an_event_without_an_entity_is_logged_unordered_once_per_process(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """Three events without an entity (no `id`, no `ordering_key`) are all delivered, unordered, and
    `event.unordered` is logged once for the process (naming the first), not once per event."""
    transport = ScriptedTransport()
    d = InProcessDaemon(
        [make_hook(id="1", events=("job",))], transport, state=state, partitions=2, delivery=_delivery()
    )
    daemons.append(d)
    with capture_logs() as logged:
        first = d.publish("job.submitted", "acme", b'{"status": "queued"}')
        d.publish("job.started", "acme", b'{"status": "running"}')
        d.publish("job.completed", "acme", b'{"status": "done"}')
        assert _wait(lambda: len(transport.to("1")) == 3), "the events without an entity were not delivered"
        assert _wait(_drained(d, state))
    unordered = [entry for entry in logged if entry["event"] == "event.unordered"]
    assert [(entry["event_id"], entry["log_level"]) for entry in unordered] == [(first, "warning")]


def test_a_ping_and_a_redelivery_are_not_held_behind_a_head_in_a_durable_retry(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """While job 1's `job.started` waits in a durable retry with `job.completed` behind it, a ping of
    the hook and an admin's redelivery of job 1's `job.submitted` (same hook, same job) are delivered
    at once; the chain then goes on in order once its head is delivered."""
    release = threading.Event()
    transport = ScriptedTransport(answer_for=_fails_until(release, "job.started"))
    hook = make_hook(id="1", events=("job",))
    d = InProcessDaemon([hook], transport, state=state, partitions=2, delivery=_delivery(retry_delays_s=(0.3,) * 100))
    daemons.append(d)
    body = json.dumps({"id": 1}).encode()
    submitted = d.publish("job.submitted", "acme", body, event_id="evt-1-submitted")
    d.publish("job.started", "acme", body, event_id="evt-1-started")
    d.publish("job.completed", "acme", body, event_id="evt-1-completed")
    # the head away in its retry (its row marked away), `job.completed` stored behind it
    assert _wait(lambda: [place.away for place in ordered.places(state)] == [True, False])
    [first] = [made for made in transport.to("1") if made.event == "job.submitted"]

    row = {"hook_id": "1", "event": "job.submitted", "event_id": submitted, "account_id": "acme"}
    again = redelivery({**row, "delivery_id": first.delivery_id, "body": first.body, "attempts": 1})
    d.broker.publish(delivery_message(again, d.topology))
    ping, ping_id = ping_message(hook, d.topology)
    d.broker.publish(ping)

    def both_delivered() -> bool:
        ids = [made.delivery_id for made in transport.to("1")]
        return ping_id in ids and ids.count(first.delivery_id) == 2

    assert _wait(both_delivered, timeout_s=10), "the ping or the redelivery waited behind the chain"
    assert "job.completed" not in {made.event for made in transport.to("1")}  # the chain still waits
    assert [place.away for place in ordered.places(state)] == [True, False]
    release.set()
    assert _wait(_drained(d, state))
    assert _first_arrivals(transport, "1")[1] == list(LIFECYCLE)


def test_the_waiting_gauge_counts_the_deliveries_waiting_and_returns_to_zero(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """With job 1's head failing into durable retries and three more of its events behind it, and job
    2's head failing with one behind it, `hookd_ordered_waiting{hook_id}` shows 4 (the rows waiting in
    the state database, heads not counted); once the heads are delivered, it returns to 0."""
    release = threading.Event()
    transport = ScriptedTransport(answer_for=_fails_until(release, "job.submitted"))
    d = InProcessDaemon(
        [make_hook(id="1", events=("job",))],
        transport,
        state=state,
        partitions=2,
        delivery=_delivery(retry_delays_s=(0.3,) * 100),
        metrics=True,
    )
    daemons.append(d)
    assert isinstance(d.daemon.metrics, Metrics)
    registry = d.daemon.metrics.registry

    def gauge() -> float | None:
        return registry.get_sample_value("hookd_ordered_waiting", {"hook_id": "1"})

    for event in ("job.submitted", "job.started", "job.completed", "job.failed"):
        d.publish(event, "acme", b'{"id": 1}')
    for event in ("job.submitted", "job.started"):
        d.publish(event, "acme", b'{"id": 2}')

    def stored() -> int:
        return sum(not place.away for place in ordered.places(state))

    assert _wait(lambda: stored() == 4), "the four successors are not stored"
    assert _wait(lambda: gauge() == 4), f"hookd_ordered_waiting is {gauge()}, 4 deliveries wait"
    assert stored() == 4 and {made.event for made in transport.made} == {"job.submitted"}
    release.set()
    assert _wait(_drained(d, state))
    assert _wait(lambda: gauge() == 0), f"hookd_ordered_waiting is {gauge()} with nothing waiting"
    assert len({made.delivery_id for made in transport.to("1")}) == 6


def test_a_head_cut_off_after_its_successors_were_stored_still_goes_first(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """Job 1's `job.submitted` hangs at the receiver long enough for `job.started` and `job.completed`
    to be stored (their messages acked); the worker then dies, its head's message going back to the
    partition. The next worker delivers `job.submitted` first, then the stored two, in order."""

    def submitted(_hook: Hook, delivery: Delivery) -> bool:
        return delivery.event == "job.submitted"

    hook = make_hook(id="1", events=("job",))
    broker = StubBroker()
    first = InProcessDaemon(
        [hook],
        ScriptedTransport(hold=submitted),
        state=state,
        partitions=2,
        delivery=_delivery(),
        broker=broker,
        token="t",
    )
    daemons.append(first)
    _publish_jobs(first, range(1, 2))
    assert _wait(lambda: len(ordered.places(state)) >= 2), "the successors were not stored"
    first.crash()
    daemons.remove(first)
    transport = ScriptedTransport()
    second = InProcessDaemon(
        [hook],
        transport,
        state=state,
        partitions=2,
        delivery=_delivery(),
        broker=broker,
        token="t",
    )
    daemons.append(second)
    assert _wait(_drained(second, state))
    assert _first_arrivals(transport, "1")[1] == list(LIFECYCLE)


def test_a_head_back_from_a_retry_is_acked_only_once_its_row_is_deleted(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database, tmp_path: Path
) -> None:
    """`job.submitted` comes back from its durable retry as a message and has a row (away). Delivered,
    its message stays unacked until the row is deleted: with the database locked, the delete waits,
    and so does the ack. (Acked first, a crash before the delete left a row marked away whose message
    was gone: the next owner waited for it, and the job's next events behind it, for good.)"""
    d, transport, release = _a_head_in_a_durable_retry(daemons, make_hook, state)
    locker = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    try:
        with capture_logs() as logged:
            locker.execute("BEGIN EXCLUSIVE")
            release.set()
            assert _wait(lambda: any(m.event == "job.submitted" for m in transport.to("1")[1:])), "no retry came"
            assert _wait(lambda: any(e["event"] == "ordering.store_unavailable" for e in logged)), "no delete tried"
            assert d.broker.held() == 1, "the head's message was acked before its row was deleted"
    finally:
        locker.rollback()
        locker.close()
    assert _wait(_drained(d, state))
    assert _first_arrivals(transport, "1")[0] == list(LIFECYCLE)
