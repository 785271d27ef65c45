"""The broker's nodes, in the order one process tries them.

On a cluster, `broker.url` lists one URL per node. Each process shuffles them once, so workers spread
over the nodes (or, with `broker.node_order: listed`, keeps them in order: the first is the
process's preferred node, e.g. the one on its own machine), and every connection attempt starts
after the node it last used: when its node goes away, a process moves on to the next one that
answers instead of waiting for the lost one. A round that finds no node answering is a failure; the
daemon's backoff applies between rounds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from urllib.parse import urlsplit

from hookd.config import BrokerSettings


def node_of(url: str) -> str:
    """`host:port` of an AMQP URL (never its credentials), for logs and metrics."""
    try:
        parts = urlsplit(url)
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class NodeRing:
    """One process's order of the nodes, and where its next attempt starts."""

    def __init__(self, urls: Sequence[str], *, shuffle: bool = True, rng: random.Random | None = None) -> None:
        if not urls:
            raise ValueError("at least one broker URL is needed")
        self._urls = list(urls)
        if shuffle:
            (rng or random.Random()).shuffle(self._urls)  # noqa: S311 (spreading load, not cryptography)
        self._next = 0

    @classmethod
    def for_settings(cls, broker: BrokerSettings) -> NodeRing:
        """The configured nodes, in the configured order (`broker.node_order`)."""
        return cls(broker.urls, shuffle=broker.node_order != "listed")

    def __len__(self) -> int:
        return len(self._urls)

    def round(self) -> list[str]:
        """Every node once, starting after the one last used."""
        return self._urls[self._next :] + self._urls[: self._next]

    def used(self, url: str) -> None:
        """`url` answered: the next round starts after it (it is tried last again)."""
        self._next = (self._urls.index(url) + 1) % len(self._urls)
