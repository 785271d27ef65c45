"""Order holds through what operations do to a running hookd, against real RabbitMQ and real hookd
processes: a receiver throttling a job's first event with `429` and `Retry-After`, and the worker
stopped with SIGTERM mid-stream, then started again. Each job's events first reach the receiver in
publish order, each only after the one before it was delivered, and nothing is lost."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable

from support.factory import HookdFactory
from support.helpers import Amqp, hook_entry
from support.order_receiver import LIFECYCLE, OrderReceiver

ReceiverFactory = Callable[..., OrderReceiver]


def _publish_jobs(amqp: Amqp, hookd: HookdFactory, jobs: range) -> None:
    """Each job's three events back to back, as a scheduler publishes a short job."""
    for job in jobs:
        for event in LIFECYCLE:
            amqp.publish_event(hookd.names, event, {"id": job, "status": event})


def test_a_retry_after_on_a_jobs_first_event_holds_its_next_events_until_it_is_delivered(
    hookd: HookdFactory, amqp: Amqp, order_receiver: ReceiverFactory
) -> None:
    """Job 7's `job.submitted` is answered 429 with `Retry-After: 2` twice: hookd waits at least the
    2 s it asked for each time (longer than the retry schedule's 1 s), the other jobs are delivered
    meanwhile, and job 7's next events start only once its first is delivered."""

    def throttle_submitted_of_seven(event: str, job: object, nth: int) -> int | None:
        return 429 if (event, job) == ("job.submitted", 7) and nth <= 2 else 200

    receiver = order_receiver(latency_s=(0.0, 0.005), answer=throttle_submitted_of_seven, retry_after_s=2)
    hookd.start(
        [hook_entry("1", receiver.url(), events=["job"])],
        delivery={"retry_delays_s": [1, 1, 1], "breaker_threshold": 0},
    )
    _publish_jobs(amqp, hookd, range(5, 10))
    receiver.wait_delivered(12, timeout_s=30)  # the other four jobs, while job 7's first event waits
    receiver.wait_delivered(15, timeout_s=30)
    head = receiver.attempts("job.submitted", 7)
    assert [h.status for h in head] == [429, 429, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(head)]
    assert min(gaps) >= 1.9, f"Retry-After: 2 not waited for: {gaps}"
    assert receiver.overtaken(range(5, 10)) == []
    assert receiver.out_of_order(range(5, 10)) == []
    assert amqp.message_count(hookd.names.dead) == 0


def test_a_worker_stopped_mid_stream_and_started_again_keeps_every_job_in_order(
    hookd: HookdFactory, amqp: Amqp, order_receiver: ReceiverFactory
) -> None:
    """300 jobs x 3 events, a receiver failing 5 % of attempts (some heads wait in a durable retry):
    the only worker gets SIGTERM mid-stream and exits 0 after its drain; 50 more jobs are published
    while it is down; started again, it delivers every event, no job out of order, nothing lost,
    nothing dead-lettered."""
    receiver = order_receiver(failure_rate=0.05, seed=5)
    hookd.write_config(
        [hook_entry("1", receiver.url(), events=["job"])],
        delivery={"inline_attempts": 1, "retry_delays_s": [1, 1, 1, 1], "breaker_threshold": 0},
    )
    first = hookd.start()
    _publish_jobs(amqp, hookd, range(300))
    receiver.wait_delivered(100, timeout_s=60)
    first.send(signal.SIGTERM)
    assert first.wait_exit(timeout_s=30) == 0, first.tail()
    stopped_at = len(receiver.delivered())
    assert stopped_at < 900, "the worker was not stopped mid-stream"
    _publish_jobs(amqp, hookd, range(300, 350))
    hookd.start()
    receiver.wait_delivered(1050, timeout_s=120)
    assert receiver.overtaken(range(350)) == []
    assert receiver.out_of_order(range(350)) == []
    assert amqp.message_count(hookd.names.dead) == 0
