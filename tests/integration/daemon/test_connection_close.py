"""Closing the broker connection gives back what it held unacked in delivery order, on a real quorum
queue: the order ordered delivery relies on when a worker stops and the next owner of a partition
takes its messages (an AMQP close, where pika cancels the consumers and rejects what is in flight,
puts those ahead of the earlier ones)."""

from __future__ import annotations

import dataclasses
import random
import time

from support.helpers import Amqp, Names, wait_until

from hookd.broker import BrokerConnection, Incoming


def test_a_closed_connection_gives_back_what_it_held_in_delivery_order(
    broker_url: str, amqp: Amqp, prefix: Names
) -> None:
    """200 messages in a partition queue; a consumer with a window of 25 acks about a third of what it
    gets, as deliveries finish, while more arrive; the connection closes with the rest unacked (and
    more in flight): the queue holds exactly the unacked ones, in the order they were published."""
    topology = dataclasses.replace(prefix.topology, partitions=1)
    queue = topology.partition(0)
    conn = BrokerConnection(broker_url, topology, name="close-order test")
    conn.connect()
    for n in range(200):
        amqp.publish("", queue, str(n).encode(), message_id=f"m-{n}", headers=None)
    got: list[Incoming] = []
    conn.consume_queue(queue, 25, got.append)
    rng, acked = random.Random(7), set[int]()
    deadline = time.monotonic() + 30
    try:
        while len(got) < 120 and time.monotonic() < deadline:
            conn.poll(0.02)
            for message in got:
                number = int(message.body)
                if number not in acked and rng.random() < 0.3:
                    conn.ack(message.delivery_tag)
                    acked.add(number)
        assert len(got) >= 120, f"only {len(got)} messages arrived"
    finally:
        conn.close()
    expected = [n for n in range(200) if n not in acked]
    reader = BrokerConnection(broker_url, topology, name="close-order reader")
    reader.connect()
    back: list[Incoming] = []
    try:
        reader.consume_queue(queue, 200, back.append)  # a single-active-consumer queue: no basic.get
        wait_until(
            lambda: reader.poll(0.05) or len(back) >= len(expected),
            what=lambda: f"{len(expected)} messages given back, got {len(back)}",
        )
        for message in back:
            reader.ack(message.delivery_tag)
        reader.poll(0.05)
    finally:
        reader.close()
    assert [int(m.body) for m in back] == expected
