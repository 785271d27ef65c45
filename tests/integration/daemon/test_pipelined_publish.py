"""Pipelined publishing on the real broker: a continuation runs only after the broker confirmed its
message, every message arrives, and a publish the broker cannot route fails the connection."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from support.helpers import Amqp, Names, wait_until
from support.tcpproxy import TcpProxy

from hookd.broker import BrokerConnection, Outgoing, Topology
from hookd.errors import ConnectionLost, PublishFailed


def _open(broker_url: str, prefix: Names) -> BrokerConnection:
    conn = BrokerConnection(broker_url, Topology(exchange=prefix.exchange, prefix=prefix.prefix), name="pipeline test")
    conn.connect()
    conn.start_pipelining()
    return conn


def test_every_continuation_runs_once_its_message_is_confirmed(broker_url: str, amqp: Amqp, prefix: Names) -> None:
    """Each pipelined publish's continuation runs once, in publish order, on a poll after its confirm."""
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
    """An unroutable pipelined publish fails the connection (PublishFailed), and its continuation never runs."""
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


def test_a_confirm_that_never_comes_fails_the_connection(broker_url: str, prefix: Names) -> None:
    """A broker that stops answering (here: a proxy that forwards nothing more) must not hold the
    messages a publish settles forever: past `confirm_timeout_s` the poll fails the connection, and
    the continuation never runs."""
    url = urlsplit(broker_url)
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 5672))
    proxied = broker_url.replace(f"{url.hostname}:{url.port or 5672}", f"127.0.0.1:{proxy.port}")
    topology = Topology(exchange=prefix.exchange, prefix=prefix.prefix)
    conn = BrokerConnection(proxied, topology, name="confirm timeout test", confirm_timeout_s=1.0, heartbeat_s=60)
    try:
        conn.connect()
        conn.start_pipelining()
        proxy.pause()
        ran: list[str] = []
        conn.publish_pipelined(Outgoing(prefix.dead, b"{}"), lambda: ran.append("confirmed"))
        started = time.monotonic()
        with pytest.raises(ConnectionLost, match="no publish confirm"):
            while time.monotonic() - started < 15:
                conn.poll(0.1)
        assert time.monotonic() - started >= 1.0  # not before the timeout
        assert ran == []
    finally:
        proxy.close()
        conn.close()
