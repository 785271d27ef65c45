"""What every fault test does: publish numbered events, wait for the receiver, read the dead letters and logs."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from support.factory import HookdFactory
from support.helpers import Amqp, HookdProcess, Names, wait_until

from hookd.messages import delivery_id

from .ledger import DeadLetter, Pair
from .receiver import FaultReceiver, Request

#: Settings every fault test starts from; a test overrides what its fault is about.
DELIVERY = {
    "timeout_s": 2,
    "max_in_flight": 8,
    "retry_delays_s": [1, 2],
    "inline_attempts": 2,
    "inline_backoff_s": 0.05,
    "breaker_threshold": 0,  # off unless the test is about the breaker: failures must not park deliveries
    "disable_after_s": 0,  # never disable for long failure: tests run for seconds
}


def delivery(**overrides: Any) -> dict[str, Any]:
    return {**DELIVERY, **overrides}


def publish_events(
    amqp: Amqp, names: Names, count: int, *, event: str = "job.completed", account_id: str = "acme"
) -> list[str]:
    """Publish `count` confirmed events whose bodies carry their own event id as "id"; return the ids."""
    batch = uuid.uuid4().hex[:6]
    ids = []
    for seq in range(count):
        event_id = f"evt-{batch}-{seq}"
        amqp.publish_event(names, event, {"id": event_id, "seq": seq}, account_id=account_id, event_id=event_id)
        ids.append(event_id)
    return ids


def pairs(event_ids: Iterable[str], hook_ids: Iterable[str]) -> list[Pair]:
    hooks = list(hook_ids)
    return [(event_id, hook_id) for event_id in event_ids for hook_id in hooks]


def wait_accepted(receiver: FaultReceiver, expected: Iterable[Pair], *, timeout_s: float) -> None:
    """Wait until the receiver accepted every pair at least once (by its delivery id)."""
    wanted = {delivery_id(event_id, hook_id) for event_id, hook_id in expected}

    def missing() -> set[str]:
        return wanted - receiver.accepted_deliveries()

    wait_until(
        lambda: not missing(),
        timeout_s=timeout_s,
        interval_s=0.1,
        what=lambda: f"{len(wanted)} deliveries accepted, {len(missing())} still missing",
    )


def dead_letters(amqp: Amqp, names: Names) -> list[DeadLetter]:
    """Take everything in `<prefix>.dead`."""
    return [DeadLetter.from_headers(got.headers) for got in amqp.drain(names.dead)]


def declare_topology(factory: HookdFactory, hooks: Iterable[Mapping[str, Any]], **sections: Any) -> None:
    """Write the config and let hookd declare its queues once, then stop it: events published now wait."""
    process = factory.start(hooks, **sections)
    process.send(signal.SIGTERM)
    process.wait_exit()


def attempts(process: HookdProcess, **fields: Any) -> list[dict[str, Any]]:
    """`delivery.attempt` log lines matching `fields`."""
    return process.find("delivery.attempt", **fields)


def rate(requests: list[Request]) -> float:
    """Steady-state requests per second: from the 10th to the 90th percentile of arrival times.

    The first and last tenth are left out: start-up (connections, threads) and a tail of deliveries
    parked for a second would otherwise weigh on a run of a few seconds.
    """
    times = sorted(r.at for r in requests)
    low, high = len(times) // 10, len(times) * 9 // 10
    return (high - low) / (times[high] - times[low])
