"""Hooks made through the API get real deliveries from a running `hookd run`: signed with their salt,
re-keyed by reset_salt, pinged, listed with their attempts and redelivered."""

from __future__ import annotations

import json
from typing import Any

from support.helpers import signature
from support.stack import Stack, settle, unique, wait_for


def create(stack: Stack, key: str, account: str, path: str, events: list[str]) -> dict[str, Any]:
    body = {"type": "web", "events": events, "settings": {"url": stack.receiver.url(path)}}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    hook: dict[str, Any] = answer.json()
    return hook


def test_a_hook_created_through_the_api_receives_an_event_signed_with_its_salt(stack: Stack) -> None:
    """The running daemon picks the new hook up and delivers the next event, signed with the salt returned."""
    account = unique("deliver")
    key = stack.key(account)
    hook = create(stack, key, account, f"/{account}", ["job"])
    stack.wait_loaded()  # the daemon reloads within poll_interval_s
    stack.publish("job.failed", account, {"id": 42, "status": "failed"})

    got = stack.wait_requests(f"/{account}")[0]
    assert got.event == "job.failed" and got.hook_id == hook["id"]
    assert got.header("X-Hook-Signature") == signature(hook["salt"], got.body)
    assert json.loads(got.body) == {"id": 42, "status": "failed"}


def test_reset_salt_changes_the_signing_key_of_the_next_delivery(stack: Stack) -> None:
    """After PUT reset_salt the next delivery verifies with the new salt, and not with the old one."""
    account = unique("reset")
    key = stack.key(account)
    client = stack.client(key)
    hook = create(stack, key, account, f"/{account}", ["cluster.error"])
    answer = client.put(stack.api(account, f"/hooks/{hook['id']}/reset_salt"), timeout=10)
    assert answer.status_code == 200
    salt = answer.json()["salt"]
    assert list(answer.json()) == ["salt"] and salt != hook["salt"]
    assert client.get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()["salt"] == salt

    # the new salt is a change like any other: wait until the daemon loaded it (the hook count does
    # not tell: wait for a hook created after the reset, a witness)
    witness_account = unique("witness")
    create(stack, stack.key(witness_account), witness_account, f"/{witness_account}", ["job"])
    stack.wait_loaded()
    stack.publish("cluster.error", account)

    got = stack.wait_requests(f"/{account}")[0]
    assert got.header("X-Hook-Signature") == signature(salt, got.body)
    assert got.header("X-Hook-Signature") != signature(hook["salt"], got.body)


def test_reset_salt_with_an_overlap_keeps_the_old_secret_in_webhook_signature(stack: Stack) -> None:
    """{"overlap_s": N} keeps the old salt valid: the show says until when; bad values are 422."""
    account = unique("overlap")
    key = stack.key(account)
    client = stack.client(key)
    hook = create(stack, key, account, f"/{account}", ["job"])
    for bad in ({"overlap_s": -1}, {"overlap_s": "1h"}, {"overlap_s": 10**9}, {"overlap": 5}):
        assert (
            client.put(stack.api(account, f"/hooks/{hook['id']}/reset_salt"), json=bad, timeout=10).status_code == 422
        )
    assert client.get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()["salt"] == hook["salt"]
    answer = client.put(stack.api(account, f"/hooks/{hook['id']}/reset_salt"), json={"overlap_s": 3600}, timeout=10)
    assert answer.status_code == 200
    shown = client.get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()
    assert shown["salt"] == answer.json()["salt"] and shown["previous_secret_expires_at"]


def test_ping_arrives_signed_through_the_normal_delivery_path(stack: Stack) -> None:
    """GET ping answers the hook; the receiver gets a ping event signed with the salt."""
    account = unique("ping")
    key = stack.key(account)
    hook = create(stack, key, account, f"/{account}", ["job"])
    answer = stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}/ping"), timeout=10)
    assert answer.status_code == 200 and answer.json()["id"] == hook["id"] and "salt" not in answer.json()
    got = stack.wait_requests(f"/{account}")[0]
    assert got.event == "ping" and got.hook_id == hook["id"]
    assert got.header("X-Hook-Signature") == signature(hook["salt"], got.body)
    assert hook["salt"].encode() not in got.body


def test_deliveries_list_their_attempts_and_redeliver_keeps_the_delivery_id(stack: Stack) -> None:
    """GET deliveries shows the ping with its attempt; filters narrow it; redeliver sends it again: 202."""
    account = unique("history")
    key = stack.key(account)
    client = stack.client(key)
    hook = create(stack, key, account, f"/{account}", ["job"])
    client.get(stack.api(account, f"/hooks/{hook['id']}/ping"), timeout=10)
    first = stack.wait_requests(f"/{account}")[0]
    url = stack.api(account, f"/hooks/{hook['id']}/deliveries")

    def recorded() -> list[dict[str, Any]]:
        # Settled, not just attempted: a ping to a hook the worker has not loaded yet is parked first
        # (state "retrying"), and a listing read while the delivered attempt is being written can show
        # the attempt beside the parked state (seen once on a busy machine).
        rows: list[dict[str, Any]] = client.get(url, timeout=10).json()
        return rows if rows and rows[0]["attempt_log"] and rows[0]["state"] != "retrying" else []

    rows = wait_for(recorded, "the ping settled in the delivery history")
    delivery = rows[0]
    assert delivery["delivery_id"] == first.delivery and delivery["event"] == "ping"
    assert delivery["state"] == "delivered" and delivery["hook_id"] == hook["id"]
    assert delivery["attempt_log"][0]["status"] == 200 and delivery["attempt_log"][0]["outcome"] == "delivered"
    assert "body" not in delivery
    assert (
        client.get(url, params={"status": "delivered", "event": "ping"}, timeout=10).json()[0]["delivery_id"]
        == first.delivery
    )
    assert client.get(url, params={"status": "failed"}, timeout=10).json() == []
    assert client.get(url, params={"since": "2999-01-01T00:00:00Z"}, timeout=10).json() == []
    for bad in ({"status": "lost"}, {"event": "job.exploded"}, {"since": "yesterday"}):
        assert client.get(url, params=bad, timeout=10).status_code == 422
    again = client.post(f"{url}/{first.delivery}/redeliver", timeout=10)
    assert again.status_code == 202, again.text
    assert again.json()["delivery_id"] == first.delivery
    second = stack.wait_requests(f"/{account}", 2)[1]
    assert second.delivery == first.delivery and second.attempt == 2
    assert client.post(f"{url}/not-a-delivery/redeliver", timeout=10).json() == {"message": "Item not found."}


def test_changes_reach_the_running_daemon(stack: Stack) -> None:
    """A hook disabled through the API gets nothing more once the daemon has the change."""
    account = unique("live")
    key = stack.key(account)
    client = stack.client(key)
    hook = create(stack, key, account, f"/{account}", ["job"])
    assert client.put(stack.api(account, f"/hooks/{hook['id']}"), json={"active": False}, timeout=10).status_code == 200
    # A hook created after the change (a witness, in another account) is loaded with it or later:
    # once the daemon counts it, it has the disable too.
    other = unique("witness")
    create(stack, stack.key(other), other, f"/{other}", ["job"])
    stack.wait_loaded()
    stack.publish("job.failed", account)
    stack.publish("job.failed", other, {"id": 8, "status": "failed"})  # after the disabled hook's event
    stack.wait_requests(f"/{other}")
    settle()  # the disabled hook's event was consumed first: a delivery to it would show by now
    assert stack.receiver.requests(f"/{account}") == []
