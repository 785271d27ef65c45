"""The cluster suite: a private three-node RabbitMQ cluster per test module (about half a minute to build).

Each module gets its own cluster, so a test that stops or kills nodes cannot leave a later module a
cluster in an unknown state. The nodes are killed and their data deleted when the module ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.bootstrap import services
from support.bootstrap.cluster import RabbitCluster
from support.services import need


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    """A 3-node cluster for the module (tests that stop a node start it again before they end)."""
    need(services.ensure_rabbitmq_installed)
    with RabbitCluster(size=3) as built:
        yield built
