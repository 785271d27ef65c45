"""kill -9 in the middle of a stream: nothing is lost, and only the in-flight window is sent twice."""

from __future__ import annotations

from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, settle, wait_until

from .harness import dead_letters, declare_topology, delivery, pairs, publish_events, wait_accepted
from .ledger import classify
from .receiver import FaultReceiver

EVENTS = 2000
IN_FLIGHT = 8
PREFETCH = 32


def test_kill_9_mid_stream_loses_nothing(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """SIGKILL after a third of 2,000 events, then a restart: all delivered, duplicates only in-flight, same id."""
    hooks = [hook_entry("1", receiver.url("/fast"))]
    declare_topology(hookd, hooks, broker={"prefetch": PREFETCH}, delivery=delivery(max_in_flight=IN_FLIGHT))
    events = publish_events(amqp, prefix, EVENTS)  # all waiting: hookd starts with a full prefetch window

    first = hookd.start()
    wait_until(
        lambda: len(receiver.accepted_deliveries()) >= EVENTS // 3,
        timeout_s=60,
        interval_s=0.01,
        what=lambda: f"{EVENTS // 3} deliveries before the kill, got {len(receiver.accepted_deliveries())}",
    )
    first.kill()
    print(f"killed after {len(receiver.accepted_deliveries())} of {EVENTS} deliveries")

    hookd.start()
    expected = pairs(events, ["1"])
    wait_accepted(receiver, expected, timeout_s=90)
    settle(0.5)  # redeliveries of the killed process's window are done by now; let any straggler show

    tally = classify(expected, receiver.receipts(), dead_letters(amqp, prefix), label="kill -9")
    assert (tally.lost, tally.dead_lettered, tally.unexpected) == (0, 0, 0)
    assert tally.wrong_delivery_id == 0, "a redelivery changed its X-Hook-Delivery"
    assert tally.extra_requests <= PREFETCH + IN_FLIGHT
