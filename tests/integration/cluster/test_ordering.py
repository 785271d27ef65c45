"""Ordered delivery on a real three-node RabbitMQ cluster: three workers, each on its own node, share
the partitions; the node one of them uses stops mid-stream; no job's events reach the receiver out of
order, and none is lost (issue 19's acceptance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.bootstrap.cluster import RabbitCluster
from support.cluster_workers import ClusterWorkers
from support.helpers import wait_until
from support.order_receiver import LIFECYCLE, OrderReceiver, order_receiver

# A node's stop and its quorum queues' leader elections take minutes on a busy 2-core machine; the
# waits inside say what they wait for, each with its own deadline, within this one.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
__all__ = ["order_receiver"]  # the fixture, used below

ACCOUNT = "acme"
PARTITIONS = 6


class Ordered(ClusterWorkers):
    """One test's topology, hooks file, and workers each preferring its own node of the cluster."""

    def __init__(self, cluster: RabbitCluster, folder: Path, receiver: OrderReceiver) -> None:
        self.receiver = receiver
        hooks = [{"id": "1", "account_id": ACCOUNT, "url": receiver.url(), "events": ["job"], "secret": "s" * 24}]
        super().__init__(cluster, folder, hooks, tag="co", partitions=PARTITIONS, state={})

    def owned(self, index: int) -> set[int]:
        """The partitions worker `index` owns now, by its log."""
        owned: set[int] = set()
        for entry in self.log_entries(index):
            if entry.get("msg") == "partition.claimed":
                owned.add(int(entry["partition"]))
            elif entry.get("msg") == "partition.releasing":
                owned.discard(int(entry["partition"]))
        return owned

    def publish_jobs(self, jobs: range) -> None:
        with self.publisher() as publisher:
            for job in jobs:
                for event in LIFECYCLE:
                    publisher.publish(event, ACCOUNT, {"id": job, "status": event})


@pytest.fixture
def ordered(cluster: RabbitCluster, tmp_path: Path, order_receiver: Callable[..., OrderReceiver]) -> Iterator[Ordered]:
    receiver = order_receiver(failure_rate=0.05, seed=5)
    made = Ordered(cluster, tmp_path, receiver)
    yield made
    made.close()
    for index, node in enumerate(cluster.nodes):
        if not node.running:
            cluster.start_node(index)


def test_three_workers_on_three_nodes_keep_every_jobs_order_through_a_lost_node(ordered: Ordered) -> None:
    """Workers on nodes 0, 1 and 2 own two partitions each; the node worker 0 uses stops while 300
    jobs x 3 events flow; every event first reaches the receiver in its job's order, none is lost."""
    receiver = ordered.receiver
    for node in range(3):
        ordered.start_worker(node)
    wait_until(
        lambda: sorted(len(ordered.owned(w)) for w in range(3)) == [2, 2, 2],
        timeout_s=90,
        what=lambda: f"two partitions per worker, got {[sorted(ordered.owned(w)) for w in range(3)]}",
    )
    ordered.publish_jobs(range(150))
    receiver.wait_delivered(150, timeout_s=60)
    ordered.cluster.stop_node(0)
    ordered.publish_jobs(range(150, 300))
    receiver.wait_delivered(900, timeout_s=240)
    assert receiver.out_of_order(range(300)) == []
    assert ordered.workers[0].poll() is None, "the worker whose node stopped exited"
