"""Worker heartbeats in the state database: which `hookd run` consumes what, through which broker node.

Why in the database: `hookd status` must say which workers consume each queue on which node, and
AMQP answers only how many consumers a queue has (the management plugin, which knows more, is not
assumed). Every worker already shares the state database, so each writes one row of
`hookd_workers` (migration 7) every `HEARTBEAT_S` from a thread of its own, `heartbeat`, never from
the main thread or the event loop: a slow database delays a heartbeat, never a delivery.

Threads: the main thread reports what it does (`connected`, `disconnected`) into a `_Presence` under
its lock; the heartbeat thread reads it, writes the row, and on the way reads the hooks the database
holds disabled (`hookd_hook_notices`, every worker's disables) for the `hookd_hook_disabled` gauge.
A clean stop marks the row stopped; a row that stops being seen without that is a worker that died.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookd import logs
from hookd.errors import StoreError
from hookd.state import notices
from hookd.state.db import Database, parse_utc

log = logs.get_logger("hookd.worker")

#: How often a worker writes its row.
HEARTBEAT_S = 5.0
#: A worker not seen for this long (and not stopped) is taken for dead by `hookd status`.
LOST_AFTER_S = 3 * HEARTBEAT_S
#: Rows not seen for this long are deleted by the live workers (a dead worker's row goes too).
FORGET_AFTER = timedelta(days=1)

_UPSERT = (
    "INSERT INTO hookd_workers (worker_id, host, pid, node, queues, started_at, last_seen, stopped_at,"
    " history_dropped) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)"
    " ON CONFLICT (worker_id) DO UPDATE SET node = excluded.node, queues = excluded.queues,"
    " last_seen = excluded.last_seen, stopped_at = NULL, history_dropped = excluded.history_dropped"
)


@dataclass(frozen=True, slots=True)
class Worker:
    """One row of `hookd_workers`."""

    worker_id: str
    host: str
    pid: int
    node: str | None
    queues: tuple[str, ...]
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    history_dropped: int

    def lost(self, now: datetime) -> bool:
        """Not stopped cleanly and not seen for `LOST_AFTER_S`: it died or hangs."""
        return self.stopped_at is None and now - self.last_seen > timedelta(seconds=LOST_AFTER_S)


def workers(db: Database) -> list[Worker]:
    """Every worker row, most recently started first."""
    with db.transaction() as tx:
        rows = tx.fetchdicts(
            "SELECT worker_id, host, pid, node, queues, started_at, last_seen, stopped_at, history_dropped"
            " FROM hookd_workers ORDER BY started_at DESC, worker_id"
        )
    return [
        Worker(
            worker_id=str(r["worker_id"]),
            host=str(r["host"]),
            pid=int(r["pid"]),
            node=r["node"] or None,
            queues=tuple(q for q in str(r["queues"] or "").split(",") if q),
            started_at=parse_utc(r["started_at"]),
            last_seen=parse_utc(r["last_seen"]),
            stopped_at=None if r["stopped_at"] is None else parse_utc(r["stopped_at"]),
            history_dropped=int(r["history_dropped"]),
        )
        for r in rows
    ]


class _Presence:
    """What the main thread says it is doing, read by the heartbeat thread (its lock guards both)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._node: str | None = None
        self._queues: tuple[str, ...] = ()

    def set(self, node: str | None, queues: Sequence[str]) -> None:
        with self._lock:
            self._node, self._queues = node, tuple(queues)

    def get(self) -> tuple[str | None, tuple[str, ...]]:
        with self._lock:
            return self._node, self._queues


class Heartbeat:
    """Writes this worker's row every `interval_s` on the `heartbeat` thread (see the module docstring).

    `dropped` reads the history writer's drop count (an int read: no lock needed); the callable given
    to `start` receives the hook ids the state database holds disabled after every beat (the
    metrics' `hooks_disabled`).
    """

    def __init__(
        self, db: Database, *, dropped: Callable[[], int] = lambda: 0, interval_s: float = HEARTBEAT_S
    ) -> None:
        self._db = db
        self._dropped = dropped
        self._on_disabled: Callable[[Iterable[str]], None] = lambda _ids: None
        self._interval_s = interval_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._started = datetime.now(UTC)
        self._presence = _Presence()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._failing = False

    # -- the main thread's reports -------------------------------------------------------------------
    def connected(self, node: str, queues: Sequence[str]) -> None:
        """Consuming `queues` through broker node `node` (host:port)."""
        self._presence.set(node, queues)

    def disconnected(self) -> None:
        """Not consuming (the connection was lost, or the drain began)."""
        self._presence.set(None, ())

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, on_disabled: Callable[[Iterable[str]], None] | None = None) -> None:
        if on_disabled is not None:
            self._on_disabled = on_disabled
        self._thread.start()

    def close(self) -> None:
        """Stop the thread, then mark the row stopped (a clean stop is not a lost worker)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "UPDATE hookd_workers SET stopped_at = ?, node = NULL, queues = '', history_dropped = ?"
                    " WHERE worker_id = ?",
                    (datetime.now(UTC), self._dropped(), self.worker_id),
                )
        except StoreError as exc:
            log.warning("heartbeat.failed", error=str(exc))

    def _run(self) -> None:
        while True:  # the first beat happens even when a stop comes at once: the row always exists
            self.beat()
            if self._stop.wait(self._interval_s):
                return

    def beat(self) -> None:
        """Write the row once and refresh the disabled hooks (the thread's loop body; tests call it)."""
        node, queues = self._presence.get()
        now = datetime.now(UTC)
        try:
            with self._db.transaction(write=True) as tx:
                row = (self.worker_id, socket.gethostname(), os.getpid(), node, ",".join(queues), self._started)
                tx.execute(_UPSERT, (*row, now, self._dropped()))
                tx.execute("DELETE FROM hookd_workers WHERE last_seen < ?", (now - FORGET_AFTER,))
            disabled = [h for h, s in notices.states(self._db).items() if s.state == notices.DISABLED]
        except StoreError as exc:
            if not self._failing:  # once per outage, not every beat
                log.warning("heartbeat.failed", error=str(exc))
            self._failing = True
            return
        self._failing = False
        self._on_disabled(disabled)
