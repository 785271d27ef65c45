"""The daemon built in-process on the in-memory broker: fan-out, retries, dead letters, invalid
messages, reloads and reconnects, end to end but without a network."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.inprocess import DELIVERED, Answer, InProcessDaemon, ScriptedTransport

from hookd.config import DeliverySettings
from hookd.messages import delivery_id
from hookd.outcomes import Verdict
from hookd.publisher import ping_message
from hookd.state import disables
from hookd.state.db import Database
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore

HookFactory = Callable[..., Hook]


@pytest.fixture
def daemons() -> Iterator[list[InProcessDaemon]]:
    started: list[InProcessDaemon] = []
    yield started
    for daemon in started:
        daemon.stop()


def _start(started: list[InProcessDaemon], hooks: list[Hook], **options: object) -> InProcessDaemon:
    daemon = InProcessDaemon(hooks, **options)  # type: ignore[arg-type]
    started.append(daemon)
    return daemon


def test_an_event_reaches_its_accounts_subscribed_hooks_and_is_acked(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """One attempt per matching hook, with the event's stable delivery id; then the message is acked."""
    hooks = [
        make_hook(id="1", events=("job",)),
        make_hook(id="2", events=("job.failed",)),
        make_hook(id="3", events=("cluster",)),
        make_hook(id="4", account_id="globex", events=("job",)),
    ]
    d = _start(daemons, hooks)
    event_id = d.publish("job.failed", "acme", b'{"id": 7}')
    assert d.settled()
    made = {m.hook_id: m for m in d.transport.made}
    assert sorted(made) == ["1", "2"]
    assert made["1"].delivery_id == delivery_id(event_id, "1")
    assert made["2"].body == b'{"id": 7}'


def test_stopping_the_daemon_closes_the_transport_on_the_loop_and_ends_the_loops_thread(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """The stop path reaches the engine: its transport (keep-alive pool, resolver threads) is closed on
    the event loop, and the loop's thread is gone when the daemon's run returns (issue 18, defect 6)."""
    d = _start(daemons, [make_hook(id="1", events=("job",))])
    d.publish("job.failed", "acme")
    assert d.settled()
    assert any(t.name == "delivery-engine" for t in threading.enumerate())
    d.stop()
    assert d.transport.closed_on == "delivery-engine"
    assert not any(t.name == "delivery-engine" for t in threading.enumerate())


def test_a_retryable_failure_comes_back_through_the_delay_queue(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """After the in-process attempts, a durable retry waits in the delay queue and is tried again with
    the attempt count continuing and the same delivery id."""

    def flaky(_hook: Hook, number: int) -> Answer:
        return DELIVERED if number > 1 else (Verdict.RETRYABLE, 503)

    delivery = DeliverySettings(inline_attempts=1, retry_delays_s=(0.2,), retry_jitter=0)
    d = _start(daemons, [make_hook(id="1", events=("job",))], transport=ScriptedTransport(flaky), delivery=delivery)
    d.publish("job.failed", "acme")
    assert d.broker.wait(lambda: len(d.transport.made) == 2, 10)
    first, second = d.transport.made
    assert (first.number, second.number) == (1, 2)
    assert first.delivery_id == second.delivery_id
    assert d.settled()


def test_a_permanent_failure_is_dead_lettered_with_the_original_body(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """A 400 is not retried: the body goes to `<prefix>.dead` unchanged, with the reason in a header."""
    transport = ScriptedTransport(lambda _hook, _n: (Verdict.PERMANENT, 400))
    d = _start(daemons, [make_hook(id="1", events=("job",))], transport=transport)
    d.publish("job.failed", "acme", b'{"id": 99}')
    assert d.broker.wait(lambda: d.broker.ready(d.topology.dead) == 1, 10)
    [dead] = d.broker.messages(d.topology.dead)
    assert dead.body == b'{"id": 99}'
    assert (dead.headers["reason"], dead.headers["hook_id"], dead.headers["attempts"]) == ("permanent_failure", "1", 1)
    assert len(transport.made) == 1


def test_a_message_that_breaks_the_contract_is_parked_as_invalid(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """An event whose account header is missing goes to `<prefix>.invalid` with its reason."""
    d = _start(daemons, [make_hook(id="1", events=("job",))])
    d.publish("job.failed", "")
    assert d.broker.wait(lambda: d.broker.ready(d.topology.invalid) == 1, 10)
    [invalid] = d.broker.messages(d.topology.invalid)
    assert invalid.headers["reason"] == "missing_account"
    assert d.transport.made == []


def test_a_store_change_reaches_the_running_daemon(daemons: list[InProcessDaemon], make_hook: HookFactory) -> None:
    """A hook added to the store receives the events published after the daemon noticed the change."""
    d = _start(daemons, [make_hook(id="1", events=("job",))])
    d.store.replace([make_hook(id="1", events=("job",)), make_hook(id="2", events=("job",))])
    assert d.broker.wait(lambda: d.daemon.hooks.get("2") is not None, 5)
    d.publish("job.completed", "acme")
    assert d.broker.wait(lambda: {m.hook_id for m in d.transport.made} == {"1", "2"}, 10)


def test_after_a_lost_connection_unacked_work_is_delivered_again_with_its_id(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """A broker restart returns the unacked event; the reconnected daemon delivers it again under the
    same delivery id (at-least-once, deduplicable)."""
    transport = ScriptedTransport()
    held_up = transport.gate = threading.Event()
    d = _start(daemons, [make_hook(id="1", events=("job",))], transport=transport)
    d.publish("job.failed", "acme")
    assert d.broker.wait(lambda: d.broker.held() == 1, 5)
    d.broker.drop()
    held_up.set()
    assert d.broker.wait(lambda: len(transport.made) >= 2, 15)
    assert len({m.delivery_id for m in transport.made}) == 1
    assert d.settled(15)


def test_a_gone_hook_is_disabled_and_its_waiting_deliveries_dead_lettered(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """A 410 disables the hook in the store; later events skip it."""
    transport = ScriptedTransport(lambda hook, _n: (Verdict.GONE, 410) if hook.id == "1" else DELIVERED)
    d = _start(daemons, [make_hook(id="1", events=("job",)), make_hook(id="2", events=("job",))], transport=transport)
    d.publish("job.failed", "acme")
    assert d.broker.wait(lambda: d.broker.ready(d.topology.dead) == 1, 10)
    assert d.broker.wait(lambda: not (d.store.get("1") or make_hook()).active, 5)
    d.publish("job.completed", "acme")
    assert d.broker.wait(lambda: len(transport.to("2")) == 2, 10)
    assert len(transport.to("1")) == 1


def test_a_ping_of_a_hook_not_loaded_yet_waits_for_the_reload(
    daemons: list[InProcessDaemon], make_hook: HookFactory
) -> None:
    """A ping carrying a store revision the daemon has not loaded is parked (`hook_loading`) while it
    reloads, then delivered; a ping of an unknown hook at a revision it has loaded is `hook_not_found`."""
    d = _start(daemons, [make_hook(id="1", events=("job",))])
    new_hook = make_hook(id="2", events=("job",))
    ahead, _ = ping_message(new_hook, d.topology, revision=d.store.revision() + 1)  # type: ignore[operator]
    d.broker.publish(ahead)
    parked = d.topology.retry_queue(1.0)
    assert d.broker.wait(lambda: parked in d.broker.queues and d.broker.ready(parked) == 1, 5)
    d.store.replace([make_hook(id="1", events=("job",)), new_hook])  # the store reaches that revision
    assert d.broker.wait(lambda: [m.event for m in d.transport.to("2")] == ["ping"], 10)

    unknown, _ = ping_message(make_hook(id="3"), d.topology, revision=d.store.revision())
    d.broker.publish(unknown)
    assert d.broker.wait(lambda: d.broker.ready(d.topology.dead) == 1, 10)
    [dead] = d.broker.messages(d.topology.dead)
    assert (dead.headers["reason"], dead.headers["hook_id"]) == ("hook_not_found", "3")
    assert d.transport.to("3") == []


def test_a_file_hook_hookd_disabled_stays_disabled_across_a_restart_until_its_entry_changes(
    daemons: list[InProcessDaemon], make_hook: HookFactory, tmp_path: Path
) -> None:
    """A hooks-file hook that answered 410 is not tried again after a restart (the decision is kept in
    the state database), until the operator edits its entry and reloads."""
    with Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}") as state:
        state.migrate()
        gone, other = make_hook(id="1", events=("job",)), make_hook(id="2", events=("job",))
        store = MemoryStore([gone, other], revisioned=False)  # a hooks file: no revisions, never written
        transport = ScriptedTransport(lambda hook, _n: (Verdict.GONE, 410) if hook.id == "1" else DELIVERED)
        first = _start(daemons, [], transport=transport, store=store, state=state)
        first.publish("job.failed", "acme")
        assert first.broker.wait(lambda: first.broker.ready(first.topology.dead) == 1, 10)
        assert first.broker.wait(lambda: "1" in disables.kept(state), 5)
        first.stop()
        daemons.remove(first)

        restarted = _start(daemons, [], transport=transport, store=store, state=state)
        restarted.publish("job.completed", "acme")
        assert restarted.broker.wait(lambda: len(transport.to("2")) == 2, 10)
        assert restarted.settled()
        assert dict(restarted.daemon.disabled) == {"1": "gone"}
        assert len(transport.to("1")) == 1  # not tried again after the restart

        store.replace([dataclasses.replace(gone, url="https://fixed.example.com/in"), other])  # the operator edits it
        restarted.daemon.reload()
        assert restarted.broker.wait(lambda: not restarted.daemon.disabled, 5)
        assert disables.kept(state) == {}
        restarted.publish("job.started", "acme")
        assert restarted.broker.wait(lambda: len(transport.to("1")) == 2, 10)
