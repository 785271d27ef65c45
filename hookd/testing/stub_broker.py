"""An in-memory RabbitMQ for tests: the daemon built in-process, without a broker (dramatiq's
`StubBroker` is the model).

It keeps the semantics hookd relies on, not RabbitMQ's wire protocol: a topic exchange bound to the
events queue, durable queues, delay queues whose messages expire (queue TTL or per-message
expiration) into the queue they dead-letter to, per-consumer prefetch windows, acks, messages left
unacked going back to their queue when their connection closes (redelivered), publisher confirms
(pipelined confirms arrive on the next `poll`), mandatory publishing (an unroutable message is
refused), the delivery limit on the queues `Topology.arguments` gives one (quorum queues only: a
classic queue redelivers for ever), single active consumers (only the first consumer
registered on such a queue receives), messages given back (nacked, or left unacked by a closed
connection) served first in the order given back, and exclusive queues as locks (`try_lock`: one
connection at a time, released with it). `StubConnection` implements `hookd.broker.Connection`.

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
    single_active: bool = False
    ready: deque[_Message] = field(default_factory=deque)
    returned: deque[_Message] = field(default_factory=deque)  # given back: served before `ready`

    def waiting(self) -> list[_Message]:
        return [*self.returned, *self.ready]

    def take(self) -> _Message:
        return self.returned.popleft() if self.returned else self.ready.popleft()


@dataclass(slots=True)
class _Consumer:
    queue: str
    on_message: Callable[[Incoming], None]
    prefetch: int
    in_flight: int = 0


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
        self._registered: dict[str, list[tuple[StubConnection, str]]] = {}  # queue -> consumers, in order
        self._locks: dict[str, StubConnection] = {}

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
            fixed = [topology.events, topology.deliveries, topology.dead, topology.invalid]
            fixed += topology.partition_queues()
            if topology.partitions:
                fixed.append(topology.workers)
            for name in fixed:
                # The declare arguments RabbitMQ would get: the delivery limit and its dead-lettering are
                # a quorum queue's (`Topology.arguments` leaves them out for classic queues).
                arguments = topology.arguments(name)
                limit = arguments.get("x-delivery-limit")
                target = arguments.get("x-dead-letter-routing-key") if limit else None
                single = bool(arguments.get("x-single-active-consumer"))
                self._queue(name, delivery_limit=limit, limit_target=target, single_active=single)
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
            return [_incoming(queue, m, 0) for m in self.queues[queue].waiting()]

    def ready(self, queue: str) -> int:
        with self._lock:
            self._expire()
            return len(self.queues[queue].waiting())

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

    def drop_connection(self, conn: StubConnection) -> None:
        """One connection is lost (its process was killed): its unacked messages go back to their
        queues, its consumers and locks are gone, and its next operation raises `ConnectionLost`."""
        with self._lock:
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
        """Unacked messages of a closed or lost connection go back to the front of their queues, in the
        order they were handed out; its consumers and locks are gone."""
        for queue_name, message, _consumer in conn.unacked.values():
            self.queues[queue_name].returned.append(message)
        conn.unacked.clear()
        for tag in list(conn.consumers):
            self._unregister(conn, tag)
        for name in [name for name, holder in self._locks.items() if holder is conn]:
            del self._locks[name]
        if conn in self._connections:
            self._connections.remove(conn)

    def _unregister(self, conn: StubConnection, tag: str) -> None:
        consumer = conn.consumers.pop(tag, None)
        if consumer is not None:
            registered = self._registered.get(consumer.queue, [])
            if (conn, tag) in registered:
                registered.remove((conn, tag))

    def _active(self, conn: StubConnection, tag: str, queue: _Queue) -> bool:
        """A single-active-consumer queue hands messages to its first registered consumer only."""
        if not queue.single_active:
            return True
        registered = self._registered.get(queue.name, [])
        return bool(registered) and registered[0] == (conn, tag)

    def _dispatch(self, conn: StubConnection) -> list[tuple[Callable[[Incoming], None], Incoming]]:
        """Hand waiting messages to `conn`'s consumers, within each consumer's prefetch window."""
        handed: list[tuple[Callable[[Incoming], None], Incoming]] = []
        for consumer_tag, consumer in list(conn.consumers.items()):
            queue = self.queues[consumer.queue]
            if not self._active(conn, consumer_tag, queue):
                continue
            while (queue.ready or queue.returned) and (not consumer.prefetch or consumer.in_flight < consumer.prefetch):
                message = queue.take()
                message.deliveries += 1
                if queue.delivery_limit and message.deliveries > queue.delivery_limit and queue.limit_target:
                    self.queues[queue.limit_target].ready.append(message)
                    continue
                tag = next(self._tags)
                conn.unacked[tag] = (consumer.queue, message, consumer)
                consumer.in_flight += 1
                handed.append((consumer.on_message, _incoming(consumer.queue, message, tag)))
        return handed


class StubConnection:
    """A `hookd.broker.Connection` on a `StubBroker`, used by one thread (wake() from any)."""

    def __init__(self, broker: StubBroker, topology: Topology) -> None:
        self.topology = topology
        self.node = "stub:0"
        self._broker = broker
        self.consumers: dict[str, _Consumer] = {}  # consumer tag -> consumer
        self.unacked: dict[int, tuple[str, _Message, _Consumer | None]] = {}
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
        for queue in queues:
            self.consume_queue(queue, prefetch, on_message)

    def consume_queue(self, queue: str, prefetch: int, on_message: Callable[[Incoming], None]) -> str:
        with self._broker._lock:
            self._check()
            tag = f"ctag-{next(self._broker._tags)}"
            self.consumers[tag] = _Consumer(queue, on_message, prefetch)
            self._broker._registered.setdefault(queue, []).append((self, tag))
            self._broker._changed.notify_all()
            return tag

    def cancel_consumer(self, tag: str) -> None:
        with self._broker._lock:
            self._check()
            self._broker._unregister(self, tag)
            self._broker._changed.notify_all()

    def cancel(self) -> None:
        with self._broker._lock:
            self._check()
            for tag in list(self.consumers):
                self._broker._unregister(self, tag)
            self._broker._changed.notify_all()

    def nack(self, delivery_tag: int) -> None:
        with self._broker._lock:
            self._check()
            entry = self.unacked.pop(delivery_tag, None)
            if entry is not None:
                queue_name, message, consumer = entry
                if consumer is not None:
                    consumer.in_flight -= 1
                self._broker.queues[queue_name].returned.append(message)
                self._broker._changed.notify_all()

    def try_lock(self, name: str) -> bool:
        with self._broker._lock:
            self._check()
            holder = self._broker._locks.get(name)
            if holder is not None and holder is not self:
                return False
            self._broker._locks[name] = self
            return True

    def unlock(self, name: str) -> None:
        with self._broker._lock:
            self._check()
            if self._broker._locks.get(name) is self:
                del self._broker._locks[name]
            self._broker._changed.notify_all()

    def consumer_count(self, queue: str) -> int:
        with self._broker._lock:
            self._check()
            registered = len(self._broker._registered.get(queue, []))
            return min(registered, 1) if self._broker.queues[queue].single_active else registered

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
                if entry[2] is not None:
                    entry[2].in_flight -= 1
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
            waiting = self._broker.queues[queue]
            if not (waiting.ready or waiting.returned):
                return None
            message = waiting.take()
            tag = next(self._broker._tags)
            self.unacked[tag] = (queue, message, None)
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
