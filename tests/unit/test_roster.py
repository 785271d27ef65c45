"""Roster: the hooks in use and the ones hookd disabled, and when a stored disable ends."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from hookd.daemon.roster import Roster
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore

HookFactory = Callable[..., Hook]


def _stored(store: MemoryStore, hook_id: str) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        hook = store.get(hook_id)
        if hook is not None and not hook.active:
            return True
        time.sleep(0.01)
    return False


def test_a_disable_holds_until_a_load_includes_its_write_then_the_store_governs(make_hook: HookFactory) -> None:
    """A load older than the stored disable still saying active keeps the hook disabled (the write
    was on its way); a load that includes the write and says active means its admin enabled it."""
    hook = make_hook(id="1")
    store = MemoryStore([hook])
    roster = Roster(store, store.load(), store.revision())
    before = store.revision()
    assert roster.disable(hook, "gone")
    assert _stored(store, "1")
    deadline = time.monotonic() + 5  # the deactivating thread notes the revision right after its write
    while "1" not in roster._written and time.monotonic() < deadline:
        time.sleep(0.01)
    roster.replace(HookSet([hook]), before)  # loaded before the write landed: still active there
    assert roster.disabled == {"1": "gone"}
    store.replace([dataclasses.replace(hook, active=True)])  # the admin enables it again
    roster.replace(store.load(), store.revision())
    assert dict(roster.disabled) == {}


def test_a_file_reload_ends_every_disable(make_hook: HookFactory) -> None:
    """Without revisions (a hooks file), a reload is the operator deciding again."""
    hook = make_hook(id="1")
    store = MemoryStore([hook], revisioned=False)
    roster = Roster(store, store.load())
    assert roster.disable(hook, "gone")
    assert not roster.disable(hook, "gone")  # once
    roster.replace(HookSet([hook]))
    assert dict(roster.disabled) == {}
