"""The cluster suite: the run's private three-node RabbitMQ cluster (tests/integration/conftest.py).

Building one takes half a minute or more, so the run builds one and every cluster module shares it.
A test may stop or kill nodes; each module starts whatever is down before its first test, so no
module inherits a cluster in an unknown state. The nodes are killed and their data
deleted when the run ends.
"""

from __future__ import annotations

import pytest
from support.bootstrap.cluster import RabbitCluster


@pytest.fixture(scope="module")
def cluster(rabbit_cluster: RabbitCluster) -> RabbitCluster:
    """The run's 3-node cluster, whole when the module starts (a module may leave a node down)."""
    rabbit_cluster.make_whole()
    return rabbit_cluster
