"""RabbitMQ adapter: the only module that imports pika.

One `BrokerConnection` (a `Connection`) is owned by one thread (the daemon's main thread). It declares hookd's
topology, consumes, acks, and publishes with publisher confirms. Other threads may only call
`wake()`, which uses pika's `add_callback_threadsafe`. pika's exceptions never leave this module:
they become `ConnectionLost` or `PublishFailed`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel

from hookd.broker.messages import Incoming, Outgoing
from hookd.broker.nodes import NodeRing, node_of
from hookd.broker.topology import Topology, topology_for
from hookd.config import Settings
from hookd.errors import ConnectionLost, PublishFailed, TopologyMismatch

_CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.StreamLostError,
    OSError,
)


def _incoming(queue: str, method: Any, props: pika.BasicProperties, body: bytes) -> Incoming:
    ts = props.timestamp
    return Incoming(
        queue=queue,
        routing_key=method.routing_key,
        body=body,
        message_id=props.message_id,
        headers=props.headers or {},
        timestamp=datetime.fromtimestamp(ts, UTC) if isinstance(ts, int) else None,
        delivery_tag=method.delivery_tag,
        redelivered=bool(method.redelivered),
    )


def _properties(message: Outgoing) -> pika.BasicProperties:
    return pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type="application/json",
        message_id=message.message_id,
        headers=dict(message.headers),
        timestamp=int(message.timestamp.timestamp()) if message.timestamp else None,
        expiration=str(message.expiration_ms) if message.expiration_ms is not None else None,
    )


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
        raise PublishFailed(f"broker did not accept the message: {exc!r}") from exc
    except _CONNECTION_ERRORS as exc:
        raise ConnectionLost(f"{type(exc).__name__}: {exc or repr(exc)}") from exc


class BrokerConnection:
    """One AMQP connection with one confirm-mode channel, used from a single thread."""

    def __init__(
        self,
        nodes: str | NodeRing,
        topology: Topology,
        *,
        heartbeat_s: int = 30,
        connect_timeout_s: float = 10.0,
        confirm_timeout_s: float = 60.0,
        name: str = "hookd",
    ) -> None:
        self._ring = NodeRing([nodes]) if isinstance(nodes, str) else nodes
        self._confirm_timeout_s = confirm_timeout_s
        self._heartbeat_s = heartbeat_s
        self._connect_timeout_s = connect_timeout_s
        self._name = f"{name} {socket.gethostname()}:{os.getpid()}"
        self.topology = topology
        self.node = ""  # host:port of the node connected to
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._consumer_tags: list[str] = []
        self._receiving = True  # False after `cancel()`: deliveries are left unacked, not handed over
        self._control: BlockingChannel | None = None  # locks and passive declares: a refusal closes it
        self._pipe: BlockingChannel | None = None
        self._pipe_seq = 0
        # publish sequence number -> (continuation, when it was published), in publish order
        self._unconfirmed: dict[int, tuple[Callable[[], None], float]] = {}
        self._pipe_problem: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def _parameters(self, url: str) -> pika.URLParameters:
        params = pika.URLParameters(url)
        params.heartbeat = self._heartbeat_s
        params.blocked_connection_timeout = max(self._heartbeat_s * 2, 60)
        params.socket_timeout = self._connect_timeout_s
        params.stack_timeout = self._connect_timeout_s * 2
        params.connection_attempts = 1
        params.client_properties = {"connection_name": self._name}
        return params

    def _open(self) -> pika.BlockingConnection:
        """A connection to the first node of this round that answers; `ConnectionLost` naming every
        node's failure when none does."""
        failures = []
        for url in self._ring.round():
            try:
                connection = pika.BlockingConnection(self._parameters(url))
            except _CONNECTION_ERRORS as exc:
                failures.append(f"{node_of(url)}: {type(exc).__name__}: {exc or repr(exc)}")
                continue
            self._ring.used(url)
            self.node = node_of(url)
            return connection
        raise ConnectionLost("no broker node answered (" + "; ".join(failures) + ")")

    def connect(self, *, declare: bool = True, exchange_only: bool = False) -> None:
        """Open the connection (the first node that answers) and a confirm-mode channel; declare the
        topology (idempotent). A queue that exists with other arguments (declared by another version
        or configuration) is a `TopologyMismatch`: no retry can fix it."""
        connection = self._connection = self._open()
        self._receiving = True
        try:
            with _translated():
                self._channel = connection.channel()
                self._channel.confirm_delivery()
                if exchange_only:
                    self._channel.exchange_declare(self.topology.exchange, exchange_type="topic", durable=True)
                elif declare:
                    self.topology.declare(self._channel)
        except ConnectionLost as exc:
            cause = exc.__cause__
            if isinstance(cause, pika.exceptions.ChannelClosedByBroker) and cause.reply_code == 406:
                self.close()
                raise TopologyMismatch(
                    [f"{cause.reply_text}: see docs/operations.md, 'Upgrading: queues declared differently'"],
                    f"broker {self.node}",
                ) from None
            raise

    @property
    def is_open(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def close(self) -> None:
        """Close; every unacked message goes back to its queue, in queue order.

        What was written (acks, publishes) is flushed, then the socket is shut: RabbitMQ sees the
        connection go and puts back every message this connection held unacked, each queue's in the
        order it delivered them, as after a crash. An AMQP close would not: pika first cancels the
        consumers and rejects what arrives for them meanwhile, and a quorum queue puts those back at
        once, in front of the earlier messages it returns only when the channel goes. The next owner of
        a partition then got a job's `job.completed` before its `job.submitted` (measured: 2 to 5 stops
        in 10 in tests/integration/ordering; 0 in 20 this way). RabbitMQ logs the connection as closed
        by the client without a close handshake (docs/operations.md)."""
        connection, self._connection, self._channel, self._pipe = self._connection, None, None, None
        self._control = None
        self._consumer_tags.clear()
        self._unconfirmed.clear()  # their continuations never run: the messages they settle come back
        self._receiving = False
        if connection is None or not connection.is_open:
            return
        with contextlib.suppress(*_CONNECTION_ERRORS):
            connection.process_data_events(time_limit=0)  # what is written goes out first
        sock = getattr(getattr(connection._impl, "_transport", None), "_sock", None)
        if not isinstance(sock, socket.socket):  # not the plain socket transport: pika's own close
            with contextlib.suppress(*_CONNECTION_ERRORS):
                connection.close()
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _ch(self) -> BlockingChannel:
        if self._channel is None:
            raise ConnectionLost("not connected")
        return self._channel

    # -- consuming ---------------------------------------------------------------------------
    def consume(self, queues: list[str], prefetch: int, on_message: Callable[[Incoming], None]) -> None:
        """Start consuming `queues`; `on_message` runs on this connection's thread."""
        channel = self._ch()

        def callback(_ch: Any, method: Any, props: pika.BasicProperties, body: bytes, *, queue: str) -> None:
            if self._receiving:
                on_message(_incoming(queue, method, props, body))

        with _translated():
            channel.basic_qos(prefetch_count=prefetch)
            for queue in queues:
                tag = channel.basic_consume(queue, lambda c, m, p, b, q=queue: callback(c, m, p, b, queue=q))
                self._consumer_tags.append(tag)

    def consume_queue(self, queue: str, prefetch: int, on_message: Callable[[Incoming], None]) -> str:
        """Start consuming one queue with a window of `prefetch` unacked messages; returns the consumer
        tag (`cancel_consumer`). `on_message` runs on this connection's thread."""
        channel = self._ch()

        def callback(_ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            if self._receiving:
                on_message(_incoming(queue, method, props, body))

        with _translated():
            channel.basic_qos(prefetch_count=prefetch)  # applies to the consumers started after it
            tag: str = channel.basic_consume(queue, callback)
        self._consumer_tags.append(tag)
        return tag

    def cancel_consumer(self, tag: str) -> None:
        """Stop one consumer; the messages it received and did not settle stay ours until acked, nacked
        or the connection closes. Returns once the broker confirmed (no more of its messages follow)."""
        with _translated():
            self._ch().basic_cancel(tag)
        if tag in self._consumer_tags:
            self._consumer_tags.remove(tag)

    def cancel(self) -> None:
        """Stop receiving new messages (the drain before a stop); what was received but not acked stays
        ours until close, when the broker puts it all back in queue order.

        The consumers stay: what the broker sends meanwhile is left unacked, not handed over. Cancelling
        them instead (`basic_cancel`) makes pika nack what it had buffered for them at once, which a
        quorum queue puts back in front of the earlier messages still held here and returned only at
        close: the next owner of a partition then got a job's `job.completed` before its
        `job.submitted` and `job.started` (measured, tests/integration/ordering)."""
        self._receiving = False

    def nack(self, delivery_tag: int) -> None:
        """Give a message back to its queue unsettled, where it was (RabbitMQ returns it in front of
        the queue's other messages, in the order given back)."""
        with _translated():
            self._ch()._impl.basic_nack(delivery_tag=delivery_tag, multiple=False, requeue=True)

    # -- locks and counts ----------------------------------------------------------------------
    def _control_channel(self) -> BlockingChannel:
        if self._control is None or not self._control.is_open:
            if self._connection is None:
                raise ConnectionLost("not connected")
            with _translated():
                self._control = self._connection.channel()
        return self._control

    def try_lock(self, name: str) -> bool:
        """Hold the exclusive queue `name` as a lock (True), or learn that another connection holds it
        (False). The broker releases it when this connection ends, however it ends."""
        channel = self._control_channel()
        try:
            channel.queue_declare(name, exclusive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._control = None
            if exc.reply_code == 405:  # RESOURCE_LOCKED: another connection holds it
                return False
            raise ConnectionLost(f"lock {name}: {exc.reply_code} {exc.reply_text}") from exc
        except _CONNECTION_ERRORS as exc:
            raise ConnectionLost(f"{type(exc).__name__}: {exc or repr(exc)}") from exc
        return True

    def unlock(self, name: str) -> None:
        """Release a lock `try_lock` took."""
        with _translated():
            self._control_channel().queue_delete(name)

    def consumer_count(self, queue: str) -> int:
        """Consumers of `queue` (with a single active consumer: the active one only): a passive declare."""
        with _translated():
            return int(self._control_channel().queue_declare(queue, passive=True).method.consumer_count)

    def poll(self, timeout_s: float) -> None:
        """Run I/O and callbacks for up to `timeout_s` (returns early when something happened)."""
        if self._connection is None:
            raise ConnectionLost("not connected")
        with _translated():
            self._connection.process_data_events(time_limit=timeout_s)
        self._raise_pipe_problem()
        if self._unconfirmed:
            _, oldest = next(iter(self._unconfirmed.values()))
            waited = time.monotonic() - oldest
            if waited > self._confirm_timeout_s:
                # A confirm the broker never sends would hold the messages it settles, and with them
                # the prefetch window, forever: a silent stall. Start over on a fresh connection.
                raise ConnectionLost(f"no publish confirm from {self.node} for {waited:.0f} s")

    def wake(self, callback: Callable[[], None]) -> bool:
        """From any thread: run `callback` on the connection's thread soon. False if closed."""
        connection = self._connection
        if connection is None:
            return False
        try:
            connection.add_callback_threadsafe(callback)
        except _CONNECTION_ERRORS:
            return False
        return True

    def ack(self, delivery_tag: int) -> None:
        """Queue the ack frame; it goes out with the next `poll` (always within one loop turn).

        BlockingChannel.basic_ack flushes and spins the I/O loop on every call: about 2 ms each,
        which capped a worker near 500 events/s. Acks need no reply, so there is nothing to wait for.
        """
        with _translated():
            self._ch()._impl.basic_ack(delivery_tag=delivery_tag, multiple=False)

    # -- publishing --------------------------------------------------------------------------
    def publish(self, message: Outgoing) -> None:
        """Publish persistently and wait for the broker's confirm; raise if it is not routed or kept."""
        with _translated():
            self._ch().basic_publish(
                message.exchange, message.routing_key, message.body, _properties(message), mandatory=True
            )

    def start_pipelining(self) -> None:
        """Open a second confirm-mode channel for `publish_pipelined` (the daemon's publishes).

        A confirm per publish costs a broker round trip with a quorum-queue commit (1-3 ms): the main
        thread parking a hanging hook's deliveries spent most of its time waiting for them. Pipelined,
        many publishes are in flight and each one's continuation (acking the message it settles) runs
        when its confirm arrives. A nack or a returned (unroutable) message fails the connection:
        the caller reconnects, redeclares, and the unacked messages come back (at-least-once).
        """
        connection = self._connection
        if connection is None:
            raise ConnectionLost("not connected")
        with _translated():
            channel = connection.channel()
            channel._impl.add_on_return_callback(self._on_returned)
            channel._impl.confirm_delivery(ack_nack_callback=self._on_confirm)
        self._pipe = channel
        self._pipe_seq = 0
        self._unconfirmed.clear()
        self._pipe_problem = None

    def publish_pipelined(self, message: Outgoing, on_confirmed: Callable[[], None]) -> None:
        """Publish persistently without waiting; `on_confirmed` runs on this thread, in a later `poll`,
        once the broker has the message. Never runs if the connection is lost first."""
        if self._pipe is None:
            raise ConnectionLost("pipelined publishing not started")
        self._raise_pipe_problem()
        with _translated():
            self._pipe._impl.basic_publish(
                message.exchange, message.routing_key, message.body, _properties(message), mandatory=True
            )
        self._pipe_seq += 1
        self._unconfirmed[self._pipe_seq] = (on_confirmed, time.monotonic())

    @property
    def unconfirmed(self) -> int:
        """Pipelined publishes the broker has not confirmed yet."""
        return len(self._unconfirmed)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._pipe_problem = f"broker refused (nack) pipelined publish {method.delivery_tag}"
            return
        if method.multiple:
            done = []
            for seq in self._unconfirmed:  # in publish order
                if seq > method.delivery_tag:
                    break
                done.append(seq)
        else:
            done = [method.delivery_tag]
        for seq in done:
            entry = self._unconfirmed.pop(seq, None)
            if entry is not None and self._pipe_problem is None:
                entry[0]()

    def _on_returned(self, _channel: Any, method: Any, _props: Any, _body: bytes) -> None:
        where = f"exchange {method.exchange!r}, key {method.routing_key!r}"
        self._pipe_problem = f"unroutable: {method.reply_text} ({where})"

    def _raise_pipe_problem(self) -> None:
        if self._pipe_problem is not None:
            raise PublishFailed(f"broker did not accept a message: {self._pipe_problem}")

    def message_count(self, queue: str) -> int:
        """Messages ready in `queue` (not yet delivered to a consumer): a passive declare."""
        with _translated():
            return int(self._ch().queue_declare(queue, passive=True).method.message_count)

    def queue_state(self, queue: str) -> tuple[int, int] | None:
        """(messages ready, consumers) of `queue`, by a passive declare; None when it does not exist.

        The broker answers a missing queue by closing the channel (404): a fresh one replaces it, so
        a tool can go on asking about the next queue.
        """
        try:
            ok = self._ch().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404 or self._connection is None:
                raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
            with _translated():
                self._channel = self._connection.channel()
                self._channel.confirm_delivery()
            return None
        except _CONNECTION_ERRORS as exc:
            raise ConnectionLost(f"{type(exc).__name__}: {exc or repr(exc)}") from exc
        return int(ok.method.message_count), int(ok.method.consumer_count)

    def declare_delay(self, delay_s: float) -> None:
        """Declare one more delay queue (Retry-After and parking waits beyond the schedule's)."""
        with _translated():
            self.topology.declare_delay(self._ch(), delay_s)

    def delete_topology(self) -> None:
        """Delete every queue of the topology and its exchange (demo and test clean-up only)."""
        with _translated():
            for name in self.topology.queues():
                self._ch().queue_delete(name)
            self._ch().exchange_delete(self.topology.exchange)

    def get(self, queue: str) -> Incoming | None:
        """Fetch one message without consuming (tooling); the caller acks it or closes to return it."""
        with _translated():
            method, props, body = self._ch().basic_get(queue, auto_ack=False)
        if method is None:
            return None
        return _incoming(queue, method, props, body)


def connect(
    settings: Settings, *, name: str = "hookd", declare: bool = True, nodes: NodeRing | None = None
) -> BrokerConnection:
    """Open a broker connection for `settings` (the daemon and every command that talks to the broker).

    `nodes` keeps the daemon's node order across reconnections; a command gets a fresh shuffled one.
    """
    conn = BrokerConnection(
        nodes or NodeRing.for_settings(settings.broker),
        topology_for(settings),
        heartbeat_s=settings.broker.heartbeat_s,
        connect_timeout_s=settings.broker.connect_timeout_s,
        confirm_timeout_s=settings.broker.confirm_timeout_s,
        name=name,
    )
    conn.connect(declare=declare)
    return conn
