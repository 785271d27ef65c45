"""An in-memory RabbitMQ for tests: the daemon built in-process, without a broker (dramatiq's
`StubBroker` is the model).

It keeps the semantics hookd relies on, not RabbitMQ's wire protocol: a topic exchange bound to the
events queue, durable queues, delay queues whose messages expire (queue TTL or per-message
expiration) into the queue they dead-letter to, per-consumer prefetch windows, acks, messages left
unacked going back to their queue when their connection closes (redelivered), publisher confirms
(pipelined confirms arrive on the next `poll`), mandatory publishing (an unroutable message is
refused) and the quorum queues' delivery limit. `StubConnection` implements `hookd.broker.Connection`.

Threads: as with pika, a connection is used by one thread; other threads may only call `wake()`.
The test's own thread may publish, inspect and `drop()` connections through the `StubBroker`,
whose state one lock guards.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hookd.broker import Incoming, Outgoing, Topology
from hookd.errors import ConnectionLost, PublishFailed

Clock = Callable[[], float]


@dataclass(slots=True)
class _Message:
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    timestamp: datetime | None
    arrived: float  # when it entered its current queue: a queue's TTL counts from here
    expires_at: float | None = None  # per-message expiration (publisher's `expiration`)
    deliveries: int = 0  # how often it was handed to a consumer (quorum queues' delivery count)


@dataclass(slots=True)
class _Queue:
    name: str
    ttl_s: float | None = None
    dead_letter_to: str | None = None
    delivery_limit: int | None = None
    limit_target: str | None = None
    ready: deque[_Message] = field(default_factory=deque)


class StubBroker:
    """Queues, an exchange per name, and every connection opened on them."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.queues: dict[str, _Queue] = {}
        self._bindings: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # exchange -> (queue, pattern)
        self._connections: list[StubConnection] = []
        self._tags = itertools.count(1)

    # -- what tests do ---------------------------------------------------------------------------
    def connect(self, topology: Topology, *, declare: bool = True) -> StubConnection:
        """A connection with hookd's topology declared (as `hookd.broker.connect` does)."""
        if declare:
            self.declare(topology)
        conn = StubConnection(self, topology)
        with self._lock:
            self._connections.append(conn)
        return conn

    def declare(self, topology: Topology) -> None:
        with self._lock:
            self._bindings.setdefault(topology.exchange, [])
            for name in (topology.events, topology.deliveries, topology.dead, topology.invalid):
                limit = topology.delivery_limit if name in (topology.events, topology.deliveries) else None
                self._queue(name, delivery_limit=limit, limit_target=topology.dead if limit else None)
            self.bind(topology.exchange, topology.events, "#")
            for delay in topology.retry_delays_s:
                self.declare_delay(topology, delay)

    def declare_delay(self, topology: Topology, delay_s: float) -> None:
        self._queue(topology.retry_queue(delay_s), ttl_s=delay_s, dead_letter_to=topology.deliveries)

    def bind(self, exchange: str, queue: str, pattern: str) -> None:
        with self._lock:
            bindings = self._bindings.setdefault(exchange, [])
            if all(q != queue or p.pattern != _topic(pattern).pattern for q, p in bindings):
                bindings.append((queue, _topic(pattern)))

    def publish(self, message: Outgoing) -> None:
        """Route a message as a publisher would (mandatory: `PublishFailed` when nothing takes it)."""
        with self._lock:
            self._route(message)
            self._changed.notify_all()

    def messages(self, queue: str) -> list[Incoming]:
        """What waits in `queue` (ready, not handed to a consumer), front first, without taking it."""
        with self._lock:
            self._expire()
            return [_incoming(queue, m, 0) for m in self.queues[queue].ready]

    def ready(self, queue: str) -> int:
        with self._lock:
            self._expire()
            return len(self.queues[queue].ready)

    def held(self) -> int:
        """Messages handed to consumers and not acked yet, over every open connection."""
        with self._lock:
            return sum(len(conn.unacked) for conn in self._connections)

    def drop(self) -> None:
        """Every open connection is lost (a broker restart): unacked messages go back to their queues
        and the connections' next operation raises `ConnectionLost`."""
        with self._lock:
            for conn in list(self._connections):
                conn.lost = True
                self._release(conn)
            self._changed.notify_all()

    def wait(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Block until `condition()` (checked under the broker's lock, after every change) holds."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
                self._expire()
        return True

    # -- internals (under the lock) --------------------------------------------------------------
    def _queue(self, name: str, **options: Any) -> _Queue:
        with self._lock:
            queue = self.queues.get(name)
            if queue is None:
                queue = self.queues[name] = _Queue(name, **options)
            return queue

    def _route(self, message: Outgoing) -> None:
        if message.exchange == "":
            targets = [message.routing_key] if message.routing_key in self.queues else []
        else:
            targets = [q for q, p in self._bindings.get(message.exchange, ()) if p.fullmatch(message.routing_key)]
        if not targets:
            raise PublishFailed(f"unroutable: exchange {message.exchange!r}, key {message.routing_key!r}")
        now = self._clock()
        expires = now + message.expiration_ms / 1000 if message.expiration_ms is not None else None
        for name in targets:
            self.queues[name].ready.append(
                _Message(
                    message.routing_key,
                    message.body,
                    dict(message.headers),
                    message.message_id,
                    message.timestamp,
                    arrived=now,
                    expires_at=expires,
                )
            )

    def _expire(self) -> None:
        """Messages past their TTL (queue or per-message) move to the queue their queue dead-letters to,
        keeping their headers (RabbitMQ adds x-death; hookd does not read it)."""
        now = self._clock()
        for queue in self.queues.values():
            if queue.dead_letter_to is None:
                continue
            while queue.ready:  # like RabbitMQ, only the head of a queue expires
                head = queue.ready[0]
                dues = [d for d in (head.expires_at, head.arrived + queue.ttl_s if queue.ttl_s else None) if d]
                if not dues or min(dues) > now:
                    break
                queue.ready.popleft()
                head.arrived, head.expires_at = now, None
                head.routing_key = queue.dead_letter_to
                self.queues[queue.dead_letter_to].ready.append(head)
                self._changed.notify_all()

    def _release(self, conn: StubConnection) -> None:
        """Unacked messages of a closed or lost connection go back to the front of their queues."""
        for queue_name, message in reversed(list(conn.unacked.values())):
            self.queues[queue_name].ready.appendleft(message)
        conn.unacked.clear()
        conn.in_flight.clear()
        if conn in self._connections:
            self._connections.remove(conn)

    def _dispatch(self, conn: StubConnection) -> list[tuple[Callable[[Incoming], None], Incoming]]:
        """Hand ready messages to `conn`'s consumers, within each consumer's prefetch window."""
        handed: list[tuple[Callable[[Incoming], None], Incoming]] = []
        for queue_name, on_message in conn.consumers.items():
            queue = self.queues[queue_name]
            while queue.ready and (not conn.prefetch or conn.in_flight.get(queue_name, 0) < conn.prefetch):
                message = queue.ready.popleft()
                message.deliveries += 1
                if queue.delivery_limit and message.deliveries > queue.delivery_limit and queue.limit_target:
                    self.queues[queue.limit_target].ready.append(message)
                    continue
                tag = next(self._tags)
                conn.unacked[tag] = (queue_name, message)
                conn.in_flight[queue_name] = conn.in_flight.get(queue_name, 0) + 1
                handed.append((on_message, _incoming(queue_name, message, tag)))
        return handed


class StubConnection:
    """A `hookd.broker.Connection` on a `StubBroker`, used by one thread (wake() from any)."""

    def __init__(self, broker: StubBroker, topology: Topology) -> None:
        self.topology = topology
        self.node = "stub:0"
        self._broker = broker
        self.consumers: dict[str, Callable[[Incoming], None]] = {}
        self.prefetch = 0
        self.unacked: dict[int, tuple[str, _Message]] = {}
        self.in_flight: dict[str, int] = {}
        self.lost = False
        self._closed = False
        self._callbacks: deque[Callable[[], None]] = deque()
        self._confirms: deque[Callable[[], None]] = deque()

    @property
    def is_open(self) -> bool:
        return not (self._closed or self.lost)

    @property
    def unconfirmed(self) -> int:
        return len(self._confirms)

    def _check(self) -> None:
        if self.lost or self._closed:
            raise ConnectionLost("stub connection lost" if self.lost else "stub connection closed")

    def close(self) -> None:
        with self._broker._lock:
            self._closed = True
            self._broker._release(self)
            self._confirms.clear()
            self._broker._changed.notify_all()

    def consume(self, queues: list[str], prefetch: int, on_message: Callable[[Incoming], None]) -> None:
        self._check()
        self.prefetch = prefetch
        for queue in queues:
            self.consumers[queue] = on_message

    def cancel(self) -> None:
        self._check()
        self.consumers.clear()

    def poll(self, timeout_s: float) -> None:
        """Run confirms, wake-ups and message deliveries on this thread; wait up to `timeout_s` for one."""
        broker = self._broker
        deadline = time.monotonic() + timeout_s
        while True:
            with broker._lock:
                self._check()
                broker._expire()
                confirms, self._confirms = list(self._confirms), deque()
                callbacks, self._callbacks = list(self._callbacks), deque()
                handed = broker._dispatch(self)
                if not (confirms or callbacks or handed):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    broker._changed.wait(min(left, 0.05))
                    continue
            for run in (*confirms, *callbacks):
                run()
            for on_message, incoming in handed:
                on_message(incoming)
            return

    def wake(self, callback: Callable[[], None]) -> bool:
        with self._broker._lock:
            if not self.is_open:
                return False
            self._callbacks.append(callback)
            self._broker._changed.notify_all()
        return True

    def ack(self, delivery_tag: int) -> None:
        with self._broker._lock:
            self._check()
            entry = self.unacked.pop(delivery_tag, None)
            if entry is not None:
                self.in_flight[entry[0]] -= 1
                self._broker._changed.notify_all()

    def publish(self, message: Outgoing) -> None:
        with self._broker._lock:
            self._check()
            self._broker._route(message)
            self._broker._changed.notify_all()

    def start_pipelining(self) -> None:
        self._check()

    def publish_pipelined(self, message: Outgoing, on_confirmed: Callable[[], None]) -> None:
        self.publish(message)
        with self._broker._lock:
            self._confirms.append(on_confirmed)

    def message_count(self, queue: str) -> int:
        self._check()
        return self._broker.ready(queue)

    def declare_delay(self, delay_s: float) -> None:
        self._check()
        self._broker.declare_delay(self.topology, delay_s)

    def get(self, queue: str) -> Incoming | None:
        with self._broker._lock:
            self._check()
            self._broker._expire()
            ready = self._broker.queues[queue].ready
            if not ready:
                return None
            message = ready.popleft()
            tag = next(self._broker._tags)
            self.unacked[tag] = (queue, message)
            self.in_flight[queue] = self.in_flight.get(queue, 0) + 1
            return _incoming(queue, message, tag)


def _incoming(queue: str, message: _Message, tag: int) -> Incoming:
    headers: Mapping[str, Any] = dict(message.headers)
    return Incoming(
        queue=queue,
        routing_key=message.routing_key,
        body=message.body,
        message_id=message.message_id,
        headers=headers,
        timestamp=message.timestamp,
        delivery_tag=tag,
        redelivered=message.deliveries > 1,
    )


def _topic(pattern: str) -> re.Pattern[str]:
    """A topic binding key as a regular expression: `*` one word, `#` zero or more."""
    if pattern == "#":
        return re.compile(r".*")
    parts = [r"[^.]+" if word == "*" else (r".*" if word == "#" else re.escape(word)) for word in pattern.split(".")]
    return re.compile(r"\.".join(parts))
