"""Process accounting from /proc (CPU seconds, peak RSS) and stopping what the bench started, by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")

Procs = list[subprocess.Popen[bytes]]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (every thread), from /proc; NaN once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # fields 14 and 15 of stat(5)


def group_cpu(pgid: int) -> float:
    """utime + stime of every process in a process group (a private RabbitMQ node: its script and VM)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat(5): the process group
            total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def find_broker_pid() -> int | None:
    """The local RabbitMQ node's Erlang VM (beam.smp), to report the broker's share of the CPU."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MB; NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    """The direct children of `pid` (e.g. hookd under py-spy)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_for_child(pid: int, timeout_s: float = 10.0) -> int | None:
    """The first child of `pid` once it has one (py-spy starts hookd as its child)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := children(pid):
            return found[0]
        time.sleep(0.02)
    return None


def stop(procs: Sequence[subprocess.Popen[bytes]], *, grace_s: float = 3.0, via_child: bool = False) -> None:
    """SIGTERM each process (with `via_child`, its child instead: py-spy writes its profile and exits
    when the profiled process ends), then SIGKILL whatever is left after `grace_s`."""
    for proc in procs:
        if proc.poll() is None:
            targets = children(proc.pid) if via_child else [proc.pid]
            for pid in targets:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
