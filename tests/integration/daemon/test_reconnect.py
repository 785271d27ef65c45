"""A lost broker connection is retried with backoff, not a crash: a private RabbitMQ node of the test's
own is stopped and started under a running hookd, which reconnects by itself and loses nothing."""

from __future__ import annotations

from pathlib import Path

from support.bootstrap.devbroker import PrivateBroker
from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, hook_entry, wait_until

from hookd.messages import delivery_id


def test_daemon_reconnects_after_broker_restart_and_loses_nothing(
    private_broker: PrivateBroker, tmp_path: Path, receiver: Receiver
) -> None:
    """Events published before and after a broker restart are all delivered by the same hookd process."""
    names = Names(prefix="hookd-reconnect", exchange="hookd-reconnect.events")
    factory = HookdFactory(private_broker.url, names, tmp_path)
    hooks = [hook_entry("1", receiver.url("/r"))]
    daemon = factory.start(hooks, broker={"heartbeat_s": 5, "reconnect_max_s": 1})
    try:
        with Amqp(private_broker.url) as amqp:
            before = [amqp.publish_event(names, "job.completed") for _ in range(10)]
        receiver.wait_for(10, "/r")

        private_broker.restart()
        daemon.wait_log("broker.disconnected", timeout_s=30)
        daemon.wait_log("broker.connected", count=2, timeout_s=60)
        with Amqp(private_broker.url) as amqp:
            after = [amqp.publish_event(names, "job.completed") for _ in range(10)]
        # At least once: an ack still in flight when the broker went down brings that event back, under
        # the same delivery id, so receivers dedupe it. What counts is that every event arrives.
        expected = {delivery_id(event_id, "1") for event_id in before + after}

        def seen() -> set[str]:
            return {g.delivery for g in receiver.requests("/r") if g.delivery}

        delivered = wait_until(
            lambda: seen() if expected <= seen() else None,
            timeout_s=30,
            what=lambda: f"{len(expected)} distinct deliveries, got {len(seen())}",
        )
        assert delivered == expected
        assert daemon.process.poll() is None, "hookd exited instead of reconnecting"
    finally:
        factory.stop_all()
