"""The private three-node RabbitMQ cluster of the cluster rows: the bench's one import of it.

The cluster itself is the test suite's (`tests/support/bootstrap/cluster.py`: it starts RabbitMQ
nodes of its own, out of the wheel since issue 18); the bench puts `tests/` on `sys.path` for this
one import. A failing import costs the cluster rows only (they say why).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.brokers import BenchBroker, cluster_broker


@contextmanager
def private_cluster(size: int = 3) -> Iterator[BenchBroker]:
    """A private `size`-node cluster for the duration of the block (built in about half a minute)."""
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    if tests not in sys.path:
        sys.path.append(tests)
    from support.bootstrap.cluster import RabbitCluster  # noqa: PLC0415 (the one import point; see above)

    with RabbitCluster(size=size) as cluster:
        groups = [node.pid for node in cluster.nodes if node.pid is not None]
        yield cluster_broker(cluster.urls, groups)
