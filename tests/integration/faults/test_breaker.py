"""The per-hook circuit breaker: open after consecutive failures, park during the cool-down, probe, close."""

from __future__ import annotations

from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, settle

from .harness import dead_letters, delivery, pairs, publish_events, wait_accepted
from .ledger import classify
from .receiver import FaultReceiver, Script

THRESHOLD = 3
COOLDOWN_S = 2.0
EVENTS = 10


def test_breaker_opens_parks_probes_and_closes(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """3 failures open the circuit: nothing is sent for the 2 s cool-down, then one probe closes it; all delivered."""
    receiver.on("/flaky", Script(*[500] * THRESHOLD))
    daemon = hookd.start(
        [hook_entry("flaky", receiver.url("/flaky"))],
        # one attempt at a time, so "consecutive failures" and "no request while open" are well defined
        delivery=delivery(
            max_in_flight=1,
            per_hook_concurrency=1,
            inline_attempts=1,
            retry_delays_s=[1, 2, 2, 2],
            breaker_threshold=THRESHOLD,
            breaker_cooldown_s=COOLDOWN_S,
        ),
    )
    events = publish_events(amqp, prefix, EVENTS)

    daemon.wait_log("breaker.opened", hook_id="flaky", timeout_s=15)
    daemon.wait_log("breaker.closed", hook_id="flaky", timeout_s=20)
    expected = pairs(events, ["flaky"])
    wait_accepted(receiver, expected, timeout_s=30)
    settle(0.5)

    transitions = [e["msg"] for e in daemon.logs() if str(e.get("msg")).startswith("breaker.")]
    assert transitions == ["breaker.opened", "breaker.half_open", "breaker.closed"]
    tries = sorted(receiver.requests("/flaky"), key=lambda r: r.at)
    assert [r.status for r in tries[: THRESHOLD + 1]] == [500] * THRESHOLD + [200]
    quiet = tries[THRESHOLD].at - tries[THRESHOLD - 1].at
    print(f"no request for {quiet:.2f} s after the circuit opened (cool-down {COOLDOWN_S:g} s)")
    assert quiet >= COOLDOWN_S - 0.1  # the probe, and nothing before it
    tally = classify(expected, receiver.receipts(), dead_letters(amqp, prefix), label="breaker")
    assert (tally.lost, tally.dead_lettered) == (0, 0)
