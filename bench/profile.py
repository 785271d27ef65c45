"""`--profile`: hookd under py-spy on the fast row, summarised per thread and per function.

py-spy records `--gil --threads --nonblocking` at `RATE_HZ`: only the thread holding the GIL is
sampled, so a sample is a slice of the Python time that limits a process's deliveries per second,
not of waiting. Samples become microseconds per delivery: samples / rate / deliveries. Start-up
(imports) is counted apart. The raw collapsed stacks stay in the profile folder for flame graphs
(`flamegraph.pl`, speedscope).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

RATE_HZ = 400
_THREAD = re.compile(r"^thread \((\d+)\)(?:: (.*))?$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
_THREADING_FRAMES = ("Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run")
_STARTUP_FRAMES = ("_find_and_load",)


def py_spy() -> str | None:
    """The py-spy executable (PyPI's py-spy, in the bench's environment or on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_command(spy: str, out: Path, command: list[str]) -> list[str]:
    options = ["--format", "raw", "--threads", "--gil", "--nonblocking", "--rate", str(RATE_HZ), "-o", str(out)]
    return [spy, "record", *options, "--", *command]


def _component(function: str) -> str:
    """Where a function lives: its module for hookd's own code, its top-level package otherwise
    (`structlog`, `pika`, `asyncio`, `json`...)."""
    match = _FRAME.match(function)
    path = match.group(2) if match else function
    if path.startswith("hookd/"):
        return path
    if path == "<string>":
        return "<string> (generated: dataclass __init__)"
    return path.split("/")[0].removesuffix(".py") or path


def _function(frame: str) -> str:
    """`name (file:line)` -> `name (file)`: a function, whatever line it was on."""
    match = _FRAME.match(frame)
    return f"{match.group(1)} ({match.group(2)})" if match else frame


@dataclass
class Profile:
    samples: int = 0
    startup: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    self_time: Counter[tuple[str, str]] = field(default_factory=Counter)  # (function, thread)
    inclusive: Counter[str] = field(default_factory=Counter)  # hookd's own functions, caller time included


def parse(collapsed: str) -> Profile:
    """Read py-spy's raw (collapsed) output: `thread (tid): name;frame;...;leaf count` per line."""
    prof = Profile()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        if match := _THREAD.match(frames[0]):
            thread = match.group(2) or f"thread {match.group(1)}"
            frames = frames[1:]
        prof.samples += count
        if any(f.startswith(_STARTUP_FRAMES) for f in frames):
            prof.startup += count
            continue
        prof.threads[thread] += count
        if frames:
            prof.self_time[(_function(frames[-1]), thread)] += count
        for function in {_function(f) for f in frames if "(hookd/" in f and not f.startswith(_THREADING_FRAMES)}:
            prof.inclusive[function] += count
    return prof


def merge(profiles: list[Profile]) -> Profile:
    total = Profile()
    for prof in profiles:
        total.samples += prof.samples
        total.startup += prof.startup
        total.threads.update(prof.threads)
        total.self_time.update(prof.self_time)
        total.inclusive.update(prof.inclusive)
    return total


def table(prof: Profile, deliveries: int, *, top: int = 25) -> str:
    """The per-thread and per-function tables, in microseconds of GIL time per delivery."""
    if deliveries <= 0 or prof.samples == 0:
        return "profile: no samples or no deliveries"

    def us(count: int) -> str:
        return f"{count / RATE_HZ / deliveries * 1e6:8.1f}"

    steady = prof.samples - prof.startup
    lines = [
        f"profile: {prof.samples} samples at {RATE_HZ} Hz of the thread holding the GIL, {deliveries} deliveries; "
        f"start-up (imports) {prof.startup} samples, left out",
        f"total: {us(steady).strip()} us of GIL time per delivery",
        "",
        f"{'thread':<40}{'share':>8}{'us/deliv':>10}",
    ]
    for thread, count in prof.threads.most_common():
        lines.append(f"{thread[:39]:<40}{count / steady:>8.1%}{us(count):>10}")
    lines += ["", f"{'component (self time: hookd modules, other packages)':<72}{'share':>8}{'us/deliv':>10}"]
    components: Counter[str] = Counter()
    for (function, _), count in prof.self_time.items():
        components[_component(function)] += count
    for component, count in components.most_common(top):
        lines.append(f"{component[:71]:<72}{count / steady:>8.1%}{us(count):>10}")
    lines += ["", f"{'function (self time)':<72}{'share':>8}{'us/deliv':>10}  thread"]
    for (function, thread), count in prof.self_time.most_common(top):
        lines.append(f"{function[:71]:<72}{count / steady:>8.1%}{us(count):>10}  {thread[:24]}")
    lines += ["", f"{'hookd function (with what it calls)':<72}{'share':>8}{'us/deliv':>10}"]
    for function, count in prof.inclusive.most_common(top):
        lines.append(f"{function[:71]:<72}{count / steady:>8.1%}{us(count):>10}")
    return "\n".join(lines)
