"""Operational notifications: `hook.failing`, `hook.disabled` and `hook.recovered`, sent by hookd itself.

When a hook's circuit opens, when hookd disables a hook (410, or failing for
`delivery.disable_after_s`), and when a failing hook delivers again or a disabled one is enabled
again, hookd publishes a notice to its own events exchange, for the account's hooks that subscribe to
the `hook` group (never to the hook the notice is about: `dispatch`'s `subject` rule); it then
travels the normal delivery path, signed and retried like any event. Its body is the hook's resource
(never its secret) under `hook`, with `reason`, `since`, `last_status`, `last_error` and `attempts`.

Once per period, across restarts and workers: the notice state of each hook lives in the state
database (`state.notices`), and a notice is queued in the same transaction that moves the state, a
compare-and-set, so one worker wins; its event id (event, hook, start of the period) is the same on
every worker, so even a notice published twice reaches receivers under one delivery id.

Threads: the engine's loop reports attempts (`opened`, `delivered`), the main thread disabling and
reloads (`disabled`, `reloaded`); a thread of this module's own (`notifier`) talks to the database;
the main thread publishes what it claimed (`publish_ready`), and its confirms come back here.
Ownership: `_requests` and `_confirmed` are thread-safe queues; `_failing` and `_disabled` are
replaced whole by the notifier thread and only read elsewhere; `_hooks` is replaced whole by the main
thread (`reloaded`) and read by the notifier thread; `_recovering` is changed by the loop and the
notifier thread, under `_lock`; `_ready` is filled by the notifier thread and emptied by the main
thread (a deque: append and popleft are thread-safe).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from hookd import logs
from hookd.broker import Connection, Outgoing
from hookd.daemon.breaker import Change
from hookd.errors import StoreError
from hookd.events import HOOK_DISABLED, HOOK_FAILING, HOOK_RECOVERED
from hookd.resource import hook_resource, iso_time
from hookd.retry import Attempt
from hookd.state import notices
from hookd.state.db import Database
from hookd.subscriptions.hookset import HookSet

log = logs.get_logger("hookd.worker")
_POLL_S = 1.0
_LEASE_S = 30.0


@dataclass(frozen=True, slots=True)
class _Notice:
    """A state change to make (and announce), as the thread that saw it reported it."""

    event: str
    hook_id: str
    reason: str
    since: datetime
    last_status: int | None = None
    last_error: str | None = None
    attempts: int = 0


class Notifier:
    """Decides, records and hands out operational notices (see the module docstring)."""

    def __init__(self, db: Database, *, exchange: str, poll_interval_s: float = _POLL_S) -> None:
        self._db = db
        self._exchange = exchange
        self._poll_s = poll_interval_s
        self._requests: queue.SimpleQueue[_Notice | None] = queue.SimpleQueue()
        self._confirmed: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._ready: deque[notices.Pending] = deque()  # claimed, for the main thread to publish
        self._hooks = HookSet()
        self._failing: frozenset[str] = frozenset()  # read by the engine on every success
        self._disabled: dict[str, datetime] = {}  # hook id -> since when it is disabled
        self._lock = threading.Lock()  # guards `_recovering`
        self._recovering: set[str] = set()  # asked to recover already (the engine asks once)
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._stop = threading.Event()

    def start(self) -> None:
        self._refresh()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._requests.put(None)
        self._thread.join(5)

    # -- what the other threads report -----------------------------------------------------------
    def reloaded(self, hooks: HookSet, disabled_here: Collection[str] = ()) -> None:
        """The hooks in use (main thread, at start and on every reload). A hook hookd disabled that is
        active again, and was changed after that, was enabled by its admin: it recovered. (Not while
        this worker still holds it disabled, `disabled_here`, nor while the store has yet to record
        the disable: a database hook's `updated_at` must be later than the disable.)"""
        self._hooks = hooks
        now = datetime.now(UTC)
        for hook_id, since in list(self._disabled.items()):
            hook = hooks.get(hook_id)
            if hook is None or not hook.active or hook_id in disabled_here:
                continue
            if hook.updated_at is None or hook.updated_at > since:
                self._requests.put(_Notice(HOOK_RECOVERED, hook_id, "enabled", now))

    def opened(self, hook_id: str, change: Change, last: Attempt) -> None:
        """A hook's circuit opened (engine thread)."""
        since = datetime.fromtimestamp(change.failing_since, UTC) if change.failing_since else datetime.now(UTC)
        self._requests.put(
            _Notice(HOOK_FAILING, hook_id, "circuit_open", since, last.status, last.error, change.failures)
        )

    def delivered(self, hook_id: str) -> None:
        """A delivery to the hook succeeded (engine thread; a set lookup unless the hook was failing)."""
        if hook_id not in self._failing:
            return
        with self._lock:
            if hook_id in self._recovering:
                return
            self._recovering.add(hook_id)
        self._requests.put(_Notice(HOOK_RECOVERED, hook_id, "delivered", datetime.now(UTC)))

    def disabled(self, hook_id: str, reason: str, last: Attempt | None, failures: int = 0) -> None:
        """hookd disabled the hook (main thread)."""
        status, error = (last.status, last.error) if last is not None else (None, None)
        self._requests.put(_Notice(HOOK_DISABLED, hook_id, reason, datetime.now(UTC), status, error, failures))

    # -- publishing (main thread) -----------------------------------------------------------------
    def publish_ready(self, conn: Connection) -> None:
        """Publish the claimed notices on the main thread's connection; each leaves the outbox when the
        broker confirms it (a lost connection leaves it there: its lease lapses, it goes out again)."""
        while self._ready:
            pending = self._ready.popleft()
            message = Outgoing(
                pending.event,
                pending.body,
                {"account_id": pending.account_id},
                pending.event_id,
                datetime.now(UTC),
                exchange=self._exchange,
            )
            conn.publish_pipelined(message, lambda row=pending.id: self._confirmed.put(row))  # type: ignore[misc]

    # -- the notifier's thread --------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                request = self._requests.get(timeout=self._poll_s)
            except queue.Empty:
                request = None
            try:
                if request is not None:
                    self._apply(request)
                self._drain_confirmed()
                if not self._ready:
                    self._ready.extend(notices.claim(self._db, lease_s=_LEASE_S))
                if request is None:
                    self._refresh()
            except StoreError as exc:  # the state database is down: notices wait in the outbox
                log.warning("notices.unavailable", error=str(exc))

    def _apply(self, notice: _Notice) -> None:
        hook = self._hooks.get(notice.hook_id)
        if hook is None:
            return
        allowed: tuple[str | None, ...]
        if notice.event == HOOK_FAILING:
            to, allowed = notices.FAILING, (None, notices.OK)
        elif notice.event == HOOK_DISABLED:
            to, allowed = notices.DISABLED, (None, notices.OK, notices.FAILING)
        else:
            to, allowed = notices.OK, (notices.FAILING, notices.DISABLED)
        if notice.event == HOOK_DISABLED:
            hook = dataclasses.replace(hook, active=False)  # what the store says once the disable lands
        body = {
            "hook": hook_resource(hook),
            "reason": notice.reason,
            "since": iso_time(notice.since),
            "last_status": notice.last_status,
            "last_error": notice.last_error,
            "attempts": notice.attempts,
        }
        event_id = f"{notice.event}:{hook.id}:{iso_time(notice.since)}"
        encoded = json.dumps(body, separators=(",", ":")).encode()
        sent = notices.transition(
            self._db,
            hook.id,
            to=to,
            allowed_from=allowed,
            reason=notice.reason,
            since=notice.since,
            notice=(notice.event, event_id, hook.account_id, encoded),
        )
        if sent:
            log.info("notice.queued", _event=notice.event, hook_id=hook.id, reason=notice.reason, event_id=event_id)
            self._refresh()

    def _refresh(self) -> None:
        """Which hooks are failing or disabled now, by the database (other workers write it too)."""
        found = notices.states(self._db)
        self._failing = frozenset(h for h, s in found.items() if s.state == notices.FAILING)
        self._disabled = {h: s.since for h, s in found.items() if s.state == notices.DISABLED}
        with self._lock:
            self._recovering.intersection_update(self._failing)

    def _drain_confirmed(self) -> None:
        done: list[int] = []
        while True:
            try:
                done.append(self._confirmed.get_nowait())
            except queue.Empty:
                break
        notices.remove(self._db, done)
