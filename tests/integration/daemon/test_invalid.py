"""Messages that break the event contract are parked on `<prefix>.invalid` and hookd carries on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, hook_entry

MAX_MESSAGE_BYTES = 512


@dataclass(frozen=True)
class Broken:
    routing_key: str
    body: bytes
    message_id: str | None = "evt-broken"
    headers: dict[str, Any] | None = None


BROKEN = {
    "not_json": Broken("job.failed", b"{not json", headers={"account_id": "acme"}),
    "not_object": Broken("job.failed", b'[{"id": 1}]', headers={"account_id": "acme"}),
    "missing_id": Broken("job.failed", b'{"id": 1}', message_id=None, headers={"account_id": "acme"}),
    "missing_account": Broken("job.failed", b'{"id": 1}', headers={"other": "x"}),
    "unknown_event": Broken("job.exploded", b'{"id": 1}', headers={"account_id": "acme"}),
    "too_large": Broken(
        "job.failed", b'{"log": "' + b"x" * (MAX_MESSAGE_BYTES + 100) + b'"}', headers={"account_id": "acme"}
    ),
}


@pytest.mark.parametrize("reason", sorted(BROKEN))
def test_invalid_message_parked_and_daemon_keeps_serving(
    reason: str, hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names
) -> None:
    """A contract-breaking message is copied to `.invalid` with its reason, and a valid event after it is delivered."""
    broken = BROKEN[reason]
    daemon = hookd.start([hook_entry("h", receiver.url("/h"))], broker={"max_message_bytes": MAX_MESSAGE_BYTES})

    amqp.publish(prefix.exchange, broken.routing_key, broken.body, message_id=broken.message_id, headers=broken.headers)
    valid_id = amqp.publish_event(prefix, "job.completed")

    [parked] = amqp.wait_messages(prefix.invalid, 1)
    assert parked.headers["reason"] == reason
    assert parked.body == broken.body
    [request] = receiver.wait_for(1, "/h")
    assert request.event == "job.completed"
    daemon.wait_log("delivery.attempt", event_id=valid_id, outcome="delivered")
    daemon.wait_log("event.invalid", reason=reason)
    assert amqp.message_count(prefix.events) == 0
    assert daemon.process.poll() is None
