"""Roster: the hooks in use and the ones hookd disabled, and when a disable ends (a database's stored
disable, a hooks file's kept one)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hookd.daemon.roster import Roster
from hookd.daemon.watcher import Loaded, Watcher
from hookd.state import disables
from hookd.state.db import Database
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore

HookFactory = Callable[..., Hook]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite state database in the test's folder."""
    with Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}") as db:
        db.migrate()
        yield db


def _taken(watcher: Watcher, what: Callable[[Loaded], bool]) -> Loaded:
    """Poll `watcher.take()` (as the main loop does) until what it hands over satisfies `what`."""
    done = threading.Event()
    found: list[Loaded] = []
    for _ in range(500):  # 5 s in all: a liveness bound, not a speed target
        loaded = watcher.take()
        if loaded is not None and what(loaded):
            found.append(loaded)
            break
        done.wait(0.01)
    assert found, "the watcher never handed over what was expected"
    return found[0]


def test_a_disable_holds_until_a_load_includes_its_write_then_the_store_governs(make_hook: HookFactory) -> None:
    """A load older than the stored disable still saying active keeps the hook disabled (the write
    was on its way); a load that includes the write and says active means its admin enabled it."""
    hook = make_hook(id="1")
    store = MemoryStore([hook])
    stop = threading.Event()
    watcher = Watcher(store, poll_interval_s=0.01, stop=stop)
    roster = Roster(store.load(), store.revision(), persisted=True, store_disable=watcher.deactivate)
    before = store.revision()
    watcher.start()
    try:
        assert roster.disable(hook, "gone")
        loaded = _taken(watcher, lambda loaded: "1" in loaded.written)
        roster.stored(loaded.written)
        stored = store.get("1")
        assert stored is not None and not stored.active
        roster.replace(HookSet([hook]), before)  # loaded before the write landed: still active there
        assert roster.disabled == {"1": "gone"}
        store.replace([dataclasses.replace(hook, active=True)])  # the admin enables it again
        roster.replace(store.load(), store.revision())
        assert dict(roster.disabled) == {}
    finally:
        stop.set()
        watcher.join()


def test_a_file_reload_keeps_a_disable_while_the_entry_is_unchanged(make_hook: HookFactory) -> None:
    """Without a state database, a hooks file's reload keeps the disable of an unchanged entry and
    ends it for an edited one: the operator decided again."""
    hook = make_hook(id="1")
    roster = Roster(HookSet([hook]), persisted=False)
    assert roster.disable(hook, "gone")
    assert not roster.disable(hook, "gone")  # once
    roster.replace(HookSet([hook]))
    assert dict(roster.disabled) == {"1": "gone"}
    roster.replace(HookSet([dataclasses.replace(hook, url="https://new.example.com/in")]))
    assert dict(roster.disabled) == {}


def test_a_kept_disable_survives_a_restart_and_ends_with_an_edit(make_hook: HookFactory, state: Database) -> None:
    """A file hook hookd disabled is kept in the state database: a new process (a restart) starts
    with it disabled; an edited entry ends the disable and the record is forgotten."""
    hook, other = make_hook(id="1"), make_hook(id="2")
    store = MemoryStore([hook, other], revisioned=False)
    stop = threading.Event()
    first = Watcher(store, poll_interval_s=0.01, stop=stop, state=state)
    roster = Roster(store.load(), persisted=False, store_disable=first.deactivate, kept=first.kept(store.load()))
    first.start()
    try:
        roster.disable(hook, "failing")
        roster.stored(_taken(first, lambda loaded: "1" in loaded.written).written)
    finally:
        stop.set()
        first.join()

    restarted = Watcher(store, poll_interval_s=0.01, stop=threading.Event(), state=state)
    again = Roster(store.load(), persisted=False, kept=restarted.kept(store.load()))
    assert dict(again.disabled) == {"1": "failing"}

    edited = HookSet([dataclasses.replace(hook, events=("job",)), other])
    again.replace(edited, None, restarted.kept(edited))
    assert dict(again.disabled) == {}
    assert disables.kept(state) == {}


def test_enabling_a_file_hook_forgets_its_kept_disable_at_the_next_reload(
    make_hook: HookFactory, state: Database
) -> None:
    """`hookd hooks enable` removes the kept record; the next reload of the unchanged file enables it."""
    hook = make_hook(id="1")
    disables.keep(state, hook, "gone")
    watcher = Watcher(MemoryStore([hook], revisioned=False), poll_interval_s=0.01, stop=threading.Event(), state=state)
    roster = Roster(HookSet([hook]), persisted=False, kept=watcher.kept(HookSet([hook])))
    assert dict(roster.disabled) == {"1": "gone"}
    disables.forget(state, ["1"])
    roster.replace(HookSet([hook]), None, watcher.kept(HookSet([hook])))
    assert dict(roster.disabled) == {}


def test_a_disable_on_its_way_to_the_state_database_survives_a_reload(make_hook: HookFactory) -> None:
    """A reload whose kept records predate the write of a disable made here does not end it."""
    hook = make_hook(id="1")
    roster = Roster(HookSet([hook]), persisted=False, kept={})
    roster.disable(hook, "gone")
    roster.replace(HookSet([hook]), None, {})  # read before the disable was written
    assert dict(roster.disabled) == {"1": "gone"}
    roster.stored({"1": 0})
    roster.replace(HookSet([hook]), None, {})  # written, then forgotten (`hookd hooks enable`)
    assert dict(roster.disabled) == {}
