"""hookd's own `hook.*` notifications, in-process: the daemon on the in-memory broker, its notice state
in a SQLite state database. Failing, disabled and recovered each reach the account's subscribed hooks
once, never the hook they are about, and a restart does not repeat one."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.inprocess import DELIVERED, Answer, InProcessDaemon, ScriptedTransport

from hookd.config import DeliverySettings
from hookd.events import HOOK_DISABLED, HOOK_FAILING, HOOK_RECOVERED
from hookd.outcomes import Verdict
from hookd.state import notices
from hookd.state.db import Database
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore

HookFactory = Callable[..., Hook]
#: Open after two failures; a probe after 0.3 s; two attempts per delivery, retried after 0.2 s.
FAST = DeliverySettings(
    inline_attempts=2, inline_backoff_s=0, retry_delays_s=(0.2,), retry_jitter=0, breaker_threshold=2,
    breaker_cooldown_s=0.3,
)  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Database]:
    db = Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    db.migrate()
    yield db
    db.close()


@pytest.fixture
def daemons() -> Iterator[list[InProcessDaemon]]:
    started: list[InProcessDaemon] = []
    yield started
    for daemon in started:
        daemon.stop()


class Switch:
    """A receiver for hook "1" that fails (503, or `status`) until `heal()`; every other hook answers 200."""

    def __init__(self, status: int = 503) -> None:
        self.status = status
        self.healed = threading.Event()

    def heal(self) -> None:
        self.healed.set()

    def __call__(self, hook: Hook, _number: int) -> Answer:
        if hook.id != "1" or self.healed.is_set():
            return DELIVERED
        verdict = Verdict.GONE if self.status == 410 else Verdict.RETRYABLE
        return verdict, self.status


def _hooks(make_hook: HookFactory) -> list[Hook]:
    return [
        make_hook(id="1", events=("job", "hook")),  # fails; subscribes to the hook group itself
        make_hook(id="2", events=("hook",)),  # the account's monitor
        make_hook(id="3", events=("hook.failing",)),  # failing only
        make_hook(id="4", account_id="globex", events=("hook",)),  # another account: hears nothing
    ]


def _notices(d: InProcessDaemon, hook_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(m.event, json.loads(m.body)) for m in d.transport.to(hook_id) if m.event.startswith("hook.")]


def _start(
    started: list[InProcessDaemon], hooks: list[Hook], switch: Switch, state: Database, **kw: Any
) -> InProcessDaemon:
    d = InProcessDaemon(hooks, ScriptedTransport(switch), delivery=kw.pop("delivery", FAST), notices=state, **kw)
    started.append(d)
    return d


def test_a_failing_hook_is_announced_once_then_its_recovery(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """The circuit opens: one `hook.failing` to hooks 2 and 3 (not to 1, not to another account),
    with the hook resource (no secret) and the failure; more failures add none; the first success
    after it sends `hook.recovered` to hook 2 (3 does not subscribe to it)."""
    switch = Switch()
    d = _start(daemons, _hooks(make_hook), switch, state)
    for n in range(4):
        d.publish("job.failed", "acme", json.dumps({"id": n}).encode())
    assert d.broker.wait(lambda: len(_notices(d, "2")) == 1 and len(_notices(d, "3")) == 1, 10)
    [(event, body)] = _notices(d, "2")
    assert event == HOOK_FAILING
    assert set(body) == {"hook", "reason", "since", "last_status", "last_error", "attempts"}
    assert body["hook"]["id"] == "1" and body["hook"]["account_id"] == "acme" and body["hook"]["active"] is True
    assert "secret" not in body["hook"] and "s3cr3t-value" not in json.dumps(body)
    assert (body["reason"], body["last_status"], body["last_error"]) == ("circuit_open", 503, "HTTP 503")
    assert body["attempts"] >= FAST.breaker_threshold
    assert _notices(d, "3")[0][1] == body
    tried = len(d.transport.to("1"))
    for n in range(4, 8):  # still failing: the probes fail, the circuit reopens, no second notice
        d.publish("job.failed", "acme", json.dumps({"id": n}).encode())
    assert d.broker.wait(lambda: len(d.transport.to("1")) >= tried + 2, 15)
    switch.heal()
    assert d.broker.wait(lambda: len(_notices(d, "2")) == 2, 15)
    assert d.settled(15)
    events = [e for e, _ in _notices(d, "2")]
    assert events == [HOOK_FAILING, HOOK_RECOVERED]
    recovered = _notices(d, "2")[1][1]
    assert recovered["reason"] == "delivered" and recovered["hook"]["id"] == "1"
    assert [e for e, _ in _notices(d, "3")] == [HOOK_FAILING]
    assert _notices(d, "1") == [] and _notices(d, "4") == []
    assert notices.states(state)["1"].state == notices.OK
    assert notices.claim(state) == []  # every published notice left the outbox on its confirm


def test_a_410_disables_the_hook_and_says_so(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """A 410 answer: `hook.disabled`, reason `gone`, the resource showing the hook inactive; then an
    admin enabling it again (the store says active, after the disable) is `hook.recovered`, `enabled`."""
    switch = Switch(410)
    store = MemoryStore(_hooks(make_hook))
    d = _start(daemons, [], switch, state, store=store)
    d.publish("job.failed", "acme")
    assert d.broker.wait(lambda: len(_notices(d, "2")) == 1, 10)
    [(event, body)] = _notices(d, "2")
    assert event == HOOK_DISABLED
    assert (body["reason"], body["last_status"], body["attempts"]) == ("gone", 410, 1)
    assert body["hook"]["active"] is False
    assert d.broker.wait(lambda: store.get("1") is not None and not store.get("1").active, 10)  # type: ignore[union-attr]
    switch.heal()
    store.replace(dataclasses.replace(h, active=True) if h.id == "1" else h for h in store.list())
    assert d.broker.wait(lambda: len(_notices(d, "2")) == 2, 10)
    assert _notices(d, "2")[1][0] == HOOK_RECOVERED
    assert _notices(d, "2")[1][1]["reason"] == "enabled"
    assert _notices(d, "3") == [] and _notices(d, "1") == []


def test_a_restart_while_still_failing_does_not_announce_again(
    daemons: list[InProcessDaemon], make_hook: HookFactory, state: Database
) -> None:
    """The notice state outlives the process: a second daemon on the same state database sees the
    hook fail again and sends nothing; its later success still sends `hook.recovered`."""
    switch = Switch()
    first = _start(daemons, _hooks(make_hook), switch, state)
    first.publish("job.failed", "acme")
    first.publish("job.failed", "acme")
    assert first.broker.wait(lambda: len(_notices(first, "2")) == 1, 10)
    first.stop()
    daemons.remove(first)
    second = _start(daemons, _hooks(make_hook), switch, state)
    for _ in range(3):
        second.publish("job.failed", "acme")
    assert second.broker.wait(lambda: len(second.transport.to("1")) >= 6, 10)
    assert _notices(second, "2") == []
    switch.heal()
    assert second.broker.wait(lambda: [e for e, _ in _notices(second, "2")] == [HOOK_RECOVERED], 15)


def test_the_notice_state_is_a_compare_and_set(state: Database) -> None:
    """Two workers deciding the same change: one wins and queues the notice; the other changes nothing."""
    since = datetime(2026, 12, 1, tzinfo=UTC)
    notice = (HOOK_FAILING, "hook.failing:9:x", "acme", b"{}")
    won = [
        notices.transition(
            state, "9", to=notices.FAILING, allowed_from=(None, notices.OK), reason="r", since=since, notice=notice
        )
        for _ in range(2)
    ]
    assert won == [True, False]
    [pending] = notices.claim(state)
    assert (pending.event, pending.event_id, pending.body) == (HOOK_FAILING, "hook.failing:9:x", b"{}")
    assert notices.claim(state) == []  # held by the first claim's lease
    assert notices.transition(
        state, "9", to=notices.OK, allowed_from=(notices.FAILING,), reason="delivered", since=since, notice=None
    )
    assert notices.states(state)["9"].state == notices.OK
    notices.remove(state, [pending.id])
    assert notices.claim(state, lease_s=0) == []
