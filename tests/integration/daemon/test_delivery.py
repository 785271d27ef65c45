"""What one delivery looks like on the wire: body, headers, signature, basic auth, the attempt log line."""

from __future__ import annotations

import base64

from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, hook_entry, secret_of, signature

from hookd import __version__

#: Odd whitespace, escapes, non-ASCII text and a float format JSON libraries would rewrite.
ODD_BODY = (
    '{ "id" :\t1042 ,\n  "name": "caf\u00e9 \u2603 \U0001f680",  "escaped": "\\u00e9\\n",\r\n'
    '  "ratio": 1.50, "tags": [ ] ,"nested":{"a" : null}}   \n'
).encode()


def test_body_headers_and_signature(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """The POST carries the published body byte for byte, every contract header and a valid HMAC."""
    hooks = [hook_entry("h1", receiver.url("/in"), events=["job.failed"])]
    hookd.start(hooks)

    amqp.publish_event(prefix, "job.failed", ODD_BODY, account_id="acme")

    [request] = receiver.wait_for(1, "/in")
    assert request.method == "POST"
    assert request.body == ODD_BODY
    assert int(request.header("Content-Length") or -1) == len(ODD_BODY)
    assert request.header("Content-Type") == "application/json"
    assert request.header("User-Agent") == f"hookd/{__version__}"
    assert request.header("X-Hook-Event") == "job.failed"
    assert request.header("X-Hook-ID") == "h1"
    assert request.header("X-Hook-Attempt") == "1"
    assert request.delivery, "X-Hook-Delivery must be set"
    assert request.header("X-Hook-Signature") == signature(secret_of(hooks, "h1"), ODD_BODY)
    assert request.header("Authorization") is None


def test_delivery_ids_differ_per_hook_and_repeat_per_event(
    hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names
) -> None:
    """X-Hook-Delivery is one value per (event, hook): two hooks differ, a re-published event repeats it."""
    hooks = [hook_entry("a", receiver.url("/a")), hook_entry("b", receiver.url("/b"))]
    hookd.start(hooks)

    amqp.publish_event(prefix, "job.completed", event_id="evt-same")
    first_a, first_b = receiver.wait_for(1, "/a")[0], receiver.wait_for(1, "/b")[0]
    amqp.publish_event(prefix, "job.completed", event_id="evt-same")
    second_a, second_b = receiver.wait_for(2, "/a")[1], receiver.wait_for(2, "/b")[1]

    assert first_a.delivery != first_b.delivery
    assert second_a.delivery == first_a.delivery
    assert second_b.delivery == first_b.delivery


def test_basic_auth(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A hook with basic_auth is called with an Authorization: Basic header for its credentials."""
    hooks = [
        hook_entry(
            "auth", receiver.url("/auth"), events=["cluster"], basic_auth={"username": "hookd", "password": "p@ss:w0rd"}
        )
    ]
    hookd.start(hooks)

    amqp.publish_event(prefix, "cluster.available", {"id": 7})

    [request] = receiver.wait_for(1, "/auth")
    expected = base64.b64encode(b"hookd:p@ss:w0rd").decode()
    assert request.header("Authorization") == f"Basic {expected}"


def test_attempt_log_line(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """Each attempt logs one JSON `delivery.attempt` line with the event, ids, attempt, status and outcome."""
    hooks = [hook_entry("log", receiver.url("/log"), account_id=1001, events=["job.completed"])]
    daemon = hookd.start(hooks)

    event_id = amqp.publish_event(prefix, "job.completed", account_id=1001)

    [request] = receiver.wait_for(1, "/log")
    [line] = daemon.wait_log("delivery.attempt", event_id=event_id)
    assert line["event"] == "job.completed"
    assert str(line["account_id"]) == "1001"
    assert line["hook_id"] == "log"
    assert line["delivery_id"] == request.delivery
    assert line["attempt"] == 1
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["outcome"] == "delivered"
    assert daemon.find("daemon.start")
    assert daemon.find("broker.connected")
    lines = daemon.stdout_path.read_text().splitlines()
    assert len(daemon.logs()) == len(lines), "every stdout line is a JSON object"
