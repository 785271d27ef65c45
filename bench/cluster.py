"""The private three-node RabbitMQ cluster of the cluster rows: the bench's one import of it.

The cluster itself is the test suite's (it starts RabbitMQ nodes of its own); it is being moved out
of the runtime package into the test tree (issue 18). When it moves, the import below is the one
line of the bench to change; until then a failing import costs the cluster rows only (they say why).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.brokers import BenchBroker, cluster_broker


@contextmanager
def private_cluster(size: int = 3) -> Iterator[BenchBroker]:
    """A private `size`-node cluster for the duration of the block (built in about half a minute)."""
    from hookd.testing.cluster import RabbitCluster  # noqa: PLC0415 (the one import point; see above)

    with RabbitCluster(size=size) as cluster:
        groups = [node.pid for node in cluster.nodes if node.pid is not None]
        yield cluster_broker(cluster.urls, groups)
