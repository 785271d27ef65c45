"""Several hookd processes on one queue: the work is shared, nothing is lost or sent twice."""

from __future__ import annotations

from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, partitions_spread, settle, wait_until

from .harness import attempts, dead_letters, delivery, pairs, publish_events, wait_accepted
from .ledger import classify
from .receiver import FaultReceiver

EVENTS = 1500
PROCESSES = 3
PARTITIONS = 6  # ordered delivery's partitions: two per worker


def test_three_workers_share_one_queue(hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names) -> None:
    """Three hookd processes each deliver a share of 1,500 events (those of the partitions each owns);
    none lost, none duplicated."""
    hooks = [hook_entry("1", receiver.url("/shared"))]
    daemons = [hookd.start(hooks, broker={"partitions": PARTITIONS}, delivery=delivery())]
    daemons += [hookd.start() for _ in range(PROCESSES - 1)]
    # ordered delivery (the default) spreads events by entity over partitions, each owned by one
    # worker: wait until each owns its share (two of six) before publishing, or the first to start
    # takes all of them, however fast the others come up
    wait_until(
        lambda: partitions_spread([d.logs() for d in daemons], PARTITIONS), timeout_s=60, what="the partitions spread"
    )
    events = publish_events(amqp, prefix, EVENTS)  # 1,500 entities over six partitions, two per worker

    expected = pairs(events, ["1"])
    wait_accepted(receiver, expected, timeout_s=90)
    wait_until(  # each attempt's log line is written after its answer, by each process's log writer
        lambda: sum(len(attempts(daemon, outcome="delivered")) for daemon in daemons) >= EVENTS,
        timeout_s=15,
        what="a delivery.attempt line for every delivery",
    )
    settle(0.5)  # a duplicate would show up now
    shares = [len(attempts(daemon, outcome="delivered")) for daemon in daemons]
    print(f"deliveries per process: {shares}")
    tally = classify(expected, receiver.receipts(), dead_letters(amqp, prefix), label="3 workers")
    assert tally.counts() == {"delivered": EVENTS, "duplicated": 0, "lost": 0, "dead_lettered": 0}
    # How evenly they share is a matter of each process's speed (the bench's to measure); that each
    # takes part is its partitions' (two of six, each with its share of 1,500 entities).
    assert all(share > 0 for share in shares), shares
