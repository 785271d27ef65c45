"""Noticing that the hooks changed, and loading them, off the connection's thread.

A database store is polled for its change revision every `subscriptions.poll_interval_s`; SIGHUP asks
for a reload of any store. Loading happens on this thread (a database query, a file read); the
result waits in `take()` for the main thread, which swaps it in at its next loop turn: the hooks and
the disabled set are changed by their one owner only (`Roster`). A broken source keeps the last good
hooks and says why; an unreachable database is logged once per outage.
"""

from __future__ import annotations

import threading

from hookd import logs
from hookd.errors import ConfigError, StoreError
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.store import SubscriptionStore

log = logs.get_logger("hookd.worker")
_IDLE_WAIT_S = 1.0  # without a revision to poll: how often to look at the stop flag


class Watcher:
    """A thread that loads the store when asked (SIGHUP) or when its revision moves."""

    def __init__(self, store: SubscriptionStore, *, poll_interval_s: float, stop: threading.Event) -> None:
        self._store = store
        self._poll_s = poll_interval_s
        self._stop = stop
        self._revision = store.revision()
        self._requested = threading.Event()
        self._pending: tuple[HookSet, int | None] | None = None
        self._lock = threading.Lock()

    @property
    def revision(self) -> int | None:
        """The store's revision when this watcher started (what the daemon's first load includes)."""
        return self._revision

    def start(self) -> None:
        threading.Thread(target=self._run, name="store-watcher", daemon=True).start()

    def request(self) -> None:
        """Reload soon, whatever the revision says (SIGHUP; safe from a signal handler)."""
        self._requested.set()

    def take(self) -> tuple[HookSet, int | None] | None:
        """A freshly loaded hook set not yet swapped in, with the revision it includes (main thread)."""
        with self._lock:
            loaded, self._pending = self._pending, None
        return loaded

    def _run(self) -> None:
        outage = False
        wait_s = self._poll_s if self._revision is not None else _IDLE_WAIT_S
        while not self._stop.is_set():
            requested = self._requested.wait(wait_s)
            if self._stop.is_set():
                return
            self._requested.clear()
            if self._revision is not None:
                try:
                    revision = self._store.revision()
                except StoreError as exc:
                    if not outage:
                        log.error("subscriptions.unavailable", source=self._store.describe(), error=str(exc))
                    outage = True
                    continue
                if outage:
                    log.info("subscriptions.available", source=self._store.describe())
                    outage = False
                if revision == self._revision and not requested:
                    continue
                self._revision = revision
            elif not requested:
                continue
            self._load()

    def _load(self) -> None:
        revision = self._revision  # read before loading: the load includes at least this revision
        try:
            hooks = self._store.load()
        except (ConfigError, StoreError) as exc:
            problems = list(getattr(exc, "problems", ())) or [str(exc)]
            log.error("subscriptions.reload_failed", source=self._store.describe(), problems=problems)
            return
        mask_secrets(hooks)
        with self._lock:
            self._pending = (hooks, revision)


def mask_secrets(hooks: HookSet) -> None:
    """Every spelling of every hook's credentials is masked in log lines from now on."""
    logs.register_secrets(value for hook in hooks for value in hook.sensitive_values())
