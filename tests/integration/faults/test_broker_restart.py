"""A broker restart under a running hookd: it reconnects by itself and loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

from support.bootstrap.devbroker import PrivateBroker
from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, settle, wait_until

from .harness import dead_letters, declare_topology, delivery, pairs, publish_events, wait_accepted
from .ledger import classify
from .receiver import FaultReceiver, Reply, Script

BEFORE = 400
AFTER = 100
#: RabbitMQ 3.10 may lose a quorum queue's leader if the node goes down within about a second of the
#: declaration (see PrivateBroker.kill); wait longer than that before restarting.
QUORUM_SETTLE_S = 2.5


def test_broker_restart_mid_stream_loses_nothing(
    private_broker: PrivateBroker, tmp_path: Path, receiver: FaultReceiver
) -> None:
    """Events published before a broker restart (some still queued, some in flight) and after it all arrive."""
    names = Names(prefix="hookd-fault-restart", exchange="hookd-fault-restart.events")
    factory = HookdFactory(private_broker.url, names, tmp_path)
    # At most 2 in flight, each answered after 30 ms: at most ~66 deliveries/s however fast the
    # machine, so the 400 take 6 s at least, and the restart (at 100) finds most of them queued.
    receiver.on("/slow", Script(then=Reply(200, delay_s=0.03)))
    try:
        declare_topology(
            factory,
            [hook_entry("1", receiver.url("/slow"))],
            broker={"heartbeat_s": 5, "reconnect_max_s": 1},
            delivery=delivery(max_in_flight=2),
        )
        declared = time.monotonic()
        with Amqp(private_broker.url) as amqp:
            before = publish_events(amqp, names, BEFORE)  # all queued before hookd consumes
        daemon = factory.start()
        wait_until(
            lambda: (
                len(receiver.accepted_deliveries()) >= BEFORE // 4 and time.monotonic() - declared > QUORUM_SETTLE_S
            ),
            timeout_s=60,
            what=lambda: f"{BEFORE // 4} deliveries before the restart, got {len(receiver.accepted_deliveries())}",
        )
        at_restart = len(receiver.accepted_deliveries())
        private_broker.restart()
        print(f"broker restarted after {at_restart} of {BEFORE} deliveries")
        assert at_restart < BEFORE, "every event was delivered before the restart: nothing was mid-stream"

        daemon.wait_log("broker.disconnected", timeout_s=30)
        daemon.wait_log("broker.connected", count=2, timeout_s=60)
        with Amqp(private_broker.url) as amqp:
            after = publish_events(amqp, names, AFTER)
        expected = pairs(before + after, ["1"])
        wait_accepted(receiver, expected, timeout_s=60)
        settle(0.5)

        with Amqp(private_broker.url) as amqp:
            dead = dead_letters(amqp, names)
        tally = classify(expected, receiver.receipts(), dead, label="broker restart")
        assert (tally.lost, tally.dead_lettered, tally.unexpected, tally.wrong_delivery_id) == (0, 0, 0, 0)
        assert daemon.process.poll() is None, "hookd exited instead of reconnecting"
    finally:
        factory.stop_all()
