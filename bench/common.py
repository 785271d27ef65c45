"""Shared pieces of the benchmark: event bodies, delivery headers, hooks, process accounting.

The naive baseline and the raw HTTP ceiling send exactly what hookd sends: the event body byte for
byte, and the same headers (hookd's `signature_headers`: hex HMAC-SHA256 plus the Standard Webhooks
three), so the comparison is about the machinery around the POST, not the POST itself.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hookd import __version__
from hookd.messages import delivery_id
from hookd.signing import signature_headers

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = json.loads((ROOT / "config/samples/job.json").read_text())
EVENT = "job.completed"
ACCOUNT = "acme"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class BenchHook:
    id: str
    url: str
    secret: str

    def public(self) -> dict[str, Any]:
        return asdict(self)


#: Distinct receiving hosts the receiver listens on (bench/receiver.py --aliases).
ALIASES = 1000


def host_alias(index: int) -> str:
    """Distinct receiving host number `index` (bench/receiver.py listens on each)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def make_hooks(
    port: int, count: int, *, mode: str = "fast", delay_ms: int = 0, hanging: int = 0, distinct_hosts: bool = False
) -> list[BenchHook]:
    """`count` hooks of one account on the receiver; the last `hanging` of them never answer. With
    `distinct_hosts`, every hook has a receiving host of its own (a loopback alias)."""
    if distinct_hosts and count > ALIASES:
        raise ValueError(f"at most {ALIASES} distinct hosts")
    hooks = []
    for index in range(count):
        if index >= count - hanging:
            path = f"/hang/h{index}"
        elif mode == "slow":
            path = f"/slow/{delay_ms}/h{index}"
        else:
            path = f"/fast/h{index}"
        host = host_alias(index) if distinct_hosts else "127.0.0.1"
        url = f"http://{host}:{port}{path}"
        hooks.append(BenchHook(id=f"h{index}", url=url, secret=f"bench-secret-{index:04d}"))
    return hooks


def event_body(seq: int, published_at: float | None = None) -> bytes:
    """A realistic job body (config/samples/job.json) that starts with its publish time.

    `{"t":<unix seconds>,` comes first so the receiver can read it without parsing JSON.
    """
    stamp = time.time() if published_at is None else published_at
    rest = json.dumps({"seq": seq, **SAMPLE}, separators=(",", ":"))
    return b'{"t":' + repr(stamp).encode() + b"," + rest[1:].encode()


def delivery_headers(hook: BenchHook, event_id: str, body: bytes) -> dict[str, str]:
    """The headers of a first attempt, as hookd builds them (hookd/delivery/sender.py)."""
    did = delivery_id(event_id, hook.id)
    return {
        "Content-Type": "application/json",
        "User-Agent": f"hookd/{__version__}",
        "X-Hook-Event": EVENT,
        "X-Hook-ID": hook.id,
        "X-Hook-Delivery": did,
        "X-Hook-Attempt": "1",
        **signature_headers((hook.secret,), did, body),
    }


def new_event_id() -> str:
    return str(uuid.uuid4())


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (every thread), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
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
    """VmHWM (peak resident set) of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return float("nan")
