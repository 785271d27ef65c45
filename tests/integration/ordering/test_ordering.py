"""Ordered delivery against real RabbitMQ and real hookd processes: each job's events first reach the
receiver in publish order, with a receiver answering after 0-40 ms and failing attempts, on one
worker and on three, through kill -9, a head's durable retry, and a dead-lettered head."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, HookdProcess, hook_entry, wait_until
from support.order_receiver import LIFECYCLE, OrderReceiver

ReceiverFactory = Callable[..., OrderReceiver]

# The waits inside (each with its deadline, up to 270 s in all for three workers and a kill) outlast
# the suite's 120 s hang guard on a busy 2-core machine.
pytestmark = pytest.mark.timeout(600)


def _publish_jobs(amqp: Amqp, hookd: HookdFactory, jobs: range) -> None:
    """Each job's three events back to back, as a scheduler publishes a short job."""
    for job in jobs:
        for event in LIFECYCLE:
            amqp.publish_event(hookd.names, event, {"id": job, "status": event})


def _owned(process: HookdProcess) -> set[int]:
    """The partitions a worker owns now, by its log: claimed and not released since."""
    owned: set[int] = set()
    for entry in process.logs():
        if entry.get("msg") == "partition.claimed":
            owned.add(int(entry["partition"]))
        elif entry.get("msg") == "partition.releasing":
            owned.discard(int(entry["partition"]))
    return owned


def test_one_worker_delivers_every_jobs_events_in_order(
    hookd: HookdFactory, amqp: Amqp, order_receiver: ReceiverFactory
) -> None:
    """300 jobs x 3 events, a receiver answering after 0-40 ms and failing 5 % of attempts: no job
    out of order, every delivery made, nothing dead-lettered."""
    receiver = order_receiver(failure_rate=0.05)
    hookd.start([hook_entry("1", receiver.url(), events=["job"])], delivery={"retry_delays_s": [1]})
    _publish_jobs(amqp, hookd, range(300))
    receiver.wait_delivered(900, timeout_s=120)
    assert receiver.out_of_order(range(300)) == []
    assert amqp.message_count(hookd.names.dead) == 0


def test_three_workers_share_the_partitions_and_a_killed_one_loses_nothing(
    hookd: HookdFactory, amqp: Amqp, order_receiver: ReceiverFactory
) -> None:
    """Three workers own about a third of the partitions each; one killed with SIGKILL mid-stream
    hands its partitions to the others within seconds; no job out of order, nothing lost."""
    receiver = order_receiver(failure_rate=0.05, seed=2)
    hookd.write_config(
        [hook_entry("1", receiver.url(), events=["job"])], broker={"partitions": 9}, delivery={"retry_delays_s": [1]}
    )
    workers = [hookd.start() for _ in range(3)]
    wait_until(
        lambda: [len(_owned(w)) for w in workers] == [3, 3, 3],
        timeout_s=60,
        what=lambda: f"3 partitions per worker, got {[sorted(_owned(w)) for w in workers]}",
    )
    _publish_jobs(amqp, hookd, range(300))
    receiver.wait_delivered(300, timeout_s=60)
    victim = workers[0]
    victim.send(signal.SIGKILL)
    victim.wait_exit()
    survivors = workers[1:]
    wait_until(
        lambda: sorted(_owned(survivors[0]) | _owned(survivors[1])) == list(range(9)),
        timeout_s=30,
        what=lambda: f"every partition owned by a survivor, got {[sorted(_owned(w)) for w in survivors]}",
    )
    _publish_jobs(amqp, hookd, range(300, 400))
    receiver.wait_delivered(1200, timeout_s=120)
    assert receiver.out_of_order(range(400)) == []
    assert amqp.message_count(hookd.names.dead) == 0


def test_a_head_in_a_durable_retry_holds_the_jobs_next_events(
    hookd: HookdFactory, amqp: Amqp, order_receiver: ReceiverFactory
) -> None:
    """`job.submitted` of job 7 fails its first three attempts and goes to the durable retry queue;
    job 7's next events wait for it (other jobs do not), then follow it in order."""

    def submitted_of_seven_fails_thrice(event: str, job: object, nth: int) -> int | None:
        return 503 if (event, job) == ("job.submitted", 7) and nth <= 3 else 200

    receiver = order_receiver(latency_s=(0.0, 0.005), answer=submitted_of_seven_fails_thrice)
    hookd.start(
        [hook_entry("1", receiver.url(), events=["job"])],
        delivery={"inline_attempts": 1, "retry_delays_s": [1, 1, 1], "breaker_threshold": 0},
    )
    _publish_jobs(amqp, hookd, range(5, 10))
    receiver.wait_delivered(12, timeout_s=30)  # the other four jobs, while job 7's head waits
    assert receiver.first_handled()[7] == ["job.submitted"]
    receiver.wait_delivered(15, timeout_s=60)
    assert receiver.out_of_order(range(5, 10)) == []


def test_a_dead_lettered_head_releases_the_jobs_next_events(
    hookd: HookdFactory, amqp: Amqp, order_receiver: ReceiverFactory
) -> None:
    """A `job.submitted` the receiver refuses (400) is dead-lettered, and `job.started` and
    `job.completed` follow it."""

    def refuse_submitted(event: str, _job: object, _nth: int) -> int | None:
        return 400 if event == "job.submitted" else 200

    receiver = order_receiver(answer=refuse_submitted)
    hookd.start([hook_entry("1", receiver.url(), events=["job"])])
    _publish_jobs(amqp, hookd, range(20))
    receiver.wait_delivered(40, timeout_s=60)
    wait_until(lambda: amqp.message_count(hookd.names.dead) == 20, timeout_s=15, what="20 dead letters")
    for job, events in receiver.first_handled().items():
        assert events == list(LIFECYCLE), job
    dead = amqp.get(hookd.names.dead)
    assert dead is not None and dead.headers["reason"] == "permanent_failure"
    assert json.loads(dead.body)["status"] == "job.submitted"
