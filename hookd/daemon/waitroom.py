"""The ordering state's thread: the state database work of ordered delivery, off the main thread.

The main thread (`Sequencer`) submits jobs (store waiting deliveries, mark a head away, delete ended
ones, read a partition's chains or one stored delivery) with a continuation; this thread runs them in
submission order and hands the results back through a queue, waking the main thread with the
connection's `wake()` (as the delivery engine does), which runs the continuations. The main thread
never waits on the database. Unlike history, nothing here may be dropped: a job that fails (the
database is down, a failover) is tried again, with a growing pause, until it succeeds or the daemon
stops; meanwhile the deliveries that wait on it wait (`ordering.store_unavailable`, logged once per
outage). Consecutive writes are committed together (one transaction per batch).

Threads: `submit`, `attach`, `finished` and `pending` are the main thread's; `_jobs` and `_done` are
thread-safe queues; `_wake` (the connection to wake) is replaced whole by the main thread and read by
this thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hookd import logs
from hookd.errors import StoreError
from hookd.state.db import Database

log = logs.get_logger("hookd.ordering")
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0

#: Runs the job's work on the store thread: the database in, a result out.
Work = Callable[[Database], Any]
#: Runs on the main thread with the work's result.
Then = Callable[[Any], None]
#: Wakes the main thread: `Connection.wake`.
Wake = Callable[[Callable[[], None]], bool]


@dataclass(frozen=True, slots=True)
class _Job:
    work: Work
    then: Then


class WaitRoom:
    """A thread of its own doing the ordering state's database work (see the module docstring)."""

    def __init__(self, db: Database, *, stop: threading.Event, on_results: Callable[[], None]) -> None:
        self._db = db
        self._stop = stop
        self._on_results = on_results
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[Then, Any]] = queue.SimpleQueue()
        self._pending = 0  # the main thread's: submitted, continuation not run yet
        self._wake: Wake | None = None
        self.available = True  # written by the store thread (a bool, replaced whole): the last job worked
        self._thread = threading.Thread(target=self._run, name="ordering-store", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the jobs already submitted (or at once if the database stays down)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout_s)

    def attach(self, wake: Wake | None) -> None:
        """The connection whose `wake` announces results (None while reconnecting: the main loop's
        next turn takes them)."""
        self._wake = wake

    def submit(self, work: Work, then: Then) -> None:
        """Run `work(db)` on the store thread, then `then(result)` on the main thread."""
        self._pending += 1
        self._jobs.put(_Job(work, then))

    @property
    def pending(self) -> int:
        """Jobs whose continuation has not run yet."""
        return self._pending

    def finished(self) -> None:
        """Run the continuations of finished jobs, in submission order (main thread)."""
        while True:
            try:
                then, result = self._done.get_nowait()
            except queue.Empty:
                return
            self._pending -= 1
            then(result)

    # -- the store thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            result = self._do(job.work)
            if result is _STOPPED:
                return
            self._done.put((job.then, result))
            wake = self._wake
            if wake is not None:
                wake(self._on_results)

    def _do(self, work: Work) -> Any:
        pause = _RETRY_FIRST_S
        outage = False
        while True:
            try:
                result = work(self._db)
            except StoreError as exc:
                if not outage:
                    log.error("ordering.store_unavailable", error=str(exc))
                outage = True
                self.available = False
                if self._stop.wait(pause):
                    return _STOPPED
                pause = min(pause * 2, _RETRY_MAX_S)
                continue
            if outage:
                log.info("ordering.store_available")
            self.available = True
            return result


_STOPPED = object()
