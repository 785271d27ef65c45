"""Fixtures of the security suite: internal listeners, a connect guard, and the integration suite's daemon.

The broker, the AMQP channel, the receiver and the hookd factory are the integration suite's own
(inherited from tests/integration/conftest.py). This suite adds its own per-test prefix, which
deletes every queue `Topology.queues()` names, and fixtures that catch any connection the SSRF guard
should have prevented.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from support.factory import Reaper, unique_prefix
from support.helpers import Names
from support.netfakes import ConnectGuard, Tripwire

RETRY_DELAYS_S = (1.0, 2.0)


@pytest.fixture
def prefix(broker_url: str, reaper: Reaper) -> Iterator[Names]:
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
