"""broker.nodes: each process tries a cluster's nodes in an order of its own, moving on after a loss."""

from __future__ import annotations

import random

from hookd.broker import NodeRing, node_of
from hookd.config import BrokerSettings

URLS = ["amqp://u:p@n1:5672/", "amqp://u:p@n2:5673/", "amqp://u:p@n3:5674/"]


def test_a_round_tries_every_node_once() -> None:
    """One round holds each node exactly once."""
    assert sorted(NodeRing(URLS).round()) == sorted(URLS)


def test_processes_shuffle_their_order() -> None:
    """Different processes (different random states) start on different nodes, spreading the load."""
    firsts = {NodeRing(URLS, rng=random.Random(seed)).round()[0] for seed in range(30)}
    assert firsts == set(URLS)


def test_after_a_node_is_used_the_next_round_starts_after_it() -> None:
    """Reconnecting after losing node X tries the node after X first, and X last."""
    ring = NodeRing(URLS, rng=random.Random(1))
    order = ring.round()
    ring.used(order[0])
    assert ring.round() == [*order[1:], order[0]]
    ring.used(order[2])
    assert ring.round() == order


def test_node_of_shows_host_and_port_never_credentials() -> None:
    """Logs and metrics name a node by host:port only; the default port is the scheme's."""
    assert node_of("amqp://guest:secret@rabbit-1.internal:5673/%2F") == "rabbit-1.internal:5673"
    assert node_of("amqps://u:p@rabbit-2/") == "rabbit-2:5671"
    assert node_of("amqp://[::1]/") == "[::1]:5672"


def test_listed_order_keeps_the_preferred_node_first() -> None:
    """`broker.node_order: listed`: every process starts on the first URL (its own machine's node)."""
    broker = BrokerSettings(urls=tuple(URLS), node_order="listed")
    assert {tuple(NodeRing.for_settings(broker).round()) for _ in range(20)} == {tuple(URLS)}
    shuffled = BrokerSettings(urls=tuple(URLS))
    assert len({NodeRing.for_settings(shuffled).round()[0] for _ in range(60)}) > 1
