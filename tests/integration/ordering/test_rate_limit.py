"""A per-hook rate limit holds across three real workers, and a hook without one is not slowed."""

from __future__ import annotations

from support.factory import HookdFactory
from support.helpers import Amqp, Receiver, hook_entry, partitions_spread, wait_until

PARTITIONS = 6


def test_a_rate_limited_hook_gets_at_most_its_rate_from_three_workers(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver
) -> None:
    """`rate_limit: 2` on hook 1, none on hook 2, both get 60 jobs through three workers: hook 1 gets
    at most 2 requests a second over 20 s (40, and one at each end of the window for the network's
    jitter); hook 2 has all of its 60 before hook 1 has its 20th (not before 9.5 s)."""
    hooks = [
        hook_entry("1", receiver.url("/limited"), events=["job"], rate_limit=2),
        hook_entry("2", receiver.url("/free"), events=["job"]),
    ]
    hookd.write_config(hooks, broker={"partitions": PARTITIONS})
    workers = [hookd.start() for _ in range(3)]
    # The first worker starts alone and claims every partition; the others' shares move to them over
    # a few seconds. Publishing before that would put all 60 jobs behind one worker's prefetch window,
    # where hook 1's paced shares hold the messages and hook 2's deliveries wait behind them.
    wait_until(
        lambda: partitions_spread([w.logs() for w in workers], PARTITIONS),
        timeout_s=60,
        what="the partitions spread over the workers",
    )
    for job in range(60):
        amqp.publish_event(hookd.names, "job.completed", {"id": job})
    free = receiver.wait_for(60, "/free", timeout_s=60)
    limited = receiver.wait_for(43, "/limited", timeout_s=120)
    times = sorted(r.at for r in limited)
    assert sum(1 for t in times if t - times[0] < 20.0) <= 42
    assert max(r.at for r in free) < times[19]
    wait_until(lambda: len(receiver.requests("/limited")) == 60, timeout_s=60, what="hook 1's last deliveries")
