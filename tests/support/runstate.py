"""One test run's shared state: how pytest-xdist's workers share one private server instead of one each.

A run is the root pytest process and, under `pytest -n N`, its N workers (separate processes). The
root makes a directory for the run and names it in `HOOKD_TEST_RUN_DIR`, which the workers inherit
(xdist starts them after `pytest_configure`). In it, per service, a lock file and a JSON record:
the first process that needs the service takes the lock, decides (the configured server, or a
private one it starts, or "unavailable" with the one-line reason), and writes the record; every
other process, waiting on the same lock, reads the record and follows it. So one decision and at
most one private server per run, whichever worker asks first, and a refusal (a missing package)
costs one attempt per run.

Who stops a private server: the root, when the whole run is over (its `pytest_sessionfinish` runs
after every worker has finished its tests and its teardown). A worker that started one cannot stop
it at its own end, since other workers may still be using it; it records the server's pid with
the pid's start time (from /proc), and the root stops that process group by pid, having checked
that the pid still names the process the run started (a pid can be reused). Without xdist the root
is the only process, started the server itself, and stops it through its handle.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_DIR_ENV = "HOOKD_TEST_RUN_DIR"
_owned: list[Path] = []  # the run directory, when this process is the run's root (made it)


def begin(*, worker: bool) -> None:
    """Join the run: a worker uses its root's directory; the root makes a fresh one and names it."""
    if worker and os.environ.get(RUN_DIR_ENV):
        return
    _owned[:] = [Path(tempfile.mkdtemp(prefix="hookd-testrun-"))]
    os.environ[RUN_DIR_ENV] = str(_owned[0])


def is_root() -> bool:
    """True in the process that made the run's directory (the one that stops what the run started)."""
    return bool(_owned)


def end() -> None:
    """Delete the run's directory (the root, once every private server is stopped)."""
    for directory in _owned:
        shutil.rmtree(directory, ignore_errors=True)
    _owned.clear()


def _directory() -> Path:
    where = os.environ.get(RUN_DIR_ENV)
    if not where:  # imported outside a pytest run (a script): a run of one process
        begin(worker=False)
        where = os.environ[RUN_DIR_ENV]
    return Path(where)


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold the run's lock for `name` (an flock: across the run's processes, and its threads too,
    since each call opens the file anew)."""
    with (_directory() / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read(name: str) -> dict[str, Any] | None:
    """The run's record for `name`, or None when nobody decided yet (read under `locked(name)`)."""
    try:
        text = (_directory() / f"{name}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    record: dict[str, Any] = json.loads(text)
    return record


def write(name: str, record: dict[str, Any]) -> None:
    """Record the decision for `name` (atomically: a reader sees the old file or the whole new one)."""
    path = _directory() / f"{name}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(temporary, path)


def records() -> dict[str, dict[str, Any]]:
    """Every record of the run, by name."""
    found = {}
    for path in sorted(_directory().glob("*.json")):
        found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return found


# -- the processes a run started -------------------------------------------------------------------
@dataclass(frozen=True)
class Started:
    """A server process the run started, as another process of the run can name it safely: its pid
    (the leader of its own process group) and the pid's start time in clock ticks since boot."""

    pid: int
    ticks: int

    @classmethod
    def of(cls, pid: int) -> Started:
        ticks = _start_ticks(pid)
        if ticks is None:
            raise ProcessLookupError(pid)
        return cls(pid, ticks)

    def as_record(self) -> dict[str, int]:
        return {"pid": self.pid, "ticks": self.ticks}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Started:
        return cls(int(record["pid"]), int(record["ticks"]))

    def alive(self) -> bool:
        """The pid still names the process we started (not a later one that reuses the number)."""
        return _start_ticks(self.pid) == self.ticks

    def stop(self, sig: signal.Signals, grace_s: float = 30.0) -> None:
        """`sig` to the leader (its clean stop), then SIGKILL to the group if any of it is left after
        `grace_s`; returns once no live process is left in the group. Nothing is sent to a process
        that is not ours: a leader that is gone, or whose pid now names another process."""
        if not self.alive():
            self._kill_rest()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        deadline = time.monotonic() + grace_s
        while _members(self.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._kill_rest()

    def _kill_rest(self) -> None:
        # A group outlives its leader while members remain; they are ours by the group id only while
        # the leader's pid has not been reused (then the group id could be another's: leave it).
        if _start_ticks(self.pid) not in (None, self.ticks):
            return
        if _members(self.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while _members(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state is [0], pgrp [2], starttime [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if no live process has it (a zombie is
    not live: it has finished, only its parent has not reaped it, which for an orphan may be never)."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _members(pgid: int) -> list[int]:
    """The live processes (zombies excluded) of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members
