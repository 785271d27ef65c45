"""A wall-clock deadline for HTTP attempts.

Socket timeouts bound each socket operation, not the whole exchange: a receiver that trickles one
byte a second never trips them. One watchdog thread shuts an attempt's socket down when its time is
up, which makes the blocked read return at once.

Arming happens on every attempt at 1,000s per second from dozens of threads, so it takes no shared
lock: each delivery thread reuses one `Watch` slot and arming is a few attribute writes. The watchdog
sleeps until the nearest deadline among the armed slots and scans them (one per delivery thread).
A slot's own lock, contended only by its thread and the watchdog, orders a cut against disarming.

Connections outlive attempts (keep-alive), and urllib3 hands a connection back to its pool the moment
a body is read to its end, which is a little before that attempt is disarmed. So a connection records
which attempt owns it, and the next attempt to bind it takes it over under the previous owner's lock:
an earlier attempt's deadline can never cut a later attempt's request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Protocol

_OWNER = "_hookd_watch"  # attribute set on a connection object: the Watch that currently owns it
_IDLE_S = 0.25  # how long the watchdog sleeps when nothing is armed


class Connection(Protocol):
    """What the watchdog needs of a connection: its socket (None before connecting or once closed)."""

    sock: socket.socket | None


class Watch:
    """One delivery thread's attempt slot: the running attempt's deadline and connection."""

    __slots__ = ("conn", "deadline", "done", "fired", "lock")

    def __init__(self) -> None:
        self.deadline = 0.0
        self.conn: Any = None
        self.done = True
        self.fired = False
        self.lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class Watchdog:
    """Shuts down the sockets of attempts that outlive their deadline."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._slots: tuple[Watch, ...] = ()
        self._register = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self, timeout_s: float) -> Watch:
        """Start this thread's attempt; its deadline is `timeout_s` from now."""
        watch: Watch | None = getattr(self._local, "watch", None)
        if watch is None:
            watch = self._new_slot()
        watch.conn = None
        watch.fired = False
        watch.deadline = time.monotonic() + timeout_s
        watch.done = False  # last: the watchdog never sees an armed slot with a stale deadline
        return watch

    def _new_slot(self) -> Watch:
        watch = Watch()
        self._local.watch = watch
        with self._register:
            self._slots = (*self._slots, watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="attempt-watchdog", daemon=True)
                self._thread.start()
        self._wakeup.set()  # a first deadline the watchdog may be sleeping past
        return watch

    def bind(self, watch: Watch, conn: Connection) -> None:
        """The attempt uses `conn` now; a deadline already past cuts it at once."""
        previous: Watch | None = getattr(conn, _OWNER, None)
        if previous is not None and previous is not watch:
            with previous.lock:  # not while the previous owner's deadline is cutting it
                setattr(conn, _OWNER, watch)
        else:
            setattr(conn, _OWNER, watch)
        watch.conn = conn
        if time.monotonic() >= watch.deadline:
            self._cut(watch)

    def disarm(self, watch: Watch) -> bool:
        """Finish the attempt; True if its deadline fired."""
        with watch.lock:
            watch.done = True
            watch.conn = None
            return watch.fired

    def _cut(self, watch: Watch) -> None:
        with watch.lock:
            if watch.done or watch.fired or time.monotonic() < watch.deadline:
                return  # finished, already cut, or re-armed for a new attempt since it was looked at
            watch.fired = True
            conn = watch.conn
            if conn is None or getattr(conn, _OWNER, None) is not watch:
                return
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            nearest = now + _IDLE_S
            for watch in self._slots:
                if watch.done:
                    continue
                deadline = watch.deadline
                if deadline <= now:
                    self._cut(watch)
                elif deadline < nearest:
                    nearest = deadline
            # A later arm only adds later deadlines (one timeout per sender), except a first slot.
            self._wakeup.wait(max(0.0, nearest - time.monotonic()))
            self._wakeup.clear()
