"""Messages aimed at one hook: pings and redeliveries, sent through `<prefix>.deliveries`.

Both go through the broker and the normal delivery path (signing, retries, history), never straight
to the receiver: what an admin triggers behaves like what the daemon does on its own. The command
line (`hookd ping`, `hookd deliveries redeliver`) and the admin API use these same functions.
Each call opens a confirmed connection and closes it: these are rare, human-paced actions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hookd.broker import Connection, connect
from hookd.config import Settings
from hookd.errors import BrokerError, UsageError
from hookd.messages import Delivery
from hookd.publisher import delivery_message, ping_message
from hookd.subscriptions.model import Hook


@contextmanager
def broker_connection(settings: Settings, *, name: str) -> Iterator[Connection]:
    """A confirmed connection with hookd's topology declared, closed afterwards.

    A failure to connect names the broker (password redacted): pika's own message is often empty.
    """
    try:
        conn = connect(settings, name=name)
    except BrokerError as exc:
        detail = str(exc).strip().rstrip(":")
        raise BrokerError(f"cannot reach the broker at {settings.broker.shown_urls}: {detail}") from exc
    try:
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class SentPing:
    """A ping the broker confirmed: its hook, delivery id, event id and the queue it went to."""

    hook_id: str
    delivery_id: str
    event_id: str
    queue: str


def send_ping(settings: Settings, hook: Hook, *, revision: int | None = None, name: str = "hookd ping") -> SentPing:
    """Publish a ping for `hook` on `<prefix>.deliveries`, confirmed by the broker: the one way every
    caller (`hookd ping`, `hookd hooks ping`, the API, the console) sends one. `revision`: the store's
    revision the hook was read at (a worker behind it reloads first instead of reporting hook_not_found)."""
    with broker_connection(settings, name=name) as conn:
        message, delivery_id = ping_message(
            hook, conn.topology, revision, ordered_default=settings.delivery.ordered_default
        )
        conn.publish(message)
        queue = conn.topology.deliveries
    assert message.message_id is not None
    return SentPing(hook.id, delivery_id, message.message_id, queue)


def redelivery(row: Mapping[str, Any]) -> Delivery:
    """The delivery a recorded row (`queries.delivery(..., with_body=True)`) describes, to send again:
    same delivery id, attempts continuing, a fresh durable retry schedule. `UsageError` when no body
    was recorded."""
    if row.get("body") is None:
        raise UsageError(f"delivery {row['delivery_id']!r} has no stored body to send again")
    return Delivery(
        hook_id=str(row["hook_id"]),
        event=str(row["event"]),
        event_id=str(row["event_id"]),
        account_id=str(row["account_id"]),
        delivery_id=str(row["delivery_id"]),
        body=bytes(row["body"]),
        attempts=int(row["attempts"]),
    )


def send_redelivery(settings: Settings, delivery: Delivery, *, name: str = "hookd redeliver") -> str:
    """Publish `delivery` again, confirmed by the broker; return the queue it went to."""
    with broker_connection(settings, name=name) as conn:
        conn.publish(delivery_message(delivery, conn.topology))
        return conn.topology.deliveries
