"""The store watcher: a revision counts as seen only once its load succeeded; reload requests; disables
stored from the watcher's own thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hookd.daemon.watcher import Loaded, Watcher
from hookd.errors import StoreError
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore

HookFactory = Callable[..., Hook]


class FlakyStore(MemoryStore):
    """A store whose next `failures` loads fail as a PostgreSQL failover does."""

    def __init__(self, hooks: list[Hook], *, revisioned: bool = True) -> None:
        super().__init__(hooks, revisioned=revisioned)
        self.failures = 0
        self.loads = 0

    def load(self) -> HookSet:
        self.loads += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("server closed the connection unexpectedly")
        return super().load()


def _handed_over(watcher: Watcher, what: Callable[[Loaded], bool], timeout_s: float = 5.0) -> Loaded | None:
    """Poll `take()` as the main loop does until a hand-over satisfies `what` (None at the deadline)."""
    pause = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        loaded = watcher.take()
        if loaded is not None and what(loaded):
            return loaded
        pause.wait(0.01)
    return None


def test_a_change_whose_load_failed_is_loaded_at_a_later_poll(make_hook: HookFactory) -> None:
    """The revision moved, the load failed (a failover): the next polls try again until it loads,
    instead of forgetting the change until another edit."""
    store = FlakyStore([make_hook(id="1")])
    stop = threading.Event()
    watcher = Watcher(store, poll_interval_s=0.01, stop=stop)
    watcher.start()
    try:
        store.failures = 2
        store.replace([make_hook(id="1"), make_hook(id="2")])
        loaded = _handed_over(watcher, lambda loaded: loaded.hooks is not None)
        assert loaded is not None and loaded.hooks is not None, "the change was never loaded"
        assert loaded.hooks.get("2") is not None
        assert loaded.revision == store.revision()
        assert store.loads >= 3
    finally:
        stop.set()
        watcher.join()


def test_a_reload_request_loads_a_source_without_revisions(make_hook: HookFactory) -> None:
    """A hooks file has no revision to poll: SIGHUP (`request`) loads it."""
    store = MemoryStore([make_hook(id="1")], revisioned=False)
    stop = threading.Event()
    watcher = Watcher(store, poll_interval_s=0.01, stop=stop)
    watcher.start()
    try:
        assert _handed_over(watcher, lambda _loaded: True, timeout_s=0.2) is None  # nothing unasked
        store.replace([make_hook(id="2")])
        watcher.request()
        loaded = _handed_over(watcher, lambda loaded: loaded.hooks is not None)
        assert loaded is not None and loaded.hooks is not None and loaded.hooks.get("2") is not None
    finally:
        stop.set()
        watcher.join()


def test_disables_are_stored_on_the_watchers_thread_and_their_revision_handed_back(make_hook: HookFactory) -> None:
    """`deactivate` only queues: the store is written by the watcher's thread, whose revision after
    the write comes back through `take()`."""
    hook = make_hook(id="1")
    writers: list[str] = []

    class Recording(MemoryStore):
        def deactivate(self, hook_id: str) -> bool:
            writers.append(threading.current_thread().name)
            return super().deactivate(hook_id)

    store = Recording([hook])
    stop = threading.Event()
    watcher = Watcher(store, poll_interval_s=0.01, stop=stop)
    watcher.start()
    try:
        watcher.deactivate(hook, "gone")
        loaded = _handed_over(watcher, lambda loaded: "1" in loaded.written)
        assert loaded is not None and loaded.written["1"] == store.revision()
        assert writers == ["store-watcher"]
    finally:
        stop.set()
        watcher.join()
