"""The one thread that talks to the hooks store: noticing changes, loading them, storing disables.

A database store is polled for its change revision every `subscriptions.poll_interval_s`; SIGHUP asks
for a reload of any store. Loading happens on this thread (a database query, a file read); the
result waits in `take()` for the main thread, which swaps it in at its next loop turn: the hooks and
the disabled set are changed by their one owner only (`Roster`). A revision counts as seen only once
its load succeeded: a load that fails (a PostgreSQL failover, a broken row) is tried again at the
next poll instead of being forgotten until the next edit. A broken source keeps the last good hooks
and says why (once per distinct failure); an unreachable database is logged once per outage.

An automatic disable (410 Gone, failing too long) is stored from here too (`deactivate`): one thread
writes to the store, and the revision its write produced goes back to the main thread with `take()`.
A hooks file is never written: its disables are kept in the state database (`hookd.state.disables`),
read again with every load of the file, and forgotten once the hook's entry changed.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from hookd import logs
from hookd.errors import ConfigError, StoreError
from hookd.state import disables
from hookd.state.db import Database
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import SubscriptionStore

log = logs.get_logger("hookd.worker")
_IDLE_WAIT_S = 1.0  # without a revision to poll: how often to look at the stop flag


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the watcher hands the main thread: a fresh hook set (and the revision it includes, and for
    a file the disables the state database keeps: hook id -> (fingerprint, reason), None when it could
    not be read), and the disables stored meanwhile (hook id -> the store's revision after the write)."""

    hooks: HookSet | None = None
    revision: int | None = None
    kept: dict[str, tuple[str, str]] | None = None
    written: dict[str, int] = field(default_factory=dict)


class Watcher:
    """The store's thread (see the module docstring); every method but `take` is safe from any thread."""

    def __init__(
        self,
        store: SubscriptionStore,
        *,
        poll_interval_s: float,
        stop: threading.Event,
        state: Database | None = None,
    ) -> None:
        self._store = store
        self._state = state  # where a file's disables are kept (None: nowhere, they end with the process)
        self._poll_s = poll_interval_s
        self._stop = stop
        self._revision = self._initial = store.revision()  # `_revision`: this thread's own once started
        self._wake = threading.Event()
        self._reloads = 0  # written by `request` (the main thread) only; this thread compares to `_seen`
        self._seen = 0
        self._deactivate: queue.SimpleQueue[tuple[Hook, str]] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the two hand-overs below
        self._pending: tuple[HookSet, int | None, dict[str, tuple[str, str]] | None] | None = None
        self._written: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)
        self._failure: tuple[int | None, tuple[str, ...]] | None = None

    @property
    def persisted(self) -> bool:
        """The store keeps disables in the hooks themselves (a database, with revisions)."""
        return self._initial is not None

    @property
    def revision(self) -> int | None:
        """The store's revision when this watcher was built (what the daemon's first load includes)."""
        return self._initial

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for the thread to end (after the daemon's stop event was set)."""
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def request(self) -> None:
        """Reload soon, whatever the revision says (SIGHUP: the main thread; safe from a signal handler)."""
        self._reloads += 1
        self._wake.set()

    def deactivate(self, hook: Hook, reason: str) -> None:
        """Store that hookd disabled this hook: inactive in a database (for every worker and the admin),
        kept in the state database for a file."""
        self._deactivate.put((hook, reason))
        self._wake.set()

    def take(self) -> Loaded | None:
        """What changed since the last call, or None (main thread)."""
        with self._lock:
            pending, self._pending = self._pending, None
            written, self._written = self._written, {}
        if pending is None and not written:
            return None
        if pending is None:
            return Loaded(written=written)
        hooks, revision, kept = pending
        return Loaded(hooks, revision, kept, written)

    def kept(self, hooks: HookSet) -> dict[str, tuple[str, str]] | None:
        """A file's disables still standing for `hooks`, from the state database (stale ones are
        forgotten there); None without a state database or when it cannot be read."""
        if self._state is None or self.persisted:
            return None
        try:
            found = disables.kept(self._state)
            stale = [
                hook_id
                for hook_id, (digest, _reason) in found.items()
                if (hook := hooks.get(hook_id)) is None or disables.fingerprint(hook) != digest
            ]
            disables.forget(self._state, stale)
        except StoreError as exc:
            log.warning("disables.unavailable", error=str(exc))
            return None
        return {hook_id: value for hook_id, value in found.items() if hook_id not in stale}

    def _run(self) -> None:
        outage = False
        wait_s = self._poll_s if self._revision is not None else _IDLE_WAIT_S
        while not self._stop.is_set():
            self._wake.wait(wait_s)
            if self._stop.is_set():
                return
            self._wake.clear()
            reloads = self._reloads
            requested, self._seen = reloads != self._seen, reloads
            self._store_disables()
            if self._revision is None:
                if requested:
                    self._load(None)
                continue
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
            if revision != self._revision or requested:
                self._load(revision)

    def _load(self, revision: int | None) -> None:
        """Load the hooks; `revision` (read before loading: the load includes at least it) becomes the
        revision seen only when the load succeeded, so a failed one is retried at the next poll."""
        try:
            hooks = self._store.load()
        except (ConfigError, StoreError) as exc:
            problems = tuple(getattr(exc, "problems", ())) or (str(exc),)
            if self._failure != (revision, problems):  # a retry failing the same way is not news
                log.error("subscriptions.reload_failed", source=self._store.describe(), problems=list(problems))
            self._failure = (revision, problems)
            return
        self._failure = None
        if revision is not None:
            self._revision = revision
        mask_secrets(hooks)
        kept = self.kept(hooks)
        with self._lock:
            self._pending = (hooks, revision, kept)

    def _store_disables(self) -> None:
        while True:
            try:
                hook, reason = self._deactivate.get_nowait()
            except queue.Empty:
                return
            try:
                if self.persisted:
                    if not self._store.deactivate(hook.id):
                        continue  # deleted meanwhile
                    written = self._store.revision() or 0
                elif self._state is not None:
                    disables.keep(self._state, hook, reason)
                    written = 0
                else:
                    continue
            except Exception as exc:  # the in-memory disable stands; say why it was not stored
                log.error("hook.disable_not_stored", hook_id=hook.id, error=str(exc))
                continue
            with self._lock:
                self._written[hook.id] = written


def mask_secrets(hooks: HookSet) -> None:
    """Every spelling of every hook's credentials is masked in log lines from now on."""
    logs.register_secrets(value for hook in hooks for value in hook.sensitive_values())
