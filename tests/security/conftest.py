"""Fixtures of the security suite: internal listeners, a connect guard, and the integration suite's daemon.

The broker, the AMQP channel, the receiver and the hookd factory are the integration suite's own
(re-exported from `integration.conftest`: pytest's default `prepend` import mode puts `tests/` on
`sys.path` and names that package `integration`). This suite adds its own per-test prefix, which
deletes every queue `Topology.queues()` names, and fixtures that catch any connection the SSRF guard
should have prevented.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from integration.conftest import (  # re-exported fixtures: pytest finds them by name in this conftest
    Reaper,
    amqp,  # noqa: F401
    broker_url,  # noqa: F401
    hookd,  # noqa: F401
    reaper,  # noqa: F401
    receiver,  # noqa: F401
    unique_prefix,
)
from integration.helpers import Names

from hookd import logs

from .helpers import ConnectGuard, Tripwire

RETRY_DELAYS_S = (1.0, 2.0)


@pytest.fixture
def prefix(broker_url: str, reaper: Reaper) -> Iterator[Names]:  # noqa: F811
    """A unique queue prefix and exchange for one test; every queue and the exchange are deleted after."""
    yield from unique_prefix(broker_url, reaper, "hookd-sec", RETRY_DELAYS_S)


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    """Listeners on 127.0.0.1, 127.0.0.2 and ::1 (one port) that count every connection: the internal
    services an attacker would aim at."""
    wire = Tripwire()
    yield wire
    wire.close()


@pytest.fixture
def connect_guard(monkeypatch: pytest.MonkeyPatch) -> ConnectGuard:
    """In this process, connections to anything but loopback are refused and recorded (no packet leaves)."""
    guard = ConnectGuard(socket.socket.connect)

    def connect(sock: socket.socket, address: object) -> None:  # a plain function: it becomes the method
        guard.connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return guard


@pytest.fixture
def secrets_registry() -> Iterator[None]:
    """An empty registry of masked values for the test, emptied again afterwards."""
    logs.clear_secrets()
    yield
    logs.clear_secrets()
