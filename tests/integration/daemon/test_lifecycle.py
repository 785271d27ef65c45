"""Signals and crashes: SIGHUP reloads hooks, SIGTERM drains, kill -9 loses nothing."""

from __future__ import annotations

import signal
import threading
from collections import defaultdict

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, Reply, hook_entry, wait_until


def test_sighup_reload_adds_hook(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """After SIGHUP a hook added to the hooks file receives the next events."""
    first = hook_entry("first", receiver.url("/first"))
    daemon = hookd.start([first])
    amqp.publish_event(prefix, "job.completed")
    receiver.wait_for(1, "/first")

    hookd.write_hooks([first, hook_entry("second", receiver.url("/second"))])
    daemon.send(signal.SIGHUP)
    daemon.wait_log("subscriptions.reloaded")
    amqp.publish_event(prefix, "job.completed")

    receiver.wait_for(2, "/first")
    receiver.wait_for(1, "/second")


def test_sighup_broken_file_keeps_last_hooks(
    hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names
) -> None:
    """A SIGHUP with a broken hooks file logs subscriptions.reload_failed and keeps the last good hooks."""
    first = hook_entry("first", receiver.url("/first"))
    daemon = hookd.start([first])
    hookd.write_hooks([first, hook_entry("second", receiver.url("/second"))])
    daemon.send(signal.SIGHUP)
    daemon.wait_log("subscriptions.reloaded")

    hookd.hooks_path.write_text("hooks:\n  - id: [unclosed\n", encoding="utf-8")
    daemon.send(signal.SIGHUP)
    daemon.wait_log("subscriptions.reload_failed")
    amqp.publish_event(prefix, "job.failed")

    receiver.wait_for(1, "/first")
    receiver.wait_for(1, "/second")
    assert daemon.process.poll() is None


def test_sigterm_drains_in_flight_delivery(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """SIGTERM during a slow delivery lets it finish, acks the event, and exits 0; nothing is redelivered."""
    release = threading.Event()
    receiver.program("/slow", Reply(200, hold=release))
    daemon = hookd.start([hook_entry("slow", receiver.url("/slow"))], delivery={"drain_timeout_s": 30})
    event_id = amqp.publish_event(prefix, "job.completed")
    receiver.wait_for(1, "/slow")  # the delivery is in flight: the receiver is holding its answer

    daemon.send(signal.SIGTERM)
    daemon.wait_log("daemon.draining")
    release.set()  # the answer comes while hookd drains, however long the signal took to land

    assert daemon.wait_exit() == 0
    messages = [entry["msg"] for entry in daemon.logs()]
    assert "daemon.draining" in messages
    assert "daemon.stop" in messages
    [delivered] = daemon.find("delivery.attempt", event_id=event_id)
    assert delivered["outcome"] == "delivered"
    assert messages.index("daemon.draining") < messages.index("delivery.attempt") < messages.index("daemon.stop")
    # Unacked messages return to their queue when a connection closes: empty queues mean it was acked.
    assert amqp.message_count(prefix.events) == 0
    assert amqp.message_count(prefix.deliveries) == 0
    assert amqp.drain(prefix.dead) == []
    assert len(receiver.requests("/slow")) == 1


def test_kill_9_loses_nothing(
    hookd: HookdFactory, receiver: Receiver, prefix: Names, record_property: pytest.RecordProperty
) -> None:
    """kill -9 mid-stream, then a restart: every (event, hook) pair arrives; duplicates share X-Hook-Delivery."""
    total = 300
    hooks = [hook_entry("a", receiver.url("/a"), events=["job"]), hook_entry("b", receiver.url("/b"), events=["job"])]
    daemon = hookd.start(hooks)
    event_ids: list[str] = []
    publish_error: list[BaseException] = []

    def publish_stream() -> None:
        try:
            with Amqp(hookd.broker_url) as channel:
                for n in range(total):
                    event_ids.append(channel.publish_event(prefix, "job.completed", {"n": n}, event_id=f"evt-{n:04d}"))
        except BaseException as exc:
            publish_error.append(exc)

    publisher = threading.Thread(target=publish_stream, name="publisher")
    publisher.start()
    try:
        receiver.wait_for(total // 3)
        daemon.kill()
    finally:
        publisher.join(timeout=60)
    assert not publish_error, publish_error
    killed_at = len(receiver.requests())
    hookd.start()

    def pairs_seen() -> bool:
        return len({(r.body, r.hook_id) for r in receiver.requests()}) >= 2 * total

    wait_until(pairs_seen, timeout_s=60, what="every (event, hook) pair")
    deliveries: dict[tuple[bytes, str], set[str]] = defaultdict(set)
    counts: dict[tuple[bytes, str], int] = defaultdict(int)
    for request in receiver.requests():
        key = (request.body, request.hook_id or "")
        deliveries[key].add(request.delivery or "")
        counts[key] += 1
    assert len(event_ids) == total
    assert len(deliveries) == 2 * total
    assert all(len(ids) == 1 for ids in deliveries.values()), "a duplicate came with a different X-Hook-Delivery"
    assert len({next(iter(ids)) for ids in deliveries.values()}) == 2 * total
    duplicates = sum(n - 1 for n in counts.values())
    record_property("requests_before_kill", killed_at)
    record_property("duplicates", duplicates)
    print(f"kill -9 after {killed_at} requests; {duplicates} duplicate deliveries of {2 * total}")
