"""Receivers that hang, trickle or flood: attempts end at the deadline and one bad hook does not starve the rest."""

from __future__ import annotations

import itertools
import signal

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, wait_until

from .harness import dead_letters, declare_topology, delivery, pairs, publish_events, rate, wait_accepted
from .ledger import classify
from .receiver import FaultReceiver, Flood, Reply, Script, Trickle

MB = 1_000_000
TIMEOUT_S = 1.0
#: An attempt "ends at the deadline" when it lasts at least nine tenths of delivery.timeout_s (it was
#: not cut early) and is over long before the receiver would answer (it was cut, not waited out: the
#: receivers here answer after 30 s, or never). How much longer than the deadline it took is the
#: machine's business (a busy event loop notices late), not a behaviour: 10 x is far from both.
DEADLINE_BAND = (0.9, 10.0)
HEALTHY = [f"h{n}" for n in range(1, 10)]
#: The hanging hook's deadline beside the nine: longer than the nine need, however slow the machine.
HANG_DEADLINE_S = 20.0
EVENTS_PER_PHASE = 150


def assert_cut_at_deadline(line: dict[str, object]) -> None:
    low, high = (TIMEOUT_S * 1000 * factor for factor in DEADLINE_BAND)
    duration = float(line["duration_ms"])  # type: ignore[arg-type]
    assert low <= duration <= high, f"attempt lasted {duration} ms, deadline {TIMEOUT_S * 1000:g} ms: {line}"


def test_hanging_receiver_is_cut_at_the_deadline(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """A receiver that never answers is abandoned at delivery.timeout_s, and the attempt says it timed out."""
    receiver.on("/hang", Script(then=Reply(200, delay_s=30)))
    daemon = hookd.start(
        [hook_entry("hang", receiver.url("/hang"))],
        delivery=delivery(timeout_s=TIMEOUT_S, inline_attempts=2, retry_delays_s=[30]),
    )
    publish_events(amqp, prefix, 1)

    lines = daemon.wait_log("delivery.attempt", hook_id="hang", count=2, timeout_s=15)
    for line in lines:
        assert_cut_at_deadline(line)
        assert line["outcome"] == "retryable"
        assert any(word in str(line["error"]).lower() for word in ("timeout", "timed out", "deadline")), line


def test_hanging_hook_leaves_the_others_their_throughput(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """With a tenth hook hanging, the other nine never wait for it: every one of their deliveries is
    made while the hanging hook's attempts are still hanging (before its deadline, 20 s, ends any),
    which waiting behind a hanging attempt could not do. Parking the hang's backlog once it is quiet
    costs them at most `quiet_after_s` (2 s here), once.

    Their rates alone and beside the hang, and their longest gap, are printed, not asserted: a rate is
    the bench's to measure (`hang-10pct`), and on a run this short it mostly measures the machine."""
    receiver.on("/hang", Script(then=Reply(200, delay_s=60)))
    hooks = [hook_entry(h, receiver.url(f"/ok/{h}"), events=["job", "cluster"]) for h in HEALTHY]
    hooks.append(hook_entry("hang", receiver.url("/hang"), events=["cluster"]))  # job events: the nine alone
    declare_topology(
        hookd,
        hooks,
        broker={"prefetch": 32},
        # the hanging hook may hold 2 of 16 in flight; what waits behind it is parked once it is quiet
        delivery=delivery(
            timeout_s=HANG_DEADLINE_S,
            max_in_flight=16,
            per_hook_concurrency=2,
            inline_attempts=1,
            retry_delays_s=[5],
            drain_timeout_s=1,  # SIGTERM abandons the hanging attempts (they come back to the queue)
        ),
    )

    def phase(event: str) -> tuple[list[str], float, float, list[dict[str, object]]]:
        """Publish a backlog, start hookd on it; the events, the nine's deliveries per second, the
        longest gap between two of their deliveries, and the hang's attempts that had ended by then."""
        events = publish_events(amqp, prefix, EVENTS_PER_PHASE, event=event)
        daemon = hookd.start()
        wait_accepted(receiver, pairs(events, HEALTHY), timeout_s=HANG_DEADLINE_S * 3)
        ended = daemon.find("delivery.attempt", hook_id="hang")
        daemon.send(signal.SIGTERM)
        published = set(events)
        nine = [r for r in receiver.requests() if r.accepted and r.event_id in published and r.hook_id in HEALTHY]
        times = sorted(r.at for r in nine)
        return events, rate(nine), max(later - earlier for earlier, later in itertools.pairwise(times)), ended

    alone, rate_alone, _, _ = phase("job.completed")
    hookd.processes[-1].wait_exit(timeout_s=15)
    beside, rate_beside, longest_gap_s, ended = phase("cluster.available")
    print(
        f"nine healthy hooks: {rate_alone:.0f}/s alone, {rate_beside:.0f}/s beside a hanging hook "
        f"(longest gap {longest_gap_s:.3f} s)"
    )
    assert receiver.requests("/hang"), "the hanging hook got nothing: the test proves nothing"
    assert not ended, f"a hanging attempt ended before the nine were done: they waited for it ({ended[0]})"

    tally = classify(pairs(alone + beside, HEALTHY), receiver.receipts(), dead_letters(amqp, prefix), label="nine")
    assert (tally.lost, tally.dead_lettered) == (0, 0)


def test_a_full_prefetch_window_parks_the_work_waiting_on_a_silent_hook(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """When every prefetched event is held by deliveries queued behind a hook that does not answer, that
    backlog is parked (reason "backlog") so the healthy hook gets every event long before the hanging
    attempts end, rather than one prefetch window per stuck-hook interval."""
    receiver.on("/hang", Script(then=Reply(200, delay_s=60)))
    hooks = [hook_entry("ok", receiver.url("/ok")), hook_entry("hang", receiver.url("/hang"))]
    declare_topology(
        hookd,
        hooks,
        # one partition: its consumer's window of 4 is the whole window (16 partitions would hold 64 events)
        broker={"prefetch": 4, "partitions": 1},
        # a 30 s deadline: the hook is "stuck" only after 2 s without an answer; the window fills first
        delivery=delivery(timeout_s=30, per_hook_concurrency=1, per_hook_backlog=100, retry_delays_s=[60]),
    )
    events = publish_events(amqp, prefix, 40)
    daemon = hookd.start()
    wait_accepted(receiver, pairs(events, ["ok"]), timeout_s=25)
    daemon.wait_log("delivery.parked", hook_id="hang", reason="backlog")  # the full window was parked
    assert not daemon.find("delivery.attempt", hook_id="hang"), "the hanging attempt ended: the test proves nothing"
    assert not dead_letters(amqp, prefix)


@pytest.mark.parametrize("head", [False, True], ids=["trickled-body", "trickled-status-line"])
def test_trickling_receiver_is_cut_at_the_deadline(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names, head: bool
) -> None:
    """A receiver sending one byte per 0.5 s (of the body, or from the status line on) is cut off at the deadline."""
    trickle = receiver.on("/trickle", Trickle(head=head))
    daemon = hookd.start(
        [hook_entry("slow", receiver.url("/trickle"))],
        delivery=delivery(timeout_s=TIMEOUT_S, inline_attempts=1, retry_delays_s=[30]),
    )
    publish_events(amqp, prefix, 1)

    line = daemon.wait_log("delivery.attempt", hook_id="slow", timeout_s=4 * TIMEOUT_S + 6)[0]
    wait_until(lambda: trickle.streams and trickle.streams[0].done.is_set(), timeout_s=15, what="the trickle to end")
    stream = trickle.streams[0]
    print(f"trickle: {stream.sent} byte(s) in {stream.ended - stream.started:.1f} s, ended by {stream.reason}")
    assert_cut_at_deadline(line)


def test_huge_response_is_not_read_whole(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """A 200 MB answer is not downloaded (the receiver gets to send a few MB at most) and still counts as a 200."""
    flood = receiver.on("/huge", Flood(200 * MB))
    daemon = hookd.start([hook_entry("big", receiver.url("/huge"))], delivery=delivery(inline_attempts=1))
    [event_id] = publish_events(amqp, prefix, 1)

    line = daemon.wait_log("delivery.attempt", hook_id="big", timeout_s=20)[0]
    wait_until(lambda: flood.streams and flood.streams[0].done.is_set(), timeout_s=15, what="the flood to end")
    stream = flood.streams[0]
    print(f"flood: {stream.sent / MB:.1f} MB sent in {stream.ended - stream.started:.1f} s, ended by {stream.reason}")
    assert stream.sent < 20 * MB
    assert (line["status"], line["outcome"]) == (200, "delivered")
    tally = classify([(event_id, "big")], receiver.receipts(), dead_letters(amqp, prefix), label="flood")
    assert tally.counts() == {"delivered": 1, "duplicated": 0, "lost": 0, "dead_lettered": 0}
