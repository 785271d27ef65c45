"""hookd.testing.stub_broker: the in-memory broker keeps the RabbitMQ semantics the daemon relies on."""

from __future__ import annotations

import pytest

from hookd.broker import Incoming, Outgoing, Topology
from hookd.errors import ConnectionLost, PublishFailed
from hookd.testing.stub_broker import StubBroker

TOPOLOGY = Topology(exchange="ex", prefix="stub", retry_delays_s=(5.0,), delivery_limit=2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _event(key: str = "job.failed") -> Outgoing:
    return Outgoing(key, b"{}", {"account_id": "acme"}, "evt-1", exchange=TOPOLOGY.exchange)


def test_events_are_routed_to_the_bound_queue_and_unroutable_ones_refused() -> None:
    """The exchange routes every key to the events queue; a queue that does not exist refuses."""
    broker = StubBroker()
    broker.declare(TOPOLOGY)
    broker.publish(_event())
    assert broker.ready(TOPOLOGY.events) == 1
    with pytest.raises(PublishFailed):
        broker.publish(Outgoing("nowhere", b"{}"))


def test_consumers_get_at_most_their_prefetch_window_until_they_ack() -> None:
    """A consumer holds at most `prefetch` unacked messages; an ack frees a slot."""
    broker = StubBroker()
    conn = broker.connect(TOPOLOGY)
    got: list[Incoming] = []
    conn.consume([TOPOLOGY.events], 2, got.append)
    for _ in range(3):
        broker.publish(_event())
    conn.poll(0)
    assert len(got) == 2 and broker.ready(TOPOLOGY.events) == 1
    conn.ack(got[0].delivery_tag)
    conn.poll(0)
    assert len(got) == 3


def test_closing_returns_unacked_messages_marked_redelivered() -> None:
    """What a closed connection held goes back to the front of its queue, redelivered next time."""
    broker = StubBroker()
    first = broker.connect(TOPOLOGY)
    got: list[Incoming] = []
    first.consume([TOPOLOGY.events], 10, got.append)
    broker.publish(_event())
    first.poll(0)
    first.close()
    second = broker.connect(TOPOLOGY)
    again: list[Incoming] = []
    second.consume([TOPOLOGY.events], 10, again.append)
    second.poll(0)
    assert [m.redelivered for m in (*got, *again)] == [False, True]


def test_a_delay_queue_hands_its_messages_to_the_deliveries_queue_when_they_expire() -> None:
    """A message waits its queue's TTL (or its own shorter expiration), then moves to `<prefix>.deliveries`."""
    clock = Clock()
    broker = StubBroker(clock=clock)
    broker.declare(TOPOLOGY)
    retry = TOPOLOGY.retry_queue(5.0)
    broker.publish(Outgoing(retry, b"a", {"n": 1}))
    broker.publish(Outgoing(retry, b"b", {"n": 2}, expiration_ms=1000))
    clock.now = 4.0
    assert broker.ready(retry) == 2  # only the head expires (as in RabbitMQ): b waits behind a
    clock.now = 5.0
    assert [m.body for m in broker.messages(TOPOLOGY.deliveries)] == [b"a", b"b"]


def test_pipelined_confirms_arrive_on_the_next_poll() -> None:
    """A pipelined publish is confirmed on a later poll, never inside the publish call."""
    broker = StubBroker()
    conn = broker.connect(TOPOLOGY)
    confirmed: list[int] = []
    conn.publish_pipelined(_event(), lambda: confirmed.append(1))
    assert confirmed == [] and conn.unconfirmed == 1
    conn.poll(0)
    assert confirmed == [1] and conn.unconfirmed == 0


def test_a_message_redelivered_past_the_delivery_limit_is_dead_lettered() -> None:
    """Quorum queues' delivery limit: a message that keeps coming back ends in `<prefix>.dead`."""
    broker = StubBroker()
    broker.declare(TOPOLOGY)
    broker.publish(_event())
    for _ in range(TOPOLOGY.delivery_limit):
        conn = broker.connect(TOPOLOGY)
        conn.consume([TOPOLOGY.events], 10, lambda _m: None)
        conn.poll(0)
        conn.close()
    conn = broker.connect(TOPOLOGY)
    conn.consume([TOPOLOGY.events], 10, lambda _m: None)
    conn.poll(0)
    assert broker.ready(TOPOLOGY.dead) == 1


def test_a_classic_queue_has_no_delivery_limit() -> None:
    """As `Topology` declares them, classic queues get no delivery limit: the message keeps coming back."""
    classic = Topology(exchange="ex", prefix="classic", queue_type="classic", delivery_limit=2)
    broker = StubBroker()
    broker.declare(classic)
    broker.publish(Outgoing("job.failed", b"{}", {"account_id": "acme"}, "evt-1", exchange=classic.exchange))
    got: list[Incoming] = []
    for _ in range(classic.delivery_limit + 2):
        conn = broker.connect(classic)
        conn.consume([classic.events], 10, got.append)
        conn.poll(0)
        conn.close()
    assert len(got) == classic.delivery_limit + 2
    assert broker.ready(classic.dead) == 0


def test_a_dropped_connection_raises_connection_lost() -> None:
    """After `drop()` (a broker restart) the connection's next operation raises ConnectionLost."""
    broker = StubBroker()
    conn = broker.connect(TOPOLOGY)
    broker.drop()
    with pytest.raises(ConnectionLost):
        conn.poll(0)
    assert conn.wake(lambda: None) is False
