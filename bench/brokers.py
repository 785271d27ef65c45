"""The broker a scenario runs on, and what the bench does with it: declare, publish, clean up.

Publishing goes through hookd's own `BrokerConnection` and `Outgoing` (the message shape hookd's
publisher uses: persistent, JSON, `account_id` header, message id, timestamp), pipelined with
publisher confirms: a backlog is in the queue when the last confirm arrived, and a backlog of
50,000 events takes seconds rather than the minute one confirm per message costs. Only counting a
queue's consumers (is hookd consuming yet?) needs pika itself, which hookd's adapter does not offer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pika

from bench.load import ACCOUNT, Event, new_event_id
from bench.procs import cpu_seconds, find_broker_pid, group_cpu
from hookd.broker import BrokerConnection, Outgoing, Topology

_IN_FLIGHT = 2000  # unconfirmed publishes before the publisher waits for confirms


@dataclass(frozen=True)
class BenchBroker:
    """RabbitMQ as a scenario sees it: its nodes' URLs and a probe of the CPU they used so far.

    `pinned`: hookd process *i* is given node *i* only (`broker.node_order: listed`), as workers
    on different nodes of a cluster are; otherwise every process gets every URL.
    """

    name: str
    urls: tuple[str, ...]
    cpu: Callable[[], float]
    pinned: bool = False

    @property
    def url(self) -> str:
        """The node the harness itself declares, publishes and cleans up through."""
        return self.urls[0]

    def urls_for(self, index: int) -> str | list[str]:
        """`broker.url` of hookd process `index`."""
        if self.pinned:
            return self.urls[index % len(self.urls)]
        return self.urls[0] if len(self.urls) == 1 else list(self.urls)

    def _connection(self, topology: Topology) -> BrokerConnection:
        return BrokerConnection(self.url, topology, name="hookd bench")

    def declare(self, topology: Topology) -> None:
        conn = self._connection(topology)
        conn.connect(declare=True)
        conn.close()

    def delete(self, topology: Topology) -> None:
        conn = self._connection(topology)
        conn.connect(declare=False)
        conn.delete_topology()
        conn.close()

    def publish(self, topology: Topology, events: Iterable[Event], *, per_s: float | None = None) -> float:
        """Publish `events` (at `per_s` events a second if given, else as fast as confirms allow) and
        return once the broker confirmed them all; the rate achieved, events/s."""
        conn = self._connection(topology)
        conn.connect(declare=False)
        conn.start_pipelining()
        started = time.monotonic()
        count = 0
        for count, event in enumerate(events, start=1):
            if per_s is not None:
                due = started + (count - 1) / per_s
                while (wait := due - time.monotonic()) > 0:
                    conn.poll(wait)
            message = Outgoing(
                event.routing_key,
                event.body(),
                {"account_id": ACCOUNT},
                new_event_id(),
                datetime.now(UTC),
                exchange=topology.exchange,
            )
            conn.publish_pipelined(message, _confirmed)
            if per_s is not None:
                conn.poll(0)  # on the wire now: the body carries its publish time
            while conn.unconfirmed > _IN_FLIGHT:
                conn.poll(0.01)
        while conn.unconfirmed:
            conn.poll(0.05)
        took = time.monotonic() - started
        conn.close()
        return count / took if took > 0 else float("nan")

    def consumers(self, queue: str) -> int:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
        finally:
            connection.close()

    def wait_consuming(self, queue: str, *, consumers: int = 1, timeout_s: float = 30.0) -> bool:
        """True once `consumers` consume `queue` (hookd processes that finished starting)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.consumers(queue) >= consumers:
                return True
            time.sleep(0.1)
        return False

    def wait_ready(self, topology: Topology, processes: int, timeout_s: float = 30.0) -> bool:
        """True once `processes` hookd workers consume: without ordered delivery, that many consumers
        on the events queue; with it (one active consumer there), that many on `<prefix>.workers` and
        every partition owned, then a moment for the partitions to spread over the workers."""
        if not topology.partitions:
            return self.wait_consuming(topology.events, consumers=processes, timeout_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        if not self.wait_consuming(topology.workers, consumers=processes, timeout_s=timeout_s):
            return False
        for queue in topology.partition_queues():
            if not self.wait_consuming(queue, timeout_s=max(0.1, deadline - time.monotonic())):
                return False
        time.sleep(3.0 if processes > 1 else 0.0)  # a bench, not a test: workers over their share hand partitions on
        return True

    def reachable(self) -> str | None:
        """None when the broker answers, else why not (one line)."""
        try:
            pika.BlockingConnection(pika.URLParameters(self.url)).close()
        except pika.exceptions.AMQPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


def _confirmed() -> None:
    """Nothing to do per confirm: the publisher only waits for the count to reach zero."""


def local_broker(url: str) -> BenchBroker:
    """The machine's broker; its CPU is its Erlang VM's when visible (NaN otherwise)."""
    pid = find_broker_pid()
    return BenchBroker("local", (url,), lambda: cpu_seconds(pid) if pid is not None else float("nan"))


def cluster_broker(urls: Iterable[str], process_groups: Iterable[int]) -> BenchBroker:
    """A private cluster's nodes; its CPU is every node's process group's."""
    groups = tuple(process_groups)
    return BenchBroker("cluster", tuple(urls), lambda: sum(group_cpu(g) for g in groups), pinned=True)
