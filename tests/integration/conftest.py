"""Fixtures every integration suite shares (each subdirectory inherits them; the session's services
come from tests/conftest.py): a per-test topology, an AMQP channel, a receiver, hookd processes.

Every fixture cleans up what it made: the receiver's threads are joined at once; hookd processes get
SIGTERM at once and are waited for (then killed) in the background, after which the test's queues
and exchange are deleted from the broker. The session waits for all of it before it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import services
from support.bootstrap.cluster import RabbitCluster
from support.bootstrap.devbroker import PrivateBroker
from support.bootstrap.services import ensure_rabbitmq_installed
from support.factory import HookdFactory, Reaper, unique_prefix
from support.helpers import Amqp, Names, Receiver


@pytest.fixture
def amqp(broker_url: str) -> Iterator[Amqp]:
    """The test's own confirmed channel: publish like the scheduler, read `.dead` and `.invalid`."""
    with Amqp(broker_url) as channel:
        yield channel


@pytest.fixture(scope="session")
def reaper() -> Iterator[Reaper]:
    """Background teardown, joined (and checked) at the end of the session."""
    background = Reaper()
    yield background
    background.join()
    assert not background.errors, background.errors


@pytest.fixture
def prefix(broker_url: str, reaper: Reaper) -> Iterator[Names]:
    """A unique queue prefix and exchange for one test; every queue and the exchange are deleted after."""
    yield from unique_prefix(broker_url, reaper, "hookd-it")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP receiver on 127.0.0.1, programmable per path."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def hookd(broker_url: str, prefix: Names, tmp_path: Path) -> Iterator[HookdFactory]:
    """Start hookd daemons on the test's topology; each is stopped (SIGTERM, then kill) afterwards."""
    factory = HookdFactory(broker_url, prefix, tmp_path)
    yield factory
    for process in factory.processes:
        process.terminate()
    prefix.before_delete.append(factory.stop_all)  # waits for the drain (kills after 5 s), then queues go


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A private three-node RabbitMQ cluster, built once per run for every `cluster` suite (about half a
    minute); each suite's module fixture makes it whole again. Killed and deleted at the end."""
    services.need(ensure_rabbitmq_installed)
    with RabbitCluster(size=3) as built:
        yield built


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A RabbitMQ node of the test's own, to stop and restart under hookd (needs the rabbitmq-server
    package and root; skipped without them, failed under CI=true)."""
    services.need(ensure_rabbitmq_installed)
    node = PrivateBroker(tmp_path / "rabbit")
    node.start()
    yield node
    node.close()
