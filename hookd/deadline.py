"""A wall-clock deadline for HTTP attempts.

requests' timeouts bound each socket operation, not the whole exchange: a receiver that trickles one
byte a second never trips them. One watchdog thread keeps a heap of (deadline, attempt) and shuts the
attempt's socket down when its time is up, which makes the blocked read return at once. Arming and
disarming an attempt is a heap push and a flag under one lock: cheap enough for every attempt.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time


class Watch:
    """One attempt's deadline; `sock` is set once a connection is bound to it."""

    __slots__ = ("deadline", "done", "fired", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.done = False
        self.fired = False

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class Watchdog:
    """Shuts down the sockets of attempts that outlive their deadline."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, timeout_s: float) -> Watch:
        watch = Watch(time.monotonic() + timeout_s)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="attempt-watchdog", daemon=True)
                self._thread.start()
            first = not self._heap or watch.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (watch.deadline, next(self._seq), watch))
            if first:
                self._lock.notify()
        return watch

    def bind(self, watch: Watch, sock: socket.socket | None) -> None:
        """Attach the connection's socket; a deadline already past cuts it at once."""
        with self._lock:
            watch.sock = sock
            if not watch.done and time.monotonic() >= watch.deadline:
                self._cut(watch)

    def disarm(self, watch: Watch) -> bool:
        """Mark the attempt finished (before its connection goes back to the pool); True if it fired."""
        with self._lock:
            watch.done = True
            watch.sock = None
            return watch.fired

    def _cut(self, watch: Watch) -> None:
        watch.fired = True
        if watch.sock is not None:
            with contextlib.suppress(OSError):
                watch.sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        with self._lock:
            while True:
                while not self._heap:
                    self._lock.wait()
                deadline, _, watch = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._lock.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if not watch.done:
                    self._cut(watch)
