"""Failure handling: what is retried, inline and durably, and what ends in `<prefix>.dead` with which headers."""

from __future__ import annotations

import signal
import threading
from datetime import datetime

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Got, Names, Receiver, Reply, free_port, hook_entry, settle

PERMANENT_STATUSES = (400, 401, 403, 404, 422, 301, 307)  # 410 disables the hook: tests/integration/faults
RETRYABLE_STATUSES = (408, 429, 500, 502, 503, 504)


def by_hook(letters: list[Got]) -> dict[str, Got]:
    return {str(letter.headers["hook_id"]): letter for letter in letters}


def test_retry_then_success_only_to_failing_hook(
    hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names
) -> None:
    """A failing hook is retried inline then durably until it succeeds; the healthy hook gets the event once."""
    receiver.program("/flaky", 500, 503, 500)  # attempts 1-2 inline, durable retry: 3 fails, 4 succeeds
    hooks = [hook_entry("flaky", receiver.url("/flaky")), hook_entry("healthy", receiver.url("/healthy"))]
    daemon = hookd.start(hooks, delivery={"inline_attempts": 2, "retry_delays_s": [1, 2]})

    event_id = amqp.publish_event(prefix, "job.failed", b'{"id": 9, "state": "failed"}')

    receiver.wait_for(4, "/flaky")
    # the receiver records a request before it answers: the daemon logs the attempt after the answer
    daemon.wait_log("delivery.attempt", count=4, event_id=event_id, hook_id="flaky")
    settle()
    attempts = receiver.requests("/flaky")
    assert [r.attempt for r in attempts] == [1, 2, 3, 4]
    assert len({r.delivery for r in attempts}) == 1
    assert {r.body for r in attempts} == {b'{"id": 9, "state": "failed"}'}
    assert len({r.header("X-Hook-Signature") for r in attempts}) == 1
    [healthy] = receiver.requests("/healthy")
    assert healthy.attempt == 1
    assert healthy.delivery != attempts[0].delivery
    assert len(daemon.find("delivery.retry_scheduled", hook_id="flaky")) == 1
    assert not daemon.find("delivery.retry_scheduled", hook_id="healthy")
    assert [line["attempt"] for line in daemon.find("delivery.attempt", event_id=event_id, hook_id="flaky")] == [
        1,
        2,
        3,
        4,
    ]
    assert amqp.drain(prefix.dead) == []


def test_retryable_statuses_are_retried(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """408, 429 and 5xx answers are retried (here the second attempt succeeds) and nothing is dead-lettered."""
    hooks = []
    for status in RETRYABLE_STATUSES:
        receiver.program(f"/s{status}", status)
        hooks.append(hook_entry(f"s{status}", receiver.url(f"/s{status}")))
    hookd.start(hooks)

    amqp.publish_event(prefix, "cluster.error")

    for status in RETRYABLE_STATUSES:
        requests = receiver.wait_for(2, f"/s{status}")
        assert [r.attempt for r in requests] == [1, 2], status
    settle()
    assert len(receiver.requests()) == 2 * len(RETRYABLE_STATUSES)
    assert amqp.drain(prefix.dead) == []


def test_timeout_is_retried(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """An attempt that times out is retried, with the same delivery id and the next attempt number."""
    receiver.program("/slow", Reply(200, hold=threading.Event()))  # never answered: only the deadline ends it
    daemon = hookd.start([hook_entry("slow", receiver.url("/slow"))], delivery={"timeout_s": 1.0})

    amqp.publish_event(prefix, "job.started")

    first, second = receiver.wait_for(2, "/slow")
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.delivery == second.delivery
    [timed_out] = daemon.wait_log("delivery.attempt", hook_id="slow", attempt=1)
    assert timed_out["outcome"] == "retryable"
    assert timed_out["status"] is None
    daemon.wait_log("delivery.attempt", hook_id="slow", attempt=2, outcome="delivered")


def test_connection_refused_is_retried_until_exhausted(hookd: HookdFactory, amqp: Amqp, prefix: Names) -> None:
    """A hook whose port refuses connections is retried, then dead-lettered without a last_status."""
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    daemon = hookd.start([hook_entry("refused", url)], delivery={"inline_attempts": 2, "retry_delays_s": [1]})

    event_id = amqp.publish_event(prefix, "job.completed")

    [letter] = amqp.wait_messages(prefix.dead, 1)
    assert letter.headers["reason"] == "retries_exhausted"
    assert letter.headers["attempts"] == 4
    assert letter.headers["retries"] == 1
    assert letter.headers["event_id"] == event_id
    assert "last_status" not in letter.headers
    assert letter.headers.get("error")
    lines = daemon.wait_log("delivery.attempt", count=4, hook_id="refused")  # written off the delivery path
    assert {line["outcome"] for line in lines} == {"retryable"}


def test_permanent_failure_dead_letter(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A 404 is not retried: the delivery goes to `.dead` at once, body intact, described in headers."""
    receiver.program("/gone", then=404)
    body = b'{"id": 77, "status": "failed" }'
    daemon = hookd.start([hook_entry("gone", receiver.url("/gone"), account_id=1001)])

    event_id = amqp.publish_event(prefix, "job.failed", body, account_id=1001)

    [letter] = amqp.wait_messages(prefix.dead, 1)
    [request] = receiver.requests("/gone")
    assert letter.body == body
    headers = letter.headers
    assert headers["hook_id"] == "gone"
    assert headers["event"] == "job.failed"
    assert headers["event_id"] == event_id
    assert str(headers["account_id"]) == "1001"
    assert headers["delivery_id"] == request.delivery
    assert headers["attempts"] == 1
    assert headers["retries"] == 0
    assert headers["reason"] == "permanent_failure"
    assert headers["last_status"] == 404
    assert datetime.fromisoformat(str(headers["dead_lettered_at"])).tzinfo is not None
    assert not daemon.find("delivery.retry_scheduled")
    daemon.wait_log("delivery.dead_lettered", hook_id="gone", reason="permanent_failure")
    settle()
    assert len(receiver.requests("/gone")) == 1


def test_dead_letter_error_header_for_http_status(
    hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names
) -> None:
    """A dead letter carries an `error` header even when the failure was an HTTP status (the contract lists it)."""
    receiver.program("/gone", then=404)
    hookd.start([hook_entry("gone", receiver.url("/gone"))])

    amqp.publish_event(prefix, "job.failed")

    [letter] = amqp.wait_messages(prefix.dead, 1)
    assert letter.headers.get("error"), letter.headers


def test_permanent_statuses_not_retried(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """4xx (other than 408/429) and 3xx answers are attempted once and dead-lettered with their status."""
    hooks = []
    for status in PERMANENT_STATUSES:
        receiver.program(f"/s{status}", then=Reply(status, headers={"Location": receiver.url("/elsewhere")}))
        hooks.append(hook_entry(f"s{status}", receiver.url(f"/s{status}")))
    hookd.start(hooks)

    amqp.publish_event(prefix, "job.completed")

    letters = by_hook(amqp.wait_messages(prefix.dead, len(PERMANENT_STATUSES)))
    for status in PERMANENT_STATUSES:
        letter = letters[f"s{status}"]
        assert letter.headers["reason"] == "permanent_failure", status
        assert letter.headers["last_status"] == status
        assert letter.headers["attempts"] == 1
    settle()
    assert sorted(r.path for r in receiver.requests()) == sorted(f"/s{s}" for s in PERMANENT_STATUSES)


def test_redirect_not_followed(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A 302 is not followed: the Location target gets nothing and the delivery is dead-lettered."""
    receiver.program("/moved", then=Reply(302, headers={"Location": receiver.url("/new-home")}))
    hookd.start([hook_entry("moved", receiver.url("/moved"))])

    amqp.publish_event(prefix, "cluster.requested")

    [letter] = amqp.wait_messages(prefix.dead, 1)
    assert letter.headers["reason"] == "permanent_failure"
    assert letter.headers["last_status"] == 302
    settle()
    assert [r.path for r in receiver.requests()] == ["/moved"]


def test_retries_exhausted(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A hook failing with 500 forever gets inline_attempts * (len(retry_delays_s) + 1) attempts, then `.dead`."""
    receiver.program("/down", then=500)
    body = b'{"id": 5}'
    daemon = hookd.start(
        [hook_entry("down", receiver.url("/down"))],
        delivery={"inline_attempts": 2, "retry_delays_s": [1, 1], "breaker_threshold": 0},
    )

    event_id = amqp.publish_event(prefix, "job.failed", body)

    [letter] = amqp.wait_messages(prefix.dead, 1, timeout_s=20)
    requests = receiver.requests("/down")
    assert [r.attempt for r in requests] == [1, 2, 3, 4, 5, 6]
    assert len({r.delivery for r in requests}) == 1
    assert letter.body == body
    assert letter.headers["reason"] == "retries_exhausted"
    assert letter.headers["attempts"] == 6
    assert letter.headers["retries"] == 2
    assert letter.headers["last_status"] == 500
    assert letter.headers["event_id"] == event_id
    assert letter.headers["delivery_id"] == requests[0].delivery
    daemon.wait_log("delivery.dead_lettered", hook_id="down", reason="retries_exhausted")
    assert len(daemon.find("delivery.retry_scheduled", hook_id="down")) == 2  # logged before the dead letter


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param("remove", "hook_not_found", id="hook_not_found"),
        pytest.param("deactivate", "hook_inactive", id="hook_inactive"),
    ],
)
def test_retry_of_removed_or_inactive_hook_dead_lettered(
    change: str, reason: str, *, hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names
) -> None:
    """A durable retry whose hook was deleted or deactivated meanwhile is dead-lettered with that reason."""
    receiver.program("/flaky", then=500)
    hooks = [hook_entry("flaky", receiver.url("/flaky")), hook_entry("other", receiver.url("/other"))]
    first = hookd.start(hooks, delivery={"inline_attempts": 2, "retry_delays_s": [1]})
    amqp.publish_event(prefix, "job.failed")
    first.wait_log("delivery.retry_scheduled", hook_id="flaky")
    first.send(signal.SIGTERM)
    assert first.wait_exit() == 0
    # The retry now waits on the broker while the hook changes; the next daemon reads the new file.
    if change == "remove":
        hookd.write_hooks([h for h in hooks if h["id"] != "flaky"])
    else:
        hookd.write_hooks([{**h, "active": False} if h["id"] == "flaky" else h for h in hooks])
    hookd.start()

    [letter] = amqp.wait_messages(prefix.dead, 1)
    assert letter.headers["reason"] == reason
    assert letter.headers["hook_id"] == "flaky"
    assert letter.headers["attempts"] == 2
    settle()
    assert len(receiver.requests("/flaky")) == 2
