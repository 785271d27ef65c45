"""Publishing helpers for the scheduler side (`hookd publish`) and for hookd's own tools (`hookd ping`).

Every message is persistent and confirmed by the broker before these functions return.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from hookd.broker import BrokerConnection, Outgoing, Topology
from hookd.config import DEFAULT_AMQP_URL
from hookd.errors import PublishFailed
from hookd.events import PING, decode
from hookd.messages import Delivery, delivery_headers, delivery_id
from hookd.subscriptions.model import Hook


class EventPublisher:
    """Publishes lifecycle events to the events exchange over one confirmed connection.

    With a `topology`, hookd's queues are declared too, so events wait for hookd even before it first
    starts; without one, publishing fails loudly when no queue is bound to the exchange.
    """

    def __init__(
        self,
        url: str = DEFAULT_AMQP_URL,
        exchange: str = "hookd.events",
        *,
        topology: Topology | None = None,
        max_bytes: int = 1_048_576,
    ) -> None:
        self._topology = topology or Topology(exchange=exchange, prefix="hookd")
        self._declare_all = topology is not None
        self._conn = BrokerConnection(url, self._topology, name="hookd publisher")
        self._max_bytes = max_bytes

    def __enter__(self) -> EventPublisher:
        self._conn.connect(declare=self._declare_all, exchange_only=not self._declare_all)
        return self

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
    ) -> str:
        """Validate against the event contract, publish, wait for the confirm; return the event id."""
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        event_id = event_id or str(uuid.uuid4())
        headers = {"account_id": account_id}
        decode(event, raw, event_id, headers, max_bytes=self._max_bytes)  # refuse what hookd would park
        try:
            self._conn.publish(
                Outgoing(
                    event, raw, headers, event_id, timestamp or datetime.now(UTC), exchange=self._topology.exchange
                )
            )
        except PublishFailed as exc:
            raise PublishFailed(
                f"{exc}; is a hookd queue bound to exchange {self._topology.exchange!r}? "
                "Start hookd once, or publish with --config so its queues are declared."
            ) from exc
        return event_id


def publish_event(
    event: str,
    account_id: str | int,
    body: bytes | Mapping[str, Any],
    *,
    url: str = DEFAULT_AMQP_URL,
    exchange: str = "hookd.events",
    event_id: str | None = None,
    topology: Topology | None = None,
) -> str:
    """One-shot publish of one lifecycle event; returns its event id."""
    with EventPublisher(url, exchange, topology=topology) as publisher:
        return publisher.publish(event, account_id, body, event_id=event_id)


def ping_message(hook: Hook, topology: Topology) -> tuple[Outgoing, str]:
    """A `ping` for one hook through the normal delivery path; its body is the hook's public fields."""
    event_id = f"ping-{uuid.uuid4()}"
    ping = Delivery(
        hook_id=hook.id,
        event=PING,
        event_id=event_id,
        account_id=hook.account_id,
        delivery_id=delivery_id(event_id, hook.id),
        body=json.dumps(hook.public(), separators=(",", ":")).encode(),
    )
    return delivery_message(ping, topology), ping.delivery_id


def delivery_message(delivery: Delivery, topology: Topology) -> Outgoing:
    """A targeted message on `<prefix>.deliveries`: a ping, a redelivery, a replay."""
    return Outgoing(
        topology.deliveries, delivery.body, delivery_headers(delivery), delivery.event_id, datetime.now(UTC)
    )
