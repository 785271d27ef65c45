"""`make bench`: hookd against a naive baseline and the raw HTTP ceiling, in one run, on one broker
and one receiver. See bench/README.md for the scenarios, the table and the targets.

    .venv/bin/python -m bench [--events 1000] [--hooks 10] [--only raw,fast,hang,...]

Not a test: nothing here asserts a time. Exit code 0 whatever the figures (1 only if the harness
itself could not run: broker unreachable, receiver not starting).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import yaml

from bench.common import (
    ACCOUNT,
    ALIASES,
    EVENT,
    ROOT,
    BenchHook,
    cpu_seconds,
    event_body,
    find_broker_pid,
    group_cpu,
    make_hooks,
    new_event_id,
    peak_rss_mb,
)
from hookd import __version__
from hookd.broker import BrokerConnection, Topology, topology_for
from hookd.config import Settings, load_settings

AMQP = os.environ.get("HOOKD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@dataclass
class Broker:
    """The broker a scenario runs on: the machine's node (AMQP), or a private cluster's nodes."""

    urls: list[str]
    cpu: Callable[[], float]  # CPU seconds the broker's processes used so far

    @property
    def url(self) -> str:
        """The node the harness itself declares, publishes and cleans up through."""
        return self.urls[0]


RESULTS = ROOT / "bench/results"
_POLL_S = 0.05
_FIRST_RECEIPT_TIMEOUT_S = 60.0


# -- the receiver ------------------------------------------------------------------------------------
class Receiver:
    """bench/receiver.py in its own process, driven over its control endpoints."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--aliases", str(ALIASES)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("the receiver did not start")
        self.port = int(line)

    def _get(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        self._get("/_reset", "POST")

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._get("/_count").items()}

    def stats(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._get("/_stats")
        return result

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- results -----------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One measured run: one contender (hookd, naive, raw) in one scenario."""

    scenario: str
    contender: str
    processes: int
    expected: int
    deliveries: int
    seconds: float
    per_s: float
    complete: bool
    cpu_s_per_1k: float | None = None
    peak_rss_mb: float | None = None
    receiver_cpu_pct: float | None = None
    broker_cpu_pct: float | None = None
    max_stall_s: float | None = None
    latency_ms: dict[str, float] | None = None
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


# -- the broker --------------------------------------------------------------------------------------
def declare(topology: Topology) -> None:
    conn = BrokerConnection(BROKER.url, topology, name="hookd bench")
    conn.connect(declare=True)
    conn.close()


def delete(topology: Topology) -> None:
    conn = BrokerConnection(BROKER.url, topology, name="hookd bench")
    conn.connect(declare=False)
    conn.delete_topology()
    conn.close()


def _properties(event_id: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type="application/json",
        message_id=event_id,
        headers={"account_id": ACCOUNT},
        timestamp=int(time.time()),
    )


def publish_backlog(topology: Topology, events: int, *, timeout_s: float = 300.0) -> float:
    """Publish `events` without per-message confirms, then wait until the broker holds them all.

    Returns the publishing rate (events/s). hookd's EventPublisher confirms every message (~1,000/s);
    for large backlogs a raw channel and a queue-depth check is much faster and just as certain.
    """
    connection = pika.BlockingConnection(pika.URLParameters(BROKER.url))
    channel = connection.channel()
    started = time.monotonic()
    for seq in range(events):
        channel.basic_publish(topology.exchange, EVENT, event_body(seq), _properties(new_event_id()))
        if seq % 2000 == 1999:
            connection.process_data_events(0)
    deadline = time.monotonic() + timeout_s
    while True:
        ready = channel.queue_declare(topology.events, passive=True).method.message_count
        if ready >= events:
            break
        if time.monotonic() > deadline:
            connection.close()
            raise RuntimeError(f"only {ready} of {events} events reached {topology.events}")
        connection.sleep(0.1)
    rate = events / (time.monotonic() - started)
    connection.close()
    return rate


def consumers_on(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(BROKER.url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        connection.close()


def publish_burst(topology: Topology, count: int) -> None:
    """Publish `count` events at once (to a running hookd), each stamped with its publish time."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER.url))
    channel = connection.channel()
    for seq in range(count):
        channel.basic_publish(topology.exchange, EVENT, event_body(seq), _properties(new_event_id()))
    connection.process_data_events(0)
    connection.close()


def publish_paced(topology: Topology, rate_per_s: float, count: int) -> int:
    """Publish `count` events at a steady `rate_per_s`, each body stamped with its publish time."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER.url))
    channel = connection.channel()
    started = time.monotonic()
    for seq in range(count):
        due = started + seq / rate_per_s
        if (wait := due - time.monotonic()) > 0:
            connection.sleep(wait)
        channel.basic_publish(topology.exchange, EVENT, event_body(seq), _properties(new_event_id()))
    connection.process_data_events(0)
    connection.close()
    return count


# -- one scenario's setup ----------------------------------------------------------------------------
@dataclass
class Setup:
    prefix: str
    dir: Path
    hooks: list[BenchHook]
    settings: Settings
    configs: list[Path]

    @property
    def topology(self) -> Topology:
        return topology_for(self.settings)


#: `--set section.key=value` overrides applied to every hookd config (e.g. state.history=false).
OVERRIDES: dict[str, dict[str, Any]] = {}


def make_setup(workdir: Path, hooks: list[BenchHook], processes: int, delivery: dict[str, Any]) -> Setup:
    """Config files for `processes` hookd processes sharing one queue prefix, each with its own state
    database (beside its config file: the default), JSON logs at hookd's default level (info: one
    line per attempt, as an operator runs it)."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    base = workdir / prefix
    base.mkdir()
    hooks_file = base / "hooks.yaml"
    hooks_doc = [
        {"id": h.id, "account_id": ACCOUNT, "url": h.url, "events": ["job"], "secret": h.secret} for h in hooks
    ]
    hooks_file.write_text(yaml.safe_dump({"hooks": hooks_doc}))
    hooks_file.chmod(0o600)  # it holds secrets: hookd warns (config.permissions) otherwise
    (base / "hooks.json").write_text(json.dumps([h.public() for h in hooks]))
    configs = []
    for index in range(processes):
        folder = base / f"p{index}"
        folder.mkdir()
        config = {
            "broker": {"url": nodes_for(index), "exchange": f"{prefix}.events", "queue_prefix": prefix},
            "subscriptions": {"source": "yaml", "path": str(hooks_file)},
            "delivery": {"allow_private_networks": True, **delivery},
            "logging": {"format": "json", "level": "info"},
        }
        for section, values in OVERRIDES.items():
            config.setdefault(section, {}).update(values)
        path = folder / "hookd.yaml"
        path.write_text(yaml.safe_dump(config))
        configs.append(path)
    settings = load_settings(configs[0], environ={})
    return Setup(prefix, base, hooks, settings, configs)


#: `--profile DIR`: run every hookd process under `py-spy record` (collapsed stacks, all threads) into DIR.
PROFILE: dict[str, Path] = {}
#: `--compare-rev REV`: the checkout of that revision whose hookd runs as the `prev` contender.
PREVIOUS: dict[str, Path] = {}


def hookd_command(path: Path) -> list[str]:
    command = [sys.executable, "-m", "hookd", "run", "--config", str(path)]
    if "dir" not in PROFILE:
        return command
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = PROFILE["dir"] / f"{path.parent.parent.name}-{path.parent.name}.txt"
    # --gil: only the thread holding the GIL is sampled, so the profile shows where CPU goes, not waits.
    options = ["--format", "raw", "--threads", "--gil", "--nonblocking", "--rate", "400", "-o", str(out)]
    return [spy, "record", *options, "--", *command]


def start_hookd(setup: Setup, *, previous: bool = False) -> list[subprocess.Popen[bytes]]:
    """hookd processes on the setup's configs; `previous`: the `--compare-rev` checkout's hookd (its
    package first on PYTHONPATH, the same interpreter and libraries)."""
    env = dict(os.environ)
    if previous:
        env["PYTHONPATH"] = str(PREVIOUS["tree"])
    procs = []
    for path in setup.configs:
        log = (path.parent / "hookd.log").open("wb")
        procs.append(
            subprocess.Popen(
                hookd_command(path),
                cwd=path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    return procs


def start_naive(setup: Setup, prefetch: int) -> list[subprocess.Popen[bytes]]:
    spec = {
        "amqp": BROKER.url,
        "queue": setup.topology.events,
        "prefetch": prefetch,
        "hooks": [h.public() for h in setup.hooks],
    }
    path = setup.dir / "naive.json"
    path.write_text(json.dumps(spec))
    log = (setup.dir / "naive.log").open("wb")
    command = [sys.executable, "-m", "bench.naive", str(path)]
    return [subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)]


def stop(procs: list[subprocess.Popen[bytes]], grace_s: float = 3.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            if "dir" in PROFILE:  # stop hookd under py-spy, which then writes its profile and exits
                children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                for child in children:
                    os.kill(int(child), signal.SIGTERM)
                grace_s = max(grace_s, 15.0)
                continue
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def log_summary(setup: Setup) -> dict[str, int]:
    """Counts of hookd's warning-or-worse log lines by message (each process's hookd.log), and of its
    parked deliveries by reason (`delivery.parked:<reason>`): parking is work a run should not need."""
    counts: dict[str, int] = {}
    for path in setup.configs:
        log = path.parent / "hookd.log"
        if not log.exists():
            continue
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"msg": "non-json output", "level": "error"}
            msg = str(entry.get("msg", "?"))
            if msg == "delivery.parked":
                msg = f"delivery.parked:{entry.get('reason')}"
            elif entry.get("level") not in ("warning", "error", "critical"):
                continue
            counts[msg] = counts.get(msg, 0) + 1
    return counts


_BROKER_PID = find_broker_pid()


def _broker_cpu() -> float:
    return BROKER.cpu()


def _system_broker_cpu() -> float:
    return cpu_seconds(_BROKER_PID) if _BROKER_PID is not None else float("nan")


#: The broker of the scenario running now (the cluster scenario swaps in its private nodes).
BROKER = Broker([AMQP], _system_broker_cpu)
#: Pinning process i to node i (the cluster scenario); otherwise every process gets every URL.
PINNED: dict[str, bool] = {}


def nodes_for(index: int) -> str | list[str]:
    """broker.url of hookd process `index`: its own node when pinned, else every node."""
    if PINNED.get("on"):
        return BROKER.urls[index % len(BROKER.urls)]
    return BROKER.urls[0] if len(BROKER.urls) == 1 else list(BROKER.urls)


# -- measuring ---------------------------------------------------------------------------------------
def measure(
    receiver: Receiver,
    procs: list[subprocess.Popen[bytes]],
    *,
    scenario: str,
    contender: str,
    cls: str,
    expected: int,
    max_window_s: float,
    extra_cls: Sequence[str] = (),
) -> Outcome:
    """Watch the receiver until `expected` deliveries of class `cls` arrived, or `max_window_s` passed
    since the first one; CPU is counted from the first receipt seen to the end, RSS is the peak."""
    pids = [p.pid for p in procs]
    started = time.monotonic()
    first_seen: float | None = None
    cpu_first = rcv_first = brk_first = 0.0
    count_first = 0
    count = 0
    notes: list[str] = []
    while True:
        count = receiver.counts().get(cls, 0)
        now = time.monotonic()
        if first_seen is None and count > 0:
            first_seen, count_first = now, count
            cpu_first, rcv_first, brk_first = sum(cpu_seconds(p) for p in pids), receiver.cpu(), _broker_cpu()
        if count >= expected:
            break
        if first_seen is None and now - started > _FIRST_RECEIPT_TIMEOUT_S:
            notes.append(f"no delivery within {_FIRST_RECEIPT_TIMEOUT_S:g} s")
            break
        if first_seen is not None and now - first_seen > max_window_s:
            notes.append(f"window of {max_window_s:g} s ended with {count}/{expected} delivered")
            break
        if any(p.poll() is not None for p in procs):
            notes.append("a measured process exited early")
            break
        time.sleep(_POLL_S)
    ended_wall, ended = time.time(), time.monotonic()
    cpu_end, rcv_end, brk_end = sum(cpu_seconds(p) for p in pids), receiver.cpu(), _broker_cpu()
    rss = max((peak_rss_mb(p) for p in pids), default=float("nan"))
    stats = receiver.stats()
    stop(procs)
    mine = stats.get(cls, {"count": 0, "first": ended_wall, "last": ended_wall, "latencies": []})
    n = int(mine["count"])
    complete = n >= expected
    if complete and n > 1:
        seconds = float(mine["last"]) - float(mine["first"])
        per_s = (n - 1) / seconds if seconds > 0 else float("nan")
    else:  # a stall at the end counts against the rate
        seconds = ended_wall - float(mine["first"])
        per_s = n / seconds if seconds > 0 else 0.0
    window_deliveries = count - count_first
    cpu_per_1k = (cpu_end - cpu_first) / window_deliveries * 1000 if window_deliveries > 0 else None
    rcv_pct = brk_pct = None
    if first_seen is not None and ended > first_seen:
        rcv_pct = (rcv_end - rcv_first) / (ended - first_seen) * 100
        brk_pct = (brk_end - brk_first) / (ended - first_seen) * 100
    outcome = Outcome(
        scenario=scenario,
        contender=contender,
        processes=len(procs),
        expected=expected,
        deliveries=n,
        seconds=round(seconds, 3),
        per_s=round(per_s, 1),
        complete=complete,
        cpu_s_per_1k=round(cpu_per_1k, 3) if cpu_per_1k is not None else None,
        peak_rss_mb=round(rss, 1),
        receiver_cpu_pct=round(rcv_pct, 1) if rcv_pct is not None else None,
        broker_cpu_pct=round(brk_pct, 1) if brk_pct is not None and not math.isnan(brk_pct) else None,
        max_stall_s=round(float(mine.get("max_gap_s", 0.0)), 3),
        notes=notes,
    )
    outcome.extra["latencies_s"] = mine.get("latencies", [])
    for other in extra_cls:
        outcome.extra[f"{other}_received"] = int(stats.get(other, {}).get("count", 0))
    return outcome


# -- scenarios ---------------------------------------------------------------------------------------
@dataclass
class Bench:
    args: argparse.Namespace
    receiver: Receiver
    workdir: Path
    results: list[Outcome] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def record(self, outcome: Outcome) -> Outcome:
        outcome.extra.pop("latencies_s", None)
        self.results.append(outcome)
        lat = f", p99 {outcome.latency_ms['p99']} ms" if outcome.latency_ms else ""
        self.say(
            f"  -> {outcome.contender}: {outcome.deliveries}/{outcome.expected} deliveries, "
            f"{outcome.per_s}/s, CPU {outcome.cpu_s_per_1k} s/1k, RSS {outcome.peak_rss_mb} MB, "
            f"receiver CPU {outcome.receiver_cpu_pct}%, broker CPU {outcome.broker_cpu_pct}%, "
            f"longest gap {outcome.max_stall_s} s{lat} {'; '.join(outcome.notes)}"
        )
        return outcome

    def find(self, scenario: str) -> Outcome | None:
        return next((r for r in self.results if r.scenario == scenario), None)

    def backlog_run(
        self,
        scenario: str,
        contender: str,
        hooks: list[BenchHook],
        events: int,
        *,
        start: Callable[[Setup], list[subprocess.Popen[bytes]]],
        processes: int = 1,
        cls: str = "fast",
        expected: int | None = None,
        max_window_s: float | None = None,
        delivery: dict[str, Any] | None = None,
    ) -> Outcome:
        setup = make_setup(self.workdir, hooks, processes, delivery or {})
        try:
            declare(setup.topology)
            self.say(f"{scenario} / {contender}: publishing {events} events x {len(hooks)} hooks")
            publish_rate = publish_backlog(setup.topology, events)
            self.receiver.reset()
            procs = start(setup)
            outcome = measure(
                self.receiver,
                procs,
                scenario=scenario,
                contender=contender,
                cls=cls,
                expected=expected if expected is not None else events * len(hooks),
                max_window_s=max_window_s or self.args.max_window,
                extra_cls=("hang",),
            )
            outcome.extra["publish_events_per_s"] = round(publish_rate, 1)
            if contender.startswith("hookd"):
                outcome.extra["hookd_log"] = log_summary(setup)
            return self.record(outcome)
        finally:
            delete(setup.topology)

    def hookd_starter(self, *, previous: bool = False) -> Callable[[Setup], list[subprocess.Popen[bytes]]]:
        return lambda setup: start_hookd(setup, previous=previous)

    def previous_label(self) -> str:
        return f"hookd {self.args.compare_rev}"

    def naive_starter(self) -> Callable[[Setup], list[subprocess.Popen[bytes]]]:
        return lambda setup: start_naive(setup, self.args.naive_prefetch)

    # individual scenarios -------------------------------------------------------------------------
    def raw_ceiling(self) -> None:
        a = self.args
        hooks = make_hooks(self.receiver.port, a.hooks)
        self.say(f"raw-ceiling: {a.events} events x {a.hooks} hooks, one requests.Session, no broker")
        spec = self.workdir / "raw.json"
        spec.write_text(json.dumps({"events": a.events, "hooks": [h.public() for h in hooks]}))
        self.receiver.reset()
        rcv_before, brk_before, began = self.receiver.cpu(), _broker_cpu(), time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bench.raw", str(spec)], cwd=ROOT, capture_output=True, text=True, check=True
        )
        took = time.monotonic() - began
        rcv_pct = (self.receiver.cpu() - rcv_before) / took * 100
        brk_pct = (_broker_cpu() - brk_before) / took * 100
        own = json.loads(done.stdout.strip().splitlines()[-1])
        stats = self.receiver.stats().get("fast", {"count": 0, "first": 0.0, "last": 0.0})
        n, seconds = int(stats["count"]), float(stats["last"]) - float(stats["first"])
        self.record(
            Outcome(
                scenario="raw-ceiling",
                contender="raw requests",
                processes=1,
                expected=a.events * a.hooks,
                deliveries=n,
                seconds=round(seconds, 3),
                per_s=round((n - 1) / seconds, 1) if seconds > 0 else float("nan"),
                complete=n >= a.events * a.hooks,
                cpu_s_per_1k=round(own["cpu_s"] / n * 1000, 3) if n else None,
                peak_rss_mb=round(own["peak_rss_mb"], 1),
                receiver_cpu_pct=round(rcv_pct, 1),
                broker_cpu_pct=None if math.isnan(brk_pct) else round(brk_pct, 1),
                notes=[f"{own['failures']} failed POSTs"] if own["failures"] else [],
            )
        )

    def fast(self) -> None:
        a = self.args
        hooks = make_hooks(self.receiver.port, a.hooks)
        self.backlog_run("naive-fast", "naive pika+requests", hooks, a.events, start=self.naive_starter())
        self.backlog_run("fast-1p", "hookd", hooks, a.events, start=self.hookd_starter())
        if PREVIOUS:
            start = self.hookd_starter(previous=True)
            self.backlog_run("fast-1p-prev", self.previous_label(), hooks, a.events, start=start)

    def two_processes(self) -> None:
        a = self.args
        hooks = make_hooks(self.receiver.port, a.hooks)
        self.backlog_run("fast-2p", "hookd x2", hooks, a.events, start=self.hookd_starter(), processes=2)

    def slow(self) -> None:
        a = self.args
        hooks = make_hooks(self.receiver.port, a.hooks, mode="slow", delay_ms=a.slow_ms)
        self.backlog_run(
            "naive-slow",
            "naive pika+requests",
            hooks,
            a.slow_events,
            start=self.naive_starter(),
            cls="slow",
            max_window_s=a.naive_window,
        )
        self.backlog_run("slow-1p", "hookd", hooks, a.slow_events, start=self.hookd_starter(), cls="slow")

    def hang(self) -> None:
        a = self.args
        hanging = max(1, round(a.hooks * 0.1))
        hooks = make_hooks(self.receiver.port, a.hooks, hanging=hanging)
        self.backlog_run(
            "hang-10pct",
            "hookd",
            hooks,
            a.events,
            start=self.hookd_starter(),
            expected=a.events * (a.hooks - hanging),
        ).extra["hanging_hooks"] = hanging

    def latency(self) -> None:
        a = self.args
        base = self.find("fast-1p")
        max_rate = a.max_rate or (base.per_s if base and base.per_s > 0 else 1000.0)
        event_rate = max_rate / 2 / a.hooks
        hooks = make_hooks(self.receiver.port, a.hooks)
        setup = make_setup(self.workdir, hooks, 1, {})
        try:
            declare(setup.topology)
            self.receiver.reset()
            procs = start_hookd(setup)
            deadline = time.monotonic() + 30
            while consumers_on(setup.topology.events) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.say(
                f"latency-half-max: {event_rate:.1f} events/s x {a.hooks} hooks "
                f"({max_rate / 2:.0f} deliveries/s, half of {max_rate:.0f}) for {a.latency_seconds:g} s"
            )
            events = max(1, round(event_rate * a.latency_seconds))
            publisher = threading.Thread(
                target=publish_paced, args=(setup.topology, event_rate, events), name="paced-publisher"
            )
            publisher.start()
            outcome = measure(
                self.receiver,
                procs,
                scenario="latency-half-max",
                contender="hookd",
                cls="fast",
                expected=events * a.hooks,
                max_window_s=a.latency_seconds + 30,
            )
            publisher.join()
            outcome.latency_ms = latency_summary(outcome.extra["latencies_s"])
            outcome.extra["offered_deliveries_per_s"] = round(max_rate / 2, 1)
            outcome.extra["hookd_log"] = log_summary(setup)
            self.record(outcome)
        finally:
            delete(setup.topology)

    def live_run(
        self,
        scenario: str,
        contender: str,
        hooks: list[BenchHook],
        events: int,
        *,
        cls: str,
        max_window_s: float,
        previous: bool = False,
    ) -> Outcome:
        """hookd runs first; then `events` are published at once, and publish-to-receipt is measured."""
        setup = make_setup(self.workdir, hooks, 1, {})
        try:
            declare(setup.topology)
            self.receiver.reset()
            procs = start_hookd(setup, previous=previous)
            deadline = time.monotonic() + 30
            while consumers_on(setup.topology.events) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.say(f"{scenario} / {contender}: {events} events x {len(hooks)} hooks, published at once")
            publish_burst(setup.topology, events)
            outcome = measure(
                self.receiver,
                procs,
                scenario=scenario,
                contender=contender,
                cls=cls,
                expected=events * len(hooks),
                max_window_s=max_window_s,
            )
            outcome.latency_ms = latency_summary(outcome.extra["latencies_s"])
            outcome.extra["hookd_log"] = log_summary(setup)
            return self.record(outcome)
        finally:
            delete(setup.topology)

    def slow_many(self) -> None:
        """The issue-13 load: 200 hooks on 200 hosts, each answering in 1 s; 10 events reach all of them."""
        a = self.args
        hooks = make_hooks(self.receiver.port, 200, mode="slow", delay_ms=1000, distinct_hosts=True)
        self.live_run("slow-many", "hookd", hooks, 10, cls="slow", max_window_s=a.max_window)
        if PREVIOUS:
            self.live_run(
                "slow-many-prev", self.previous_label(), hooks, 10, cls="slow", max_window_s=60, previous=True
            )

    def slow_thousand(self) -> None:
        """10,000 deliveries to 1,000 hooks on 1,000 hosts answering in 2 s."""
        a = self.args
        hooks = make_hooks(self.receiver.port, 1000, mode="slow", delay_ms=2000, distinct_hosts=True)
        self.live_run("slow-1000", "hookd", hooks, 10, cls="slow", max_window_s=a.max_window)

    def cluster(self) -> None:
        """hookd on a private three-node cluster: 1, 2 and 3 processes (process i on node i) drain the
        same fast backlog; deliveries/s and the three nodes' CPU."""
        from hookd.testing.cluster import RabbitCluster  # noqa: PLC0415 (only this scenario builds one)

        a = self.args
        hooks = make_hooks(self.receiver.port, a.hooks)
        global BROKER  # noqa: PLW0603 (the scenario's broker, restored after it)
        saved = BROKER
        self.say("cluster: building a private 3-node RabbitMQ cluster")
        with RabbitCluster(size=3) as cluster:
            groups = [node.pid for node in cluster.nodes if node.pid is not None]
            BROKER = Broker(list(cluster.urls), lambda: sum(group_cpu(pgid) for pgid in groups))
            PINNED["on"] = True
            try:
                for processes in (1, 2, 3):
                    label = f"hookd x{processes}" if processes > 1 else "hookd"
                    self.backlog_run(
                        f"cluster-{processes}p", label, hooks, a.events, start=self.hookd_starter(), processes=processes
                    )
            finally:
                BROKER, PINNED["on"] = saved, False

    def backlog_rss(self) -> None:
        a = self.args
        hooks = make_hooks(self.receiver.port, a.hooks)
        self.backlog_run(
            "rss-50k-backlog",
            "hookd",
            hooks,
            a.backlog_events,
            start=self.hookd_starter(),
            max_window_s=a.backlog_window,
        )


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "raw": Bench.raw_ceiling,
    "fast": Bench.fast,
    "2p": Bench.two_processes,
    "slow": Bench.slow,
    "hang": Bench.hang,
    "latency": Bench.latency,
    "rss": Bench.backlog_rss,
    "slow-many": Bench.slow_many,
    "slow-1000": Bench.slow_thousand,
    "cluster": Bench.cluster,
}


# -- ratios, targets and the table -------------------------------------------------------------------
@dataclass
class Row:
    scenario: str
    contender: str
    per_s: float
    vs_naive: float | None
    vs_raw_per_process: float | None
    latency_ms: dict[str, float] | None
    cpu_s_per_1k: float | None
    peak_rss_mb: float | None
    receiver_cpu_pct: float | None
    broker_cpu_pct: float | None
    target: str
    verdict: str  # PASS, MISS, info, n/a


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 2)


def evaluate(results: list[Outcome]) -> list[Row]:
    by = {r.scenario: r for r in results}
    raw, naive_fast, naive_slow, fast = (by.get(k) for k in ("raw-ceiling", "naive-fast", "naive-slow", "fast-1p"))
    rows: list[Row] = []
    for r in results:
        per_process = r.per_s / r.processes
        vs_raw = _ratio(per_process, raw.per_s if raw else None)
        vs_naive: float | None = None
        target, verdict = "", "info"
        if r.scenario in ("fast-1p", "fast-2p"):
            vs_naive = _ratio(r.per_s, naive_fast.per_s if naive_fast else None)
        if r.scenario == "fast-1p":
            target = ">=1.0x naive, >=0.85x raw/proc"
            verdict = _verdict(vs_naive is not None and vs_raw is not None and vs_naive >= 1.0 and vs_raw >= 0.85)
        elif r.scenario == "fast-2p":
            target = f"{_ratio(r.per_s, fast.per_s if fast else None)}x of 1 process"
        elif r.scenario == "slow-1p":
            vs_naive = _ratio(r.per_s, naive_slow.per_s if naive_slow else None)
            target = ">=20x naive (100 ms)"
            verdict = _verdict(vs_naive is not None and vs_naive >= 20)
        elif r.scenario == "hang-10pct":
            kept = _ratio(r.per_s, fast.per_s if fast else None)
            target = f">=0.80x no-hang: {kept}x"
            verdict = _verdict(kept is not None and kept >= 0.8)
        elif r.scenario == "latency-half-max":
            target = "p99 < 250 ms"
            verdict = _verdict(r.latency_ms is not None and r.latency_ms["p99"] < 250 and r.complete)
        elif r.scenario == "rss-50k-backlog":
            target = "peak RSS < 150 MB"
            verdict = _verdict(r.peak_rss_mb is not None and r.peak_rss_mb < 150)
        elif r.scenario == "slow-many":
            target = ">=1000/s, p99 < 3 s"
            verdict = _verdict(r.per_s >= 1000 and r.latency_ms is not None and r.latency_ms["p99"] < 3000)
        elif r.scenario == "slow-1000":
            target = "all delivered, peak RSS < 300 MB"
            verdict = _verdict(r.complete and r.peak_rss_mb is not None and r.peak_rss_mb < 300)
        elif r.scenario == "fast-1p-prev":
            current = by.get("fast-1p")
            target = f"this commit: {_ratio(current.per_s if current else None, r.per_s)}x the rate"
            cpu_now, cpu_then = (current.cpu_s_per_1k if current else None), r.cpu_s_per_1k
            if cpu_now is not None and cpu_then is not None:
                target += f", CPU {cpu_now:.3f} vs {cpu_then:.3f} s/1k"
        elif r.scenario.startswith("cluster-"):
            single = by.get("cluster-1p")
            target = f"{_ratio(r.per_s, single.per_s if single else None)}x of 1 process; 3-node broker CPU"
        elif r.scenario.endswith("-prev"):
            target = "the previous revision, same run"
        elif r.contender.startswith(("naive", "raw")):
            target, verdict = "reference", "ref"
        if r.scenario in ("naive-slow", "slow-1p"):
            vs_raw = None  # the ceiling is a fast-receiver figure
        rows.append(
            Row(
                r.scenario,
                r.contender,
                r.per_s,
                vs_naive,
                vs_raw,
                r.latency_ms,
                r.cpu_s_per_1k,
                r.peak_rss_mb,
                r.receiver_cpu_pct,
                r.broker_cpu_pct,
                target,
                verdict,
            )
        )
    return rows


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:{spec}}{suffix}"


def table(rows: list[Row]) -> str:
    head = (
        f"{'scenario':<18}{'contender':<21}{'deliv/s':>9}{'xnaive':>8}{'xraw/p':>8}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'CPU s/1k':>10}{'RSS MB':>8}"
        f"{'rcv CPU':>9}{'brk CPU':>9}  {'result':<6}target"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lat = r.latency_ms or {}
        lines.append(
            f"{r.scenario:<18}{r.contender:<21}{_fmt(r.per_s, '.0f'):>9}{_fmt(r.vs_naive, '.2f', 'x'):>8}"
            f"{_fmt(r.vs_raw_per_process, '.2f', 'x'):>8}"
            f"{_fmt(lat.get('p50'), '.1f'):>8}{_fmt(lat.get('p95'), '.1f'):>8}"
            f"{_fmt(lat.get('p99'), '.1f'):>8}{_fmt(r.cpu_s_per_1k, '.3f'):>10}{_fmt(r.peak_rss_mb, '.0f'):>8}"
            f"{_fmt(r.receiver_cpu_pct, '.0f', '%'):>9}{_fmt(r.broker_cpu_pct, '.0f', '%'):>9}"
            f"  {r.verdict:<6}{r.target}"
        )
    return "\n".join(lines)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "hookd"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


# -- entry point -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="events per fast/hang/naive backlog (default 1000)")
    parser.add_argument("--hooks", type=int, default=10, help="hooks every event matches, K (default 10)")
    parser.add_argument("--slow-events", type=int, default=300, help="events for the slow receiver (default 300)")
    parser.add_argument("--slow-ms", type=int, default=100, help="the slow receiver's delay (default 100)")
    parser.add_argument("--naive-window", type=float, default=10.0, help="s the naive baseline runs when slow")
    parser.add_argument("--naive-prefetch", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, default=15.0, help="paced publishing time (default 15)")
    parser.add_argument("--max-rate", type=float, default=0.0, help="deliveries/s for the latency run (0: measured)")
    parser.add_argument("--backlog-events", type=int, default=50_000, help="backlog for the RSS run (default 50000)")
    parser.add_argument("--backlog-window", type=float, default=20.0, help="s hookd runs against it (default 20)")
    parser.add_argument("--max-window", type=float, default=120.0, help="cap of a run after its first receipt")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a hookd setting in every run, e.g. --set state.history=false --set delivery.max_in_flight=500",
    )
    parser.add_argument(
        "--compare-rev",
        metavar="REV",
        help="also run hookd at git revision REV (e.g. HEAD~1) in the fast and slow-many scenarios, same run",
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON path (default bench/results/<timestamp>.json)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run hookd under py-spy (pip install py-spy); collapsed stacks per process into DIR",
    )
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE["dir"] = args.profile.resolve()
    for item in args.set:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            parser.error(f"--set {item!r}: expected SECTION.KEY=VALUE")
        OVERRIDES.setdefault(section, {})[name] = yaml.safe_load(value)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pika.BlockingConnection(pika.URLParameters(BROKER.url)).close()
    except pika.exceptions.AMQPError as exc:
        print(f"bench: cannot reach RabbitMQ at {AMQP}: {exc!r}", file=sys.stderr)
        return 1
    started = datetime.now(UTC)
    receiver = Receiver()
    previous_tree: Path | None = None
    if args.compare_rev:
        previous_tree = Path(tempfile.mkdtemp(prefix="hookd-bench-prev-")) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(previous_tree), args.compare_rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        PREVIOUS["tree"] = previous_tree
    try:
        with tempfile.TemporaryDirectory(prefix="hookd-bench-") as tmp:
            bench = Bench(args, receiver, Path(tmp))
            selected = args.only.split(",")
            for name, run in SCENARIOS.items():
                if name in selected:
                    run(bench)
    finally:
        receiver.close()
        if previous_tree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(previous_tree)], cwd=ROOT, check=False)
    rows = evaluate(bench.results)
    text = table(rows)
    settings = {
        "delivery": "defaults (max_in_flight, per_hook_concurrency 8, timeout_s 10, inline_attempts 3, ...)",
        "allow_private_networks": True,
        "queue_type": "quorum (default)",
        "state.history": f"{OVERRIDES.get('state', {}).get('history', True)} (default true): SQLite beside each config",
        "logging": "json, info (the default: one line per attempt)",
        "overrides": OVERRIDES,
    }
    report = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "hookd_version": __version__,
        "git_commit": _git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "hookd_settings": settings,
        "results": [asdict(r) for r in bench.results],
        "summary": [asdict(r) for r in rows],
        "table": text.splitlines(),
    }
    RESULTS.mkdir(exist_ok=True)
    out = args.output or RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    print()
    print(text)
    history = OVERRIDES.get("state", {}).get("history", True)
    print(f"\nhookd {__version__}, state.history {'on' if history else 'off'} (SQLite), {os.cpu_count()} CPUs", end="")
    print(f", overrides {OVERRIDES}" if OVERRIDES else "", f"; results: {out}", sep="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
