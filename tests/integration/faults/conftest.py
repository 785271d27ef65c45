"""Fixtures of the fault-injection suite.

The broker, the AMQP channel and the hookd factory are the integration suite's own (inherited from
tests/integration/conftest.py). This suite adds a misbehaving receiver, a private RabbitMQ
node, and its own per-test prefix: hookd may declare queues the contract does not list (parking,
breaker), so at the end of the session every queue whose name starts with this session's prefix is
swept, found with `rabbitmqctl` when the broker is the local one.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest
from support.factory import Reaper
from support.helpers import Amqp, Names

from .receiver import FaultReceiver

#: Every queue of this session starts with this, so the final sweep touches nothing of anyone else's.
SESSION_PREFIX = f"hookd-fault-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="session")
def reaper(broker_url: str) -> Iterator[Reaper]:  # the suite's own: with a final sweep
    """Background teardown, joined at the end of the session, then a sweep of this session's queues."""
    background = Reaper()
    yield background
    background.join()
    _sweep(broker_url, SESSION_PREFIX, background.errors)
    assert not background.errors, background.errors


@pytest.fixture
def prefix(broker_url: str, reaper: Reaper) -> Iterator[Names]:
    """A unique queue prefix and exchange for one test; its known queues and the exchange go after it."""
    token = uuid.uuid4().hex[:8]
    names = Names(prefix=f"{SESSION_PREFIX}{token}", exchange=f"{SESSION_PREFIX}{token}.exchange")
    yield names

    def delete() -> None:
        for step in names.before_delete:
            step()
        with Amqp(broker_url) as channel:
            channel.delete(names)

    reaper.submit(names.prefix, delete)


def _sweep(url: str, prefix: str, errors: list[str]) -> None:
    """Delete every queue named `prefix...` on the local broker (best effort without rabbitmqctl)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        return
    try:
        listed = subprocess.run(
            [ctl, "list_queues", "-q", "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    leftovers = [name.strip() for name in listed.stdout.splitlines() if name.strip().startswith(prefix)]
    if not leftovers:
        return
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in leftovers:
            channel.queue_delete(name)
    except pika.exceptions.AMQPError as exc:
        errors.append(f"sweeping {len(leftovers)} leftover queue(s): {exc!r}")
    finally:
        connection.close()


@pytest.fixture
def receiver() -> Iterator[FaultReceiver]:
    """A recording receiver on 127.0.0.1 whose paths can hang, trickle, flood or answer scripted statuses."""
    server = FaultReceiver()
    yield server
    server.close()
