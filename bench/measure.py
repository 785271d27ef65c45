"""Measuring one run: watch the receiver until the expected deliveries arrived, account every process.

The rate is timed at the receiver, from the first to the last receipt. CPU is counted from the first
receipt seen to the end (start-up excluded), per measured process, for the receiver and for the
broker; RSS is each measured process's peak. A run ends when every expected delivery arrived or its
window ended (a stall at the end then counts against the rate: deliveries / (end - first receipt)).
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.procs import cpu_seconds, peak_rss_mb
from bench.receiving import ReceiverProcess

_POLL_S = 0.05
FIRST_RECEIPT_TIMEOUT_S = 60.0


@dataclass
class Outcome:
    """One measured run: one contender in one scenario (a row of the table, before the targets)."""

    scenario: str
    contender: str
    processes: int
    expected: int
    deliveries: int
    seconds: float
    per_s: float
    complete: bool
    cpu_us_per_delivery: float | None = None
    peak_rss_mb: float | None = None
    process_cpu_pct: list[float] = field(default_factory=list)  # each measured process, % of one core
    receiver_cpu_pct: float | None = None
    broker_cpu_pct: float | None = None
    max_stall_s: float | None = None
    latency_ms: dict[str, float] | None = None
    jobs_out_of_order: int | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    ms = [x * 1000 for x in latencies_s]
    return {
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(max(ms), 1) if ms else float("nan"),
        "samples": len(ms),
    }


def _pct(used: float, seconds: float) -> float | None:
    if seconds <= 0 or math.isnan(used):
        return None
    return round(used / seconds * 100, 1)


@dataclass
class Watch:
    """What `watch` needs to know about a run besides its processes."""

    scenario: str
    contender: str
    cls: str  # the receiver's class of the deliveries counted
    expected: int
    max_window_s: float
    broker_cpu: Callable[[], float]
    measured_pids: list[int] | None = None  # default: the processes' own pids (hookd under py-spy: the child)


def watch(
    receiver: ReceiverProcess,
    procs: Sequence[subprocess.Popen[bytes]],
    spec: Watch,
    *,
    stop: Callable[[], None],
) -> Outcome:
    """Watch the receiver until `spec.expected` deliveries of `spec.cls` arrived, or the window
    passed since the first one; `stop` ends the processes once the figures are read."""
    pids = spec.measured_pids or [p.pid for p in procs]
    started = time.monotonic()
    first_seen: float | None = None
    cpu_first: list[float] = []
    rcv_first = brk_first = 0.0
    count = count_first = 0
    notes: list[str] = []
    while True:
        count = receiver.counts().get(spec.cls, 0)
        now = time.monotonic()
        if first_seen is None and count > 0:
            first_seen, count_first = now, count
            cpu_first = [cpu_seconds(p) for p in pids]
            rcv_first, brk_first = receiver.cpu(), spec.broker_cpu()
        if count >= spec.expected:
            break
        if first_seen is None and now - started > FIRST_RECEIPT_TIMEOUT_S:
            notes.append(f"no delivery within {FIRST_RECEIPT_TIMEOUT_S:g} s")
            break
        if first_seen is not None and now - first_seen > spec.max_window_s:
            notes.append(f"window of {spec.max_window_s:g} s ended with {count}/{spec.expected} delivered")
            break
        if any(p.poll() is not None for p in procs):
            notes.append("a measured process exited early")
            break
        time.sleep(_POLL_S)
    ended_wall, ended = time.time(), time.monotonic()
    cpu_end = [cpu_seconds(p) for p in pids]
    rcv_end, brk_end = receiver.cpu(), spec.broker_cpu()
    rss = max((peak_rss_mb(p) for p in pids), default=float("nan"))
    stats = receiver.stats()
    stop()
    mine = stats.get(spec.cls, {"count": 0, "first": ended_wall, "last": ended_wall, "latencies": []})
    n = int(mine["count"])
    complete = n >= spec.expected
    if complete and n > 1:
        seconds = float(mine["last"]) - float(mine["first"])
        per_s = (n - 1) / seconds if seconds > 0 else float("nan")
    else:  # a stall at the end counts against the rate
        seconds = ended_wall - float(mine["first"])
        per_s = n / seconds if seconds > 0 else 0.0
    window = ended - first_seen if first_seen is not None else 0.0
    used = [end - first for first, end in zip(cpu_first, cpu_end, strict=False)]
    delivered_in_window = count - count_first
    cpu_us = sum(used) / delivered_in_window * 1e6 if delivered_in_window > 0 and used else None
    outcome = Outcome(
        scenario=spec.scenario,
        contender=spec.contender,
        processes=len(procs),
        expected=spec.expected,
        deliveries=n,
        seconds=round(seconds, 3),
        per_s=round(per_s, 1),
        complete=complete,
        cpu_us_per_delivery=round(cpu_us, 1) if cpu_us is not None and not math.isnan(cpu_us) else None,
        peak_rss_mb=None if math.isnan(rss) else round(rss, 1),
        process_cpu_pct=[p for p in (_pct(u, window) for u in used) if p is not None],
        receiver_cpu_pct=_pct(rcv_end - rcv_first, window),
        broker_cpu_pct=_pct(brk_end - brk_first, window),
        max_stall_s=round(float(mine.get("max_gap_s", 0.0)), 3),
        notes=notes,
    )
    outcome.extra["latencies_s"] = mine.get("latencies", [])
    for other, other_stats in stats.items():
        if other != spec.cls:
            outcome.extra[f"{other}_received"] = int(other_stats.get("count", 0))
    return outcome
