"""What hookd declares on the broker, how it finds it, and the SSRF guard at the delivery boundary."""

from __future__ import annotations

import dataclasses

from support.factory import HookdFactory
from support.helpers import Amqp, HookdProcess, Names, Receiver, hook_entry, settle, wait_until


def test_declares_quorum_queues_by_default(hookd: HookdFactory, amqp: Amqp, prefix: Names) -> None:
    """hookd declares its events, deliveries, dead, invalid and per-delay retry queues, quorum by default."""
    hookd.start([], delivery={"retry_delays_s": [1, 2]})

    for queue in (prefix.events, prefix.deliveries, prefix.dead, prefix.invalid):
        assert amqp.has_queue_type(queue, "quorum"), queue
    assert amqp.exists(prefix.retry(1))
    assert amqp.exists(prefix.retry(2))


def test_an_events_queue_declared_with_other_arguments_stops_hookd_with_exit_2(
    hookd: HookdFactory, amqp: Amqp, prefix: Names
) -> None:
    """`<prefix>.events` left by a hookd without ordering (no single active consumer): `hookd run`
    with ordering configured exits with code 2 (`TopologyMismatch`) and one line naming the queue, the
    argument and where the docs say how to move over, instead of reconnecting forever."""
    before = dataclasses.replace(prefix.topology, queue_type="quorum", partitions=0)
    amqp.declare(prefix.events, before.arguments(prefix.events))
    hookd.write_config([])
    process = HookdProcess(hookd.config_path, hookd.workdir)
    hookd.processes.append(process)
    assert process.wait_exit(timeout_s=30) == 2, process.tail()
    [line] = [line for line in process.stderr_path.read_text().splitlines() if prefix.events in line]
    assert "x-single-active-consumer" in line and "Upgrading: queues declared differently" in line, line
    assert not process.find("broker.connected")


def test_classic_queue_type(hookd: HookdFactory, amqp: Amqp, prefix: Names) -> None:
    """With broker.queue_type: classic, hookd's queues are not quorum queues."""
    hookd.start([], broker={"queue_type": "classic"})

    for queue in (prefix.events, prefix.deliveries, prefix.dead, prefix.invalid):
        assert amqp.exists(queue), queue
        assert not amqp.has_queue_type(queue, "quorum"), queue


def test_classic_queues_retry_durably(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """With broker.queue_type: classic, a failed delivery still comes back through the retry queue."""
    receiver.program("/flaky", 503)
    daemon = hookd.start(
        [hook_entry("flaky", receiver.url("/flaky"))],
        broker={"queue_type": "classic"},
        delivery={"inline_attempts": 1, "retry_delays_s": [1]},
    )

    amqp.publish_event(prefix, "job.failed")

    first, second = receiver.wait_for(2, "/flaky")
    assert (first.attempt, second.attempt) == (1, 2)
    daemon.wait_log("delivery.retry_scheduled", hook_id="flaky")
    daemon.wait_log("delivery.attempt", hook_id="flaky", attempt=2, outcome="delivered")


def test_retry_queue_dead_letters_to_deliveries(hookd: HookdFactory, amqp: Amqp, prefix: Names) -> None:
    """A message in `<prefix>.retry.1s` moves to `<prefix>.deliveries` after its delay."""
    daemon = hookd.start([], delivery={"retry_delays_s": [1]})
    daemon.stop()  # nobody consumes: the message must stay where the broker puts it

    amqp.publish("", prefix.retry(1), b'{"id": 1}', message_id="evt-ttl", headers={"hook_id": "x"})

    wait_until(lambda: amqp.message_count(prefix.deliveries) == 1, what="the message to reach .deliveries")
    assert amqp.message_count(prefix.retry(1)) == 0
    [moved] = amqp.drain(prefix.deliveries)
    assert moved.message_id == "evt-ttl"
    assert moved.body == b'{"id": 1}'


def test_amqp_url_env_overrides_config(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """HOOKD_AMQP_URL wins over broker.url: hookd connects with it although the file's URL is dead."""
    hookd.write_config([hook_entry("h", receiver.url("/h"))], broker={"url": "amqp://guest:guest@127.0.0.1:1/%2F"})
    hookd.start(env={"HOOKD_AMQP_URL": hookd.broker_url})

    amqp.publish_event(prefix, "job.completed")

    receiver.wait_for(1, "/h")


def test_private_address_blocked(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """With allow_private_networks false, a hook on 127.0.0.1 gets no connection and is dead-lettered ssrf_blocked."""
    daemon = hookd.start([hook_entry("local", receiver.url("/local"))], delivery={"allow_private_networks": False})

    event_id = amqp.publish_event(prefix, "job.failed")

    [letter] = amqp.wait_messages(prefix.dead, 1)
    assert letter.headers["reason"] == "ssrf_blocked"
    assert letter.headers["hook_id"] == "local"
    assert letter.headers["event_id"] == event_id
    assert "last_status" not in letter.headers
    daemon.wait_log("delivery.dead_lettered", hook_id="local", reason="ssrf_blocked")
    settle()
    assert receiver.requests() == []
