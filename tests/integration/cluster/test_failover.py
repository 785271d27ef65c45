"""hookd on a real three-node RabbitMQ cluster (issue 12's acceptance): workers share the work across
nodes, carry on through another node when theirs stops, and lose nothing in a rolling restart; the
publisher side fails over too, so an event confirmed to its caller is never lost.

Every worker is a real `hookd run` with `broker.url` listing the three nodes; `broker.node_order:
listed` pins which node each starts on. Deliveries go to a local recording receiver; an event's
deliveries are identified by their `X-Hook-Delivery` id (one per event and hook), so "nothing lost"
is every expected id received, "nothing twice" is none received twice, and a duplicate after a
failover must carry the same id (it can be nothing else: the id is derived from event and hook).

Each test leaves the cluster whole again (a stopped node is started before the test ends); the
cluster is the run's (tests/integration/conftest.py), shared with every other cluster suite.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from support.bootstrap.cluster import RabbitCluster
from support.cluster_workers import ClusterWorkers
from support.helpers import Receiver, hookd_command, partitions_spread, subprocess_env, wait_until

from hookd.broker import node_of
from hookd.errors import BrokerError
from hookd.messages import delivery_id
from hookd.publisher import EventPublisher

# A node's stop and its quorum queues' leader elections take minutes on a busy 2-core machine; the
# waits inside say what they wait for, each with its own deadline, within this one.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

ACCOUNT = "acme"
#: Ordered delivery's partitions (quorum queues on every node): two per worker when three share them.
PARTITIONS = 6
HOOKS = ("1", "2", "3")


class Setup(ClusterWorkers):
    """One test's topology (unique prefix and exchange), hooks file, receiver and workers."""

    def __init__(self, cluster: RabbitCluster, folder: Path) -> None:
        self.receiver = Receiver()
        hooks = [
            {
                "id": h,
                "account_id": ACCOUNT,
                "url": self.receiver.url(f"/hook/{h}"),
                "events": ["job"],
                "secret": "s" * 24,
            }
            for h in HOOKS
        ]
        super().__init__(cluster, folder, hooks, tag="cl", partitions=PARTITIONS, state={"history": False})

    def start_worker(self, first_node: int) -> int:
        """Start `hookd run` preferring node `first_node`; wait until it consumes; its index."""
        index = super().start_worker(first_node)
        wait_until(lambda: self.connected_nodes(index), timeout_s=60, what=lambda: f"worker {index} to connect")
        return index

    def connected_nodes(self, index: int) -> list[str]:
        """The nodes worker `index` connected to, in order (`broker.connected`'s `node`)."""
        return [str(e["node"]) for e in self.log_entries(index) if e.get("msg") == "broker.connected"]

    def delivered_by(self, index: int) -> int:
        return sum(1 for e in self.log_entries(index) if e.get("msg") == "delivery.attempt")

    def received(self) -> Counter[str]:
        """X-Hook-Delivery -> how many times it arrived."""
        return Counter(r.delivery or "" for r in self.receiver.requests())

    def wait_all(self, event_ids: Sequence[str], timeout_s: float = 120.0) -> Counter[str]:
        expected = {delivery_id(e, h) for e in event_ids for h in HOOKS}

        def done() -> Counter[str] | None:
            got = self.received()
            return got if expected <= set(got) else None

        return wait_until(
            done,
            timeout_s=timeout_s,
            interval_s=0.5,
            what=lambda: (
                f"{len(expected)} deliveries, {len(expected - set(self.received()))} missing; "
                f"the queues:\n{self.queues()}"
            ),
        )

    def queues(self) -> str:
        """The topology's queues as a running node lists them (for a failure's message)."""
        node = next((n for n in self.cluster.nodes if n.running), None)
        if node is None:
            return "(no node running)"
        columns = ("name", "messages_ready", "messages_unacknowledged", "leader", "online", "consumers")
        listed = node.cli("list_queues", *columns, "--no-table-headers", timeout_s=30)
        return "\n".join(line for line in listed.splitlines() if self.prefix in line)

    def close(self) -> None:
        super().close()
        self.receiver.close()


@pytest.fixture
def setup(cluster: RabbitCluster, tmp_path: Path) -> Iterator[Setup]:
    made = Setup(cluster, tmp_path)
    yield made
    made.close()


def _publish(publisher: EventPublisher, count: int, start: int = 0) -> list[str]:
    return [
        publisher.publish("job.completed", ACCOUNT, {"id": n, "status": "completed"})
        for n in range(start, start + count)
    ]


class Published:
    """What a publisher tried: the events a broker confirmed, and those whose `publish` raised.

    A publish that raised was not confirmed, but it may still have reached the broker (the confirm
    was lost with the node): such an event may be delivered, and that is no loss and no stray.
    """

    def __init__(self) -> None:
        self.confirmed: list[str] = []
        self.unconfirmed: list[str] = []

    def one(self, publisher: EventPublisher, n: int) -> bool:
        """Publish event number `n`; True when the broker confirmed it."""
        event_id = f"evt-{uuid.uuid4()}"
        try:
            publisher.publish("job.completed", ACCOUNT, {"id": n, "status": "completed"}, event_id=event_id)
        except BrokerError:
            self.unconfirmed.append(event_id)  # the caller knows, and would publish it again
            return False
        self.confirmed.append(event_id)
        return True

    def attempted(self) -> list[str]:
        return [*self.confirmed, *self.unconfirmed]


def _only_known(received: Counter[str], event_ids: Sequence[str]) -> None:
    """Every request carried an expected delivery id: a duplicate is one of them, arrived again."""
    expected = {delivery_id(e, h) for e in event_ids for h in HOOKS}
    assert set(received) <= expected, f"unexpected delivery ids: {sorted(set(received) - expected)[:5]}"


def test_three_workers_each_on_its_own_node_share_the_work_nothing_lost_nothing_twice(setup: Setup) -> None:
    """Three workers, one per node, each deliver some of 600 events x 3 hooks: every delivery once."""
    workers = [setup.start_worker(node) for node in range(3)]
    # ordered delivery spreads events by entity over partitions, each owned by one worker: publish once
    # each worker owns its two, or the first to start takes them all, however fast the others come up
    wait_until(
        lambda: partitions_spread([setup.log_entries(w) for w in workers], PARTITIONS),
        timeout_s=90,
        what="the partitions spread over the three workers",
    )
    with setup.publisher() as publisher:
        event_ids = _publish(publisher, 600)
    assert [setup.connected_nodes(w)[0] for w in workers] == [node_of(u) for u in setup.cluster.urls]
    received = setup.wait_all(event_ids)
    _only_known(received, event_ids)
    twice = {d: n for d, n in received.items() if n > 1}
    assert not twice, f"{len(twice)} deliveries arrived more than once"

    # each attempt's log line is written a moment after its answer reached the receiver: wait for all
    def all_logged() -> list[int] | None:
        counted = [setup.delivered_by(w) for w in workers]
        return counted if sum(counted) >= 3 * len(event_ids) else None

    shares = wait_until(
        all_logged,
        timeout_s=30,
        what=lambda: f"a delivery.attempt line per delivery, got {[setup.delivered_by(w) for w in workers]}",
    )
    assert sum(shares) == 3 * len(event_ids)
    assert all(share > 0 for share in shares), f"a worker got no work: {shares}"


def test_the_node_a_worker_uses_stops_mid_stream_and_nothing_is_lost(setup: Setup) -> None:
    """1,500 events x 3 hooks; a third of the way in, the worker's node stops; it carries on through
    another node and every delivery arrives (a duplicate only under its own delivery id)."""
    with setup.publisher() as publisher:
        event_ids = _publish(publisher, 1500)
    worker = setup.start_worker(0)
    assert setup.connected_nodes(worker) == [node_of(setup.cluster.urls[0])]
    setup.receiver.wait_for(1500, timeout_s=60)
    try:
        setup.cluster.stop_node(0)
        received = setup.wait_all(event_ids, timeout_s=180)
    finally:
        setup.cluster.make_whole()
    _only_known(received, event_ids)
    nodes = setup.connected_nodes(worker)
    assert len(nodes) >= 2 and nodes[-1] != nodes[0], f"the worker did not move to another node: {nodes}"
    assert setup.workers[worker].poll() is None, "the worker exited"


def test_a_publisher_fails_over_and_a_confirmed_event_is_never_lost(setup: Setup) -> None:
    """Events published one by one while the publisher's own node stops: each `publish` that
    returned (a confirm) is delivered; one that raised was not confirmed, and may or may not be
    delivered; once the node is down every publish is confirmed, through another node. Then
    `hookd publish`, HOOKD_AMQP_URL listing the nodes, the stopped one among them: published (exit 0)."""
    setup.start_worker(1)
    published = Published()
    with setup.publisher() as publisher:
        its_node = next(i for i, u in enumerate(setup.cluster.urls) if node_of(u) == publisher.node)
        published.confirmed += _publish(publisher, 200)
        stopper = threading.Thread(target=setup.cluster.stop_node, args=(its_node,), name="stop node")
        stopper.start()
        numbers = itertools.count(200)
        try:
            while stopper.is_alive():  # publishing while the node stops: a refusal is allowed
                if not published.one(publisher, next(numbers)):
                    stopper.join(timeout=0.2)  # the node is going: try again soon, or once it is gone
        finally:
            stopper.join()
        # The node is down; the publisher's first publish may still find out (its connection was to
        # that node): it moves on by itself. From the first confirm on, every publish is confirmed.
        # a quorum queue's leader on the stopped node is re-elected first: slow on a busy 2-core machine
        wait_until(lambda: published.one(publisher, next(numbers)), timeout_s=180, what="a confirm from another node")
        for _ in range(200):
            number = next(numbers)
            assert published.one(publisher, number), f"publish {number} refused after the publisher failed over"
        failed_over_to = publisher.node
    try:
        published.confirmed.append(_hookd_publish(setup, first_node=its_node))
        received = setup.wait_all(published.confirmed, timeout_s=120)
    finally:
        setup.cluster.make_whole()
    assert failed_over_to != node_of(setup.cluster.urls[its_node])
    _only_known(received, published.attempted())


def _hookd_publish(setup: Setup, first_node: int) -> str:
    """`hookd publish` with every node in HOOKD_AMQP_URL, `first_node` first; its event id."""
    urls = setup.cluster.urls[first_node:] + setup.cluster.urls[:first_node]
    body = setup.folder / "job.json"
    body.write_text('{"id": 42, "status": "completed"}', encoding="utf-8")
    event_id = f"evt-{uuid.uuid4()}"
    command = ["publish", "job.completed", str(body), "--account", ACCOUNT, "--id", event_id]
    done = subprocess.run(
        hookd_command(*command, "--config", str(setup.config(first_node))),
        env=subprocess_env({"HOOKD_AMQP_URL": ",".join(urls)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"id={event_id}" in done.stdout
    return event_id


@pytest.mark.timeout(600)
def test_a_rolling_restart_of_every_node_loses_nothing(setup: Setup) -> None:
    """Two workers, a publisher publishing throughout, every node restarted one at a time: every
    confirmed event is delivered, and nothing but the events published (a refused publish may
    still arrive: its confirm was lost, not necessarily the event)."""
    workers = [setup.start_worker(0), setup.start_worker(2)]
    published = Published()
    stop = threading.Event()

    def publish_throughout() -> None:
        with setup.publisher() as publisher:
            n = 0
            while not stop.is_set():
                confirmed = published.one(publisher, n)
                n += 1
                stop.wait(0.01 if confirmed else 0.2)  # a steady trickle; after a refusal, a breath

    publishing = threading.Thread(target=publish_throughout, name="publisher")
    publishing.start()
    try:
        setup.cluster.rolling_restart()
    finally:
        stop.set()
        publishing.join(60)
        setup.cluster.make_whole()
    assert len(published.confirmed) > 100
    received = setup.wait_all(published.confirmed, timeout_s=180)
    _only_known(received, published.attempted())
    assert all(setup.workers[w].poll() is None for w in workers), "a worker exited"
