"""hookd's own hook notifications end to end, on the real broker with three `hookd run` workers and
`hookd serve`, on SQLite and PostgreSQL: `hook.failing` once when a hook's circuit opens, signed for
the account's subscribed hook and never sent to the failing hook; `hook.recovered` after its first
success; `hook.disabled` on a 410 and `hook.recovered` when the admin enables it again; the console
shows the health; a restart of every worker repeats nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.stack import Stack, database_url, need_broker, settle, unique, wait_for

from hookd.signing import verify

from .console_client import sign_in

#: The circuit opens after 2 failed attempts in a row; a probe 1 s later; one attempt per delivery.
DELIVERY = {"breaker_threshold": 2, "breaker_cooldown_s": 1, "inline_attempts": 1}
WORKERS = 3


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_broker()
    folder = tmp_path_factory.mktemp(f"notices-{request.param}")
    with database_url(request.param, folder) as url:
        running = Stack(folder, url, delivery=DELIVERY, workers=WORKERS)
        yield running
        running.close()


def _create(stack: Stack, key: str, account: str, path: str, events: list[str]) -> dict[str, Any]:
    payload = {"type": "web", "events": events, "settings": {"url": stack.receiver.url(path)}}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=payload, timeout=10)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _notices(stack: Stack, path: str) -> list[Any]:
    """The hook notices received at `path`, one per delivery id: a notice is delivered at least once,
    and one published twice (a confirm lost, a lease run out) comes under its one delivery id."""
    seen: set[str | None] = set()
    found = []
    for request in stack.receiver.requests(path):
        if (request.event or "").startswith("hook.") and request.delivery not in seen:
            seen.add(request.delivery)
            found.append(request)
    return found


def _wait_notices(stack: Stack, path: str, count: int, timeout_s: float = 30.0) -> list[Any]:
    found: list[Any] = wait_for(
        lambda: _notices(stack, path) if len(_notices(stack, path)) >= count else None,
        f"{count} hook notification(s) at {path}, got {[r.event for r in _notices(stack, path)]}",
        timeout_s,
    )
    return found


def _attempts_logged(stack: Stack, hook_id: str) -> int:
    """The `delivery.attempt` lines the workers logged for `hook_id` so far."""
    return sum(
        1 for w in stack.workers for e in w.logs() if e.get("msg") == "delivery.attempt" and e.get("hook_id") == hook_id
    )


def _fail_until_open(stack: Stack, account: str, path: str, events: int = 3 * WORKERS) -> None:
    """Publish job events until the hook's receiver saw that many more failures (enough for a circuit to open)."""
    stack.wait_loaded()
    already = len(stack.receiver.requests(path))
    for n in range(events):
        stack.publish("job.failed", account, {"id": n, "status": "failed"})
    stack.wait_requests(path, already + events, timeout_s=30)


def test_a_failing_hook_is_announced_once_signed_then_its_recovery(stack: Stack) -> None:
    """An open circuit is announced once (hook.failing, signed, to the hook subscribers), then its recovery."""
    account = unique("notify")
    key = stack.key(account)
    failing_path, monitor_path = f"/{account}/failing", f"/{account}/monitor"
    stack.receiver.program(failing_path, then=503)
    failing = _create(stack, key, account, failing_path, ["job", "hook"])  # it hears hook events too
    monitor = _create(stack, key, account, monitor_path, ["hook"])
    other_account = unique("other")
    other_path = f"/{account}/other-account"
    _create(stack, stack.key(other_account), other_account, other_path, ["hook"])
    _fail_until_open(stack, account, failing_path)

    [notice] = _wait_notices(stack, monitor_path, 1)
    assert notice.event == "hook.failing"
    assert notice.hook_id == monitor["id"]
    assert verify(monitor["salt"], notice.body, notice.header("X-Hook-Signature") or "")
    body = json.loads(notice.body)
    assert set(body) == {"hook", "reason", "since", "last_status", "last_error", "attempts"}
    assert body["hook"]["id"] == failing["id"] and body["hook"]["account_id"] == account
    assert "salt" not in body["hook"] and failing["salt"] not in notice.body.decode()
    assert (body["reason"], body["last_status"]) == ("circuit_open", 503)
    assert body["attempts"] >= DELIVERY["breaker_threshold"]

    browser = sign_in(stack, key)
    listed = browser.get(f"{stack.url}/hooks", timeout=10).text
    assert '<span class="status failure">Failing</span>' in listed
    assert (
        "Failing</span>: deliveries keep failing, since"
        in browser.get(f"{stack.url}/hooks/{failing['id']}", timeout=10).text
    )
    assert "deliveries keep failing" not in browser.get(f"{stack.url}/hooks/{monitor['id']}", timeout=10).text

    _fail_until_open(stack, account, failing_path, 2 * WORKERS)  # more failures on every worker
    # Each failure the receiver answered has been through its worker (logged and reported) before the
    # receiver starts answering 200. (A durable retry answered 503 right at the switch can still be
    # reported after another worker's recovery: that race is the notifier's, noted for its owner.)
    wait_for(
        lambda: _attempts_logged(stack, failing["id"]) >= len(stack.receiver.requests(failing_path)),
        "every failure the receiver saw logged by its worker",
    )
    stack.receiver.program(failing_path, then=200)
    stack.wait_loaded()
    stack.publish("job.failed", account, {"id": 99, "status": "failed"})
    got = _wait_notices(stack, monitor_path, 2)
    assert len(got) == 2, [(r.event, r.delivery) for r in got]  # a third would be a new period
    first, second = got
    assert (first.event, second.event) == ("hook.failing", "hook.recovered")
    recovered = json.loads(second.body)
    assert recovered["reason"] == "delivered" and recovered["hook"]["id"] == failing["id"]
    assert verify(monitor["salt"], second.body, second.header("X-Hook-Signature") or "")
    settle(3)  # every worker has had its successes: still one of each
    assert [r.event for r in _notices(stack, monitor_path)] == ["hook.failing", "hook.recovered"]
    assert _notices(stack, failing_path) == []
    assert stack.receiver.requests(other_path) == []
    assert "Healthy</span>: recovered" in browser.get(f"{stack.url}/hooks/{failing['id']}", timeout=10).text


def test_a_410_disables_the_hook_and_enabling_it_again_recovers_it(stack: Stack) -> None:
    """A 410 is announced as hook.disabled; the admin enabling the hook again is announced as hook.recovered."""
    account = unique("gone")
    key = stack.key(account)
    gone_path, monitor_path = f"/{account}/gone", f"/{account}/monitor"
    stack.receiver.program(gone_path, then=410)
    gone = _create(stack, key, account, gone_path, ["job"])
    monitor = _create(stack, key, account, monitor_path, ["hook.disabled", "hook.recovered"])
    stack.wait_loaded()
    stack.publish("job.completed", account, {"id": 5, "status": "completed"})

    [notice] = _wait_notices(stack, monitor_path, 1)
    assert notice.event == "hook.disabled"
    assert verify(monitor["salt"], notice.body, notice.header("X-Hook-Signature") or "")
    body = json.loads(notice.body)
    assert (body["reason"], body["last_status"], body["attempts"]) == ("gone", 410, 1)
    assert body["hook"]["id"] == gone["id"] and body["hook"]["active"] is False
    client = stack.client(key)
    hook_url = stack.api(account, f"/hooks/{gone['id']}")
    wait_for(lambda: client.get(hook_url, timeout=10).json()["active"] is False, "the disable stored")
    browser = sign_in(stack, key)
    assert "Disabled automatically" in browser.get(f"{stack.url}/hooks", timeout=10).text
    page = browser.get(f"{stack.url}/hooks/{gone['id']}", timeout=10).text
    assert "Disabled automatically</span>: because its receiver answered 410 Gone" in page

    stack.receiver.program(gone_path, then=200)
    answer = client.put(hook_url, json={"active": True}, timeout=10)
    assert answer.status_code == 200, answer.text
    got = _wait_notices(stack, monitor_path, 2)
    assert len(got) == 2, [(r.event, r.delivery) for r in got]
    recovered = got[1]
    assert recovered.event == "hook.recovered"
    assert json.loads(recovered.body)["reason"] == "enabled"
    settle(2)
    assert [r.event for r in _notices(stack, monitor_path)] == ["hook.disabled", "hook.recovered"]
    assert _notices(stack, gone_path) == []


def test_a_restart_of_every_worker_does_not_repeat_a_notification(stack: Stack) -> None:
    """After every worker restarts, the hook failing on each of them again is still one hook.failing."""
    account = unique("restart")
    key = stack.key(account)
    failing_path, monitor_path = f"/{account}/failing", f"/{account}/monitor"
    stack.receiver.program(failing_path, then=503)
    _create(stack, key, account, failing_path, ["job"])
    _create(stack, key, account, monitor_path, ["hook"])
    _fail_until_open(stack, account, failing_path)
    _wait_notices(stack, monitor_path, 1)

    stack.restart_workers()
    seen = len(stack.receiver.requests(failing_path))
    for n in range(3 * WORKERS):
        stack.publish("job.failed", account, {"id": n, "status": "failed"})
    stack.wait_requests(failing_path, seen + 3 * WORKERS, timeout_s=30)  # every worker's circuit opened again
    settle(2)
    assert [r.event for r in _notices(stack, monitor_path)] == ["hook.failing"]
