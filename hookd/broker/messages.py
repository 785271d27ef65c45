"""Messages in hookd's own terms, and the `Connection` protocol the daemon and the commands use."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hookd.broker.topology import Topology


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message received from one of hookd's queues, in hookd's own terms."""

    queue: str
    routing_key: str
    body: bytes
    message_id: str | None
    headers: Mapping[str, Any]
    timestamp: datetime | None
    delivery_tag: int
    redelivered: bool


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A persistent message to publish; `exchange=""` with a queue name as routing key targets a queue."""

    routing_key: str
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    timestamp: datetime | None = None
    exchange: str = ""
    expiration_ms: int | None = None  # per-message TTL (jitter below a retry queue's own TTL)


class Connection(Protocol):
    """What hookd does with a broker connection, owned by one thread: `BrokerConnection` over pika,
    and `hookd.testing.stub_broker`'s in-memory one, which builds the daemon without RabbitMQ."""

    topology: Topology
    node: str  # host:port of the node connected to (never credentials)

    @property
    def is_open(self) -> bool: ...
    @property
    def unconfirmed(self) -> int: ...
    def close(self) -> None: ...
    def consume(self, queues: list[str], prefetch: int, on_message: Callable[[Incoming], None]) -> None: ...
    def consume_queue(self, queue: str, prefetch: int, on_message: Callable[[Incoming], None]) -> str: ...
    def cancel_consumer(self, tag: str) -> None: ...
    def cancel(self) -> None: ...
    def nack(self, delivery_tag: int) -> None: ...
    def try_lock(self, name: str) -> bool: ...
    def unlock(self, name: str) -> None: ...
    def consumer_count(self, queue: str) -> int: ...
    def poll(self, timeout_s: float) -> None: ...
    def wake(self, callback: Callable[[], None]) -> bool: ...
    def ack(self, delivery_tag: int) -> None: ...
    def publish(self, message: Outgoing) -> None: ...
    def start_pipelining(self) -> None: ...
    def publish_pipelined(self, message: Outgoing, on_confirmed: Callable[[], None]) -> None: ...
    def message_count(self, queue: str) -> int: ...
    def declare_delay(self, delay_s: float) -> None: ...
    def get(self, queue: str) -> Incoming | None: ...
