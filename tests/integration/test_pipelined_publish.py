"""Pipelined publishing on the real broker: a continuation runs only after the broker confirmed its
message, every message arrives, and a publish the broker cannot route fails the connection."""

from __future__ import annotations

import time

import pytest

from hookd.broker import BrokerConnection, Outgoing, Topology
from hookd.errors import PublishFailed

from .helpers import Amqp, Names, wait_until

pytestmark = pytest.mark.integration


def _open(broker_url: str, prefix: Names) -> BrokerConnection:
    conn = BrokerConnection(broker_url, Topology(exchange=prefix.exchange, prefix=prefix.prefix), name="pipeline test")
    conn.connect()
    conn.start_pipelining()
    return conn


def test_every_continuation_runs_once_its_message_is_confirmed(broker_url: str, amqp: Amqp, prefix: Names) -> None:
    conn = _open(broker_url, prefix)
    try:
        confirmed: list[int] = []
        for n in range(200):
            conn.publish_pipelined(
                Outgoing(prefix.dead, f'{{"n": {n}}}'.encode(), {"n": n}, f"m-{n}"), lambda n=n: confirmed.append(n)
            )
        assert conn.unconfirmed > 0 and confirmed == []  # nothing runs before a poll delivers confirms
        deadline = time.monotonic() + 15
        while conn.unconfirmed and time.monotonic() < deadline:
            conn.poll(0.05)
        assert confirmed == list(range(200))  # each once, in publish order
        assert conn.unconfirmed == 0
    finally:
        conn.close()
    got = wait_until(lambda: (m := amqp.drain(prefix.dead)) and m, what="the published messages")
    assert sorted(int(m.headers["n"]) for m in got) == list(range(200))


def test_an_unroutable_publish_fails_the_connection_and_runs_no_continuation(
    broker_url: str, amqp: Amqp, prefix: Names
) -> None:
    conn = _open(broker_url, prefix)
    try:
        ran: list[str] = []
        conn.publish_pipelined(Outgoing(f"{prefix.prefix}.no-such-queue", b"{}"), lambda: ran.append("lost"))
        with pytest.raises(PublishFailed, match="unroutable"):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                conn.poll(0.05)
        assert ran == []
        with pytest.raises(PublishFailed):
            conn.publish_pipelined(Outgoing(prefix.dead, b"{}"), lambda: ran.append("after"))
    finally:
        conn.close()
