"""Running scenario records: broker topology, receiver, senders, publishing, waiting, measuring.

The harness knows load kinds (backlog, burst, paced, direct) and contenders, never a particular row:
what a row is lives in its record (bench/scenarios.py). Everything a run holds (the receiver, the
brokers, the results so far, the profiles) is a field of `Harness`; nothing is module state. A row
that fails is recorded with why, and the run goes on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.brokers import BenchBroker
from bench.cluster import private_cluster
from bench.contenders import HookdBuild, label, start_hookd, start_peer
from bench.hookd_setup import Overrides, RunFiles, last_error, log_summary, write_run
from bench.load import EVENT, ROOT, BenchHook, Event, delivery_headers, event_body, job_events, single_events
from bench.measure import Outcome, Watch, latency_summary, watch
from bench.ordering import out_of_order
from bench.peers.tools import node_peer_ready, wrk_ready
from bench.procs import Procs, stop, wait_for_child
from bench.profile import Profile, merge, parse
from bench.receiving import ReceiverProcess
from bench.scenarios import Scenario, Sizes
from hookd.config import DeliverySettings

_PROFILED_GRACE_S = 20.0  # py-spy writes its profile after hookd drains and exits


@dataclass
class Harness:
    sizes: Sizes
    receiver: ReceiverProcess
    local: BenchBroker
    workdir: Path
    overrides: Overrides
    previous: HookdBuild | None = None
    profile_dir: Path | None = None
    results: list[Outcome] = field(default_factory=list)
    profiles: list[tuple[Profile, int]] = field(default_factory=list)  # (profile, deliveries) per profiled row
    settings_seen: dict[str, object] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def find(self, name: str) -> Outcome | None:
        return next((r for r in self.results if r.scenario == name), None)

    # -- the run -----------------------------------------------------------------------------------
    def run_all(self, scenarios: list[Scenario]) -> None:
        with contextlib.ExitStack() as stack:
            cluster: BenchBroker | str | None = None
            for sc in scenarios:
                broker: BenchBroker | str = self.local
                if sc.on_cluster:
                    if cluster is None:
                        self.say("building a private 3-node RabbitMQ cluster (about half a minute)")
                        try:
                            cluster = stack.enter_context(private_cluster(3))
                        except Exception as exc:
                            cluster = f"the private cluster could not be built: {exc}"
                    broker = cluster
                self.results.append(self._run_one(sc, broker))

    def _run_one(self, sc: Scenario, broker: BenchBroker | str) -> Outcome:
        name = label(sc.contender, sc.processes, revision=self._revision(), profiled=sc.profile)
        try:
            if isinstance(broker, str):
                raise RuntimeError(broker)
            outcome = self._measure(sc, name, broker)
        except Exception as exc:
            outcome = Outcome(sc.name, name, sc.processes, 0, 0, 0.0, 0.0, False, notes=[f"failed: {exc}"])
        outcome.extra.pop("latencies_s", None)
        lat = f", p99 {outcome.latency_ms['p99']} ms" if outcome.latency_ms else ""
        ooo = f", jobs out of order {outcome.jobs_out_of_order}" if outcome.jobs_out_of_order is not None else ""
        self.say(
            f"  -> {sc.name} / {name}: {outcome.deliveries}/{outcome.expected}, {outcome.per_s}/s, "
            f"CPU {outcome.cpu_us_per_delivery} us/deliv, RSS {outcome.peak_rss_mb} MB, "
            f"procs {outcome.process_cpu_pct}%, receiver {outcome.receiver_cpu_pct}%, "
            f"broker {outcome.broker_cpu_pct}%{lat}{ooo} {'; '.join(outcome.notes)}"
        )
        return outcome

    def _revision(self) -> str | None:
        return self.previous.revision if self.previous else None

    def _measure(self, sc: Scenario, name: str, broker: BenchBroker) -> Outcome:
        hooks = sc.hooks.build(self.receiver.port)
        if sc.contender == "wrk":
            return self._wrk(sc, name, hooks)
        if sc.contender == "raw":
            return self._raw(sc, name, hooks)
        if sc.contender == "node" and (why := node_peer_ready()) is not None:
            raise RuntimeError(why)
        if sc.contender == "aio" and not all(importlib.util.find_spec(m) for m in ("aio_pika", "aiohttp")):
            raise RuntimeError("aio-pika or aiohttp not installed: make bench installs bench/requirements.txt")
        if sc.contender == "hookd-prev" and self.previous is None:
            raise RuntimeError("needs --compare-rev")
        files = write_run(self.workdir, hooks, sc.processes, broker, ordered=sc.ordered, overrides=self.overrides)
        self.settings_seen.setdefault("hookd", files.settings)
        try:
            broker.declare(files.topology)
            return self._with_topology(sc, name, broker, files)
        finally:
            with contextlib.suppress(Exception):
                broker.delete(files.topology)

    def _events(self, sc: Scenario, count: int) -> list[Event]:
        return list(job_events(count) if sc.load.jobs else single_events(count))

    def _with_topology(self, sc: Scenario, name: str, broker: BenchBroker, files: RunFiles) -> Outcome:
        load = sc.load
        per_event = 3 if load.jobs else 1
        publisher: threading.Thread | None = None
        problems: list[str] = []
        publish_rate = None
        events = 0
        # Several processes: every one consumes before the backlog is published, or the first to start
        # would take a prefetch's worth (1,000 events) before the others are up.
        shared = load.kind == "backlog" and sc.processes > 1
        if load.kind == "backlog" and not shared:
            self.say(f"{sc.name} / {name}: publishing {load.events * per_event} events x {sc.hooks.count} hooks")
            publish_rate = broker.publish(files.topology, self._events(sc, load.events))
        events = load.events * per_event
        self.receiver.reset(order=sc.capture_order)
        procs = self._start(sc, files, broker)
        measured = [wait_for_child(p.pid) or p.pid for p in procs] if sc.profile else None
        if (load.kind in ("burst", "paced") or shared) and not broker.wait_ready(files.topology, sc.processes):
            problems.append(f"not {sc.processes} worker(s) consuming {files.topology.prefix}.* after 30 s")
        if shared:
            self.say(f"{sc.name} / {name}: {sc.processes} processes consuming; publishing {events} events")
            publish_rate = broker.publish(files.topology, self._events(sc, load.events))
        if load.kind == "burst":
            self.say(f"{sc.name} / {name}: {load.events} events x {sc.hooks.count} hooks, published at once")
            broker.publish(files.topology, self._events(sc, load.events))
        elif load.kind == "paced":
            base = self.find(load.rate_of)
            max_rate = self.sizes.max_rate or (base.per_s if base and base.per_s > 0 else 1000.0)
            event_rate = max_rate * load.fraction / sc.hooks.count
            events = max(1, round(event_rate * load.seconds))
            self.say(
                f"{sc.name}: {event_rate:.1f} events/s x {sc.hooks.count} hooks "
                f"({max_rate * load.fraction:.0f} deliveries/s of {max_rate:.0f}) for {load.seconds:g} s"
            )
            stream = self._events(sc, events)

            def paced() -> None:
                try:
                    broker.publish(files.topology, stream, per_s=event_rate)
                except Exception as exc:
                    problems.append(f"publisher: {exc}")

            publisher = threading.Thread(target=paced, name="paced-publisher")
            publisher.start()
        spec = Watch(
            scenario=sc.name,
            contender=name,
            cls=sc.hooks.receiver_class,
            expected=events * sc.hooks.healthy,
            max_window_s=sc.window_s or self.sizes.max_window,
            broker_cpu=broker.cpu,
            measured_pids=measured,
        )
        grace = _PROFILED_GRACE_S if sc.profile else 3.0
        outcome = watch(self.receiver, procs, spec, stop=lambda: stop(procs, grace_s=grace, via_child=sc.profile))
        if publisher is not None:
            publisher.join()
            outcome.extra["offered_deliveries_per_s"] = round(events * sc.hooks.count / load.seconds, 1)
        self._finish(sc, outcome, files, problems, publish_rate)
        return outcome

    def _start(self, sc: Scenario, files: RunFiles, broker: BenchBroker) -> Procs:
        if sc.contender in ("hookd", "hookd-prev"):
            build = self.previous if sc.contender == "hookd-prev" and self.previous else HookdBuild()
            return start_hookd(files, build, profile_dir=self.profile_dir if sc.profile else None)
        return start_peer(sc.contender, files, broker, naive_prefetch=self.sizes.naive_prefetch)

    def _finish(
        self, sc: Scenario, outcome: Outcome, files: RunFiles, problems: list[str], publish_rate: float | None
    ) -> None:
        outcome.notes += problems + files.notes
        if publish_rate is not None:
            outcome.extra["publish_events_per_s"] = round(publish_rate, 1)
        if sc.load.kind in ("burst", "paced"):
            outcome.latency_ms = latency_summary(outcome.extra.get("latencies_s", []))
        if sc.capture_order:
            count = out_of_order(self.receiver.first_arrivals())
            outcome.jobs_out_of_order = count.jobs_out_of_order
            outcome.extra["order"] = vars(count)
        if outcome.deliveries and (why := self.receiver.signature_problem(sc.hooks.receiver_class, files.hooks)):
            outcome.notes.append(f"signatures: {why}")
        if sc.hooks.hanging:
            outcome.extra["hanging_hooks"] = sc.hooks.hanging
        if sc.contender.startswith("hookd"):
            outcome.extra["hookd_log"] = log_summary(files)
            if any("exited early" in n for n in outcome.notes) and (line := last_error(files)):
                outcome.notes.append(f"hookd said: {line}")
        elif any("exited early" in n for n in outcome.notes):
            said = (files.dir / f"{sc.contender}.log").read_text(errors="replace").strip().splitlines()
            outcome.notes.append(f"{sc.contender} said: {said[-1][:300] if said else '(nothing)'}")
        if sc.profile and self.profile_dir is not None:
            found = [parse(p.read_text()) for p in sorted(self.profile_dir.glob(f"{files.prefix}-p*.txt"))]
            if found:
                self.profiles.append((merge(found), outcome.deliveries))
            else:
                outcome.notes.append("py-spy wrote no profile")

    # -- no broker: the ceilings -------------------------------------------------------------------
    def _direct(self, run: Callable[[], dict[str, object]]) -> tuple[dict[str, object], float, float | None, float]:
        """Run a broker-free sender to completion; (its output, receiver CPU %, broker CPU %, seconds)."""
        self.receiver.reset()
        rcv, brk, began = self.receiver.cpu(), self.local.cpu(), time.monotonic()
        output = run()
        took = time.monotonic() - began
        brk_pct = (self.local.cpu() - brk) / took * 100
        return output, (self.receiver.cpu() - rcv) / took * 100, None if math.isnan(brk_pct) else brk_pct, took

    def _direct_outcome(
        self, sc: Scenario, name: str, expected: int, output: dict[str, object], *, rcv: float, brk: float | None
    ) -> Outcome:
        stats = self.receiver.stats().get("fast", {"count": 0, "first": 0.0, "last": 0.0})
        n, seconds = int(stats["count"]), float(stats["last"]) - float(stats["first"])
        cpu_s = output.get("cpu_s")
        outcome = Outcome(
            scenario=sc.name,
            contender=name,
            processes=1,
            expected=expected,
            deliveries=n,
            seconds=round(seconds, 3),
            per_s=round((n - 1) / seconds, 1) if seconds > 0 else float("nan"),
            complete=n >= expected,
            cpu_us_per_delivery=round(float(cpu_s) / n * 1e6, 1) if isinstance(cpu_s, float) and n else None,
            peak_rss_mb=round(float(str(output["peak_rss_mb"])), 1) if "peak_rss_mb" in output else None,
            receiver_cpu_pct=round(rcv, 1),
            broker_cpu_pct=None if brk is None else round(brk, 1),
        )
        outcome.extra.update(output)
        return outcome

    def _raw(self, sc: Scenario, name: str, hooks: list[BenchHook]) -> Outcome:
        self.say(f"{sc.name}: {sc.load.events} events x {len(hooks)} hooks, one requests.Session, no broker")
        spec = self.workdir / "raw.json"
        spec.write_text(json.dumps({"events": sc.load.events, "hooks": [h.public() for h in hooks]}))

        def run() -> dict[str, object]:
            command = [sys.executable, "-m", "bench.peers.raw", str(spec)]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
            return result

        output, rcv, brk, _ = self._direct(run)
        outcome = self._direct_outcome(sc, name, sc.load.events * len(hooks), output, rcv=rcv, brk=brk)
        if output.get("failures"):
            outcome.notes.append(f"{output['failures']} failed POSTs")
        return outcome

    def _wrk(self, sc: Scenario, name: str, hooks: list[BenchHook]) -> Outcome:
        """wrk POSTs one event's body and headers to the first hook's URL, with as many connections as
        hookd may keep to the row's hooks, for `seconds`: what the receiver itself can take."""
        if (why := wrk_ready()) is not None:
            raise RuntimeError(why)
        connections = sc.hooks.count * DeliverySettings().per_hook_concurrency  # hookd's default
        body = event_body(0, 0)
        headers = delivery_headers(hooks[0], EVENT, "wrk-event", body)
        script = self.workdir / "wrk.lua"
        lines = ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]"]
        lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
        script.write_text("\n".join(lines) + "\n")
        seconds = sc.load.seconds
        self.say(f"{sc.name}: wrk, 1 thread, {connections} connections, {seconds:g} s against the receiver")

        def run() -> dict[str, object]:
            command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), hooks[0].url]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            said = [line.strip() for line in done.stdout.splitlines() if "Requests/sec" in line or "errors" in line]
            return {"wrk": said, "connections": connections}

        output, rcv, brk, _ = self._direct(run)
        outcome = self._direct_outcome(sc, name, 0, output, rcv=rcv, brk=brk)
        outcome.complete = True
        return outcome
