"""The report: each outcome judged against its row's targets, the table, and the JSON record."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.load import ROOT
from bench.measure import Outcome
from bench.scenarios import Scenario
from bench.targets import ratio, verdict
from hookd import __version__

RESULTS = ROOT / "bench/results"


@dataclass
class Row:
    outcome: Outcome
    vs_node: float | None
    vs_naive: float | None
    target: str
    verdict: str


def evaluate(scenarios: list[Scenario], results: list[Outcome]) -> list[Row]:
    """Judge each outcome; `xnode/p` and `xnaive` only where the row has the reference's shape (the
    same hooks, a backlog of single events)."""
    by_name = {r.scenario: r for r in results}
    records = {s.name: s for s in scenarios}

    def against(sc: Scenario, outcome: Outcome, reference: str, *, per_process: bool) -> float | None:
        ref, ref_sc = by_name.get(reference), records.get(reference)
        if ref is None or ref_sc is None or sc.name == reference:
            return None
        if sc.hooks != ref_sc.hooks or sc.load.kind != "backlog" or sc.load.jobs:
            return None
        mine = outcome.per_s / outcome.processes if per_process and outcome.processes else outcome.per_s
        return ratio(mine, ref.per_s)

    rows = []
    for outcome in results:
        sc = records[outcome.scenario]
        judgements = [t.judge(outcome, by_name) for t in sc.targets]
        naive = against(sc, outcome, "naive-fast", per_process=False) or against(
            sc, outcome, "naive-slow", per_process=False
        )
        rows.append(
            Row(
                outcome,
                against(sc, outcome, "peer-node", per_process=True),
                naive,
                "; ".join(j.text for j in judgements),
                verdict(judgements, reference=sc.reference),
            )
        )
    return rows


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:{spec}}{suffix}"


def table(rows: list[Row]) -> str:
    head = (
        f"{'scenario':<21}{'contender':<22}{'deliv/s':>8}{'xnode/p':>8}{'xnaive':>8}{'p50 ms':>8}{'p99 ms':>9}"
        f"{'ooo':>5}{'CPU us/d':>9}{'RSS MB':>7}{'proc CPU':>12}{'rcv':>5}{'brk':>5}  {'result':<6} target"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        o = row.outcome
        lat = o.latency_ms or {}
        procs = "+".join(f"{p:.0f}" for p in o.process_cpu_pct) + "%" if o.process_cpu_pct else "-"
        lines.append(
            f"{o.scenario:<21}{o.contender[:21]:<22}{_fmt(o.per_s, '.0f'):>8}{_fmt(row.vs_node, '.2f', 'x'):>8}"
            f"{_fmt(row.vs_naive, '.2f', 'x'):>8}{_fmt(lat.get('p50'), '.1f'):>8}{_fmt(lat.get('p99'), '.1f'):>9}"
            f"{_fmt(o.jobs_out_of_order, 'd'):>5}{_fmt(o.cpu_us_per_delivery, '.0f'):>9}"
            f"{_fmt(o.peak_rss_mb, '.0f'):>7}{procs:>12}{_fmt(o.receiver_cpu_pct, '.0f', '%'):>5}"
            f"{_fmt(o.broker_cpu_pct, '.0f', '%'):>5}  {row.verdict:<6} {row.target}"
        )
        for note in o.notes:
            lines.append(f"{'':<21}! {note}")
    return "\n".join(lines)


def git_commit() -> str | None:
    """HEAD, with `+dirty` when hookd/ has local changes."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "hookd"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write(
    out: Path | None,
    *,
    started: datetime,
    finished: datetime,
    args: dict[str, Any],
    hookd_settings: dict[str, Any],
    rows: list[Row],
    text: str,
    profile_text: str | None,
    load_before: list[float],
) -> Path:
    """bench/results/<timestamp>.json (or `out`) and bench/results/latest.json."""
    report = {
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "hookd_version": __version__,
        "git_commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "args": args,
        "hookd_settings": hookd_settings,
        "results": [asdict(r.outcome) for r in rows],
        "summary": [{"scenario": r.outcome.scenario, "target": r.target, "verdict": r.verdict} for r in rows],
        "table": text.splitlines(),
        "profile": profile_text.splitlines() if profile_text else None,
    }
    RESULTS.mkdir(exist_ok=True)
    path = out or RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    body = json.dumps(report, indent=2, default=str)
    path.write_text(body)
    (RESULTS / "latest.json").write_text(body)
    return path
