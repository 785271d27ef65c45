"""The daemon and `hookd explain` agree (a property test): for any hooks, health and event, explain
says "would receive" exactly for the hooks the daemon, built in-process, then attempts."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.inprocess import DELIVERED, Answer, InProcessDaemon, ScriptedTransport

from hookd.broker import Outgoing
from hookd.cli.explain import explain
from hookd.config import DeliverySettings
from hookd.events import EVENTS, SUBSCRIBABLE
from hookd.outcomes import Verdict
from hookd.publisher import ping_message
from hookd.state import queries
from hookd.state.db import Database
from hookd.state.history import HistoryWriter
from hookd.subscriptions.model import Hook

#: What a hook's receiver does with the warm-up event: answer, say it is gone (410: disabled), or fail
#: (500: with breaker_threshold 1 its circuit opens).
BEHAVIOURS = ("ok", "gone", "failing")
SELECTORS = sorted(SUBSCRIBABLE)
_ANSWERS: dict[str, Answer] = {"ok": DELIVERED, "gone": (Verdict.GONE, 410), "failing": (Verdict.RETRYABLE, 500)}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Hook], dict[str, str], str]:
    count = draw(st.integers(min_value=1, max_value=6))
    hooks, behaviour = [], {}
    for n in range(count):
        hook_id = str(n + 1)
        hooks.append(
            Hook(
                id=hook_id,
                account_id=draw(st.sampled_from(["acme", "globex"])),
                url=f"https://8.8.8.{n + 1}/hook",  # public literals: the network policy resolves nothing
                events=tuple(
                    draw(st.lists(st.sampled_from(sorted(SUBSCRIBABLE)), min_size=1, max_size=3, unique=True))
                ),
                secret=f"secret-{hook_id}",
                active=draw(st.booleans()),
            )
        )
        behaviour[hook_id] = draw(st.sampled_from(BEHAVIOURS))
    return hooks, behaviour, draw(st.sampled_from(sorted(EVENTS)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_explain_says_would_receive_exactly_for_what_the_daemon_attempts(
    scenario: tuple[list[Hook], dict[str, str], str],
) -> None:
    """After a warm-up event that disables some hooks and opens others' circuits, the next event is
    attempted for exactly the hooks `hookd explain` says would receive it."""
    hooks, behaviour, event = scenario
    warmed = [h for h in hooks if h.active]
    transport = ScriptedTransport(lambda hook, _n: _ANSWERS[behaviour[hook.id]] if hook.id in warm else DELIVERED)
    warm = {h.id for h in warmed}
    with tempfile.TemporaryDirectory() as folder:
        db = Database.from_url(f"sqlite:///{Path(folder) / 'state.db'}")
        db.migrate()
        history = HistoryWriter(db, flush_interval_s=0.02)
        delivery = DeliverySettings(
            inline_attempts=1, inline_backoff_s=0, retry_delays_s=(60.0,), breaker_threshold=1, breaker_cooldown_s=600
        )
        daemon = InProcessDaemon(hooks, transport, delivery=delivery, history=history)
        try:
            # Warm-up: every active hook gets a ping, whatever it subscribes to; its answer shapes its health.
            for hook in warmed:
                daemon.broker.publish(_ping(daemon, hook))
            assert daemon.broker.wait(lambda: len(transport.made) == len(warmed), 10)
            assert daemon.settled(10)
            expected_health = {h for h in warm if behaviour[h] != "ok"}
            assert _wait_for(lambda: set(queries.health(db, warm)) >= expected_health)
            warm.clear()  # from here on every receiver answers 200: only the rules decide
            before = len(transport.made)
            for account in ("acme", "globex"):
                daemon.publish(event, account)
            assert daemon.settled(10)
            attempted = {m.hook_id for m in transport.made[before:]}
            health = queries.health(db, [h.id for h in hooks])
            now = {h.id: daemon.store.get(h.id) for h in hooks}  # what `hookd explain` reads: the store as it is
            would = {i for i, h in now.items() if explain(h, i, event, health.get(i), delivery).would_receive}
            assert attempted == would, (attempted, would, behaviour)
        finally:
            daemon.stop()
            db.close()


def _ping(daemon: InProcessDaemon, hook: Hook) -> Outgoing:
    message, _ = ping_message(hook, daemon.topology)
    return message


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
