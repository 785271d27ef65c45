"""Publishing helpers for the scheduler side (`hookd publish`) and for hookd's own tools (`hookd ping`).

Every message is persistent and confirmed by the broker before these functions return.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from hookd.broker import BrokerConnection, NodeRing, Outgoing, Topology
from hookd.config import (
    DEFAULT_AMQP_URL,
    DEFAULT_EXCHANGE,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_ORDERED,
    DEFAULT_QUEUE_PREFIX,
    amqp_urls,
)
from hookd.errors import ConnectionLost, PublishFailed
from hookd.events import PING, decode
from hookd.messages import Delivery, delivery_headers, delivery_id
from hookd.resource import hook_resource
from hookd.subscriptions.model import Hook
from hookd.tracecontext import TraceContext
from hookd.tracing import current_context


class EventPublisher:
    """Publishes lifecycle events to the events exchange over one confirmed connection.

    `url` is one AMQP URL or several (a cluster's nodes, or a comma-separated string): the publisher
    connects to the first node that answers, in an order of its own, and when its connection is lost
    while publishing it moves to the next node and publishes again. `publish` returns only once a
    broker confirmed the event (on a quorum queue: a majority of its replicas has it), so a returned
    event is never lost; one whose confirm was lost with a node may arrive twice, under the same event
    id (and so the same delivery ids: receivers dedupe).

    With a `topology`, hookd's queues are declared too, so events wait for hookd even before it first
    starts; without one, publishing fails loudly when no queue is bound to the exchange.

    Trace context: each event carries the W3C `traceparent` (and `tracestate`) of `trace`, else of the
    caller's current OpenTelemetry span (when the application uses the OpenTelemetry API); hookd's
    spans and every receiver's `traceparent` then share its trace id. Without either, hookd starts a
    trace of its own for the event.
    """

    def __init__(
        self,
        url: str | Sequence[str] = DEFAULT_AMQP_URL,
        exchange: str = DEFAULT_EXCHANGE,
        *,
        topology: Topology | None = None,
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._topology = topology or Topology(exchange=exchange, prefix=DEFAULT_QUEUE_PREFIX)
        self._declare_all = topology is not None
        self._nodes = NodeRing(amqp_urls(url) if isinstance(url, str) else list(url))
        self._conn = BrokerConnection(self._nodes, self._topology, name="hookd publisher")
        self._max_bytes = max_bytes

    def __enter__(self) -> EventPublisher:
        self._connect()
        return self

    def _connect(self) -> None:
        self._conn.connect(declare=self._declare_all, exchange_only=not self._declare_all)

    @property
    def node(self) -> str:
        """host:port of the node the publisher is connected to."""
        return self._conn.node

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._conn.close()

    def publish(
        self,
        event: str,
        account_id: str | int,
        body: bytes | Mapping[str, Any],
        *,
        event_id: str | None = None,
        timestamp: datetime | None = None,
        trace: TraceContext | None = None,
    ) -> str:
        """Validate against the event contract, publish, wait for the confirm; return the event id."""
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        event_id = event_id or str(uuid.uuid4())
        headers: dict[str, Any] = {"account_id": account_id}
        context = trace or current_context()
        if context is not None:
            headers.update(context.headers())
        decode(event, raw, event_id, headers, max_bytes=self._max_bytes)  # refuse what hookd would park
        message = Outgoing(
            event, raw, headers, event_id, timestamp or datetime.now(UTC), exchange=self._topology.exchange
        )
        try:
            self._publish_confirmed(message)
        except PublishFailed as exc:
            raise PublishFailed(
                f"{exc}; is a hookd queue bound to exchange {self._topology.exchange!r}? "
                "Start hookd once, or publish with --config so its queues are declared."
            ) from exc
        return event_id

    def _publish_confirmed(self, message: Outgoing) -> None:
        """Publish and wait for the confirm; a lost connection moves to the next node and publishes
        again, for at most one more round of the nodes than there are nodes."""
        for _ in range(2 * len(self._nodes)):
            try:
                self._conn.publish(message)
                return
            except ConnectionLost:
                self._conn.close()
                try:
                    self._connect()
                except ConnectionLost:
                    continue
        self._conn.publish(message)  # the last try: its ConnectionLost reaches the caller


def publish_event(
    event: str,
    account_id: str | int,
    body: bytes | Mapping[str, Any],
    *,
    url: str | Sequence[str] = DEFAULT_AMQP_URL,
    exchange: str = DEFAULT_EXCHANGE,
    event_id: str | None = None,
    topology: Topology | None = None,
    trace: TraceContext | None = None,
) -> str:
    """One-shot publish of one lifecycle event; returns its event id."""
    with EventPublisher(url, exchange, topology=topology) as publisher:
        return publisher.publish(event, account_id, body, event_id=event_id, trace=trace)


def ping_message(
    hook: Hook, topology: Topology, revision: int | None = None, *, ordered_default: bool = DEFAULT_ORDERED
) -> tuple[Outgoing, str]:
    """A `ping` for one hook through the normal delivery path; its body is the hook's resource without
    its secrets (`resource.hook_resource`). `revision`: the hooks store's revision the hook was read at
    (a database store's); `ordered_default`: the installation's `delivery.ordered_default`."""
    event_id = f"ping-{uuid.uuid4()}"
    ping = Delivery(
        hook_id=hook.id,
        event=PING,
        event_id=event_id,
        account_id=hook.account_id,
        delivery_id=delivery_id(event_id, hook.id),
        body=json.dumps(
            hook_resource(hook, ordered_default=ordered_default, for_receiver=True), separators=(",", ":")
        ).encode(),
        hook_revision=revision,
    )
    return delivery_message(ping, topology), ping.delivery_id


def delivery_message(delivery: Delivery, topology: Topology) -> Outgoing:
    """A targeted message on `<prefix>.deliveries`: a ping, a redelivery, a replay."""
    return Outgoing(
        topology.deliveries, delivery.body, delivery_headers(delivery), delivery.event_id, datetime.now(UTC)
    )
