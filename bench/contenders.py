"""Starting a row's senders: hookd processes, or a peer consuming the same queue with hookd's shape.

The peers get hookd's own numbers from the settings hookd's loader read for the row: the prefetch
(`Settings.prefetch`), the connections per host (`delivery.per_hook_concurrency`) and the request
deadline (`delivery.timeout_s`); the naive baseline keeps its own prefetch (`--naive-prefetch`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.brokers import BenchBroker
from bench.hookd_setup import RunFiles
from bench.load import ACCOUNT, ROOT
from bench.peers.tools import PEERS
from bench.procs import Procs
from bench.profile import py_spy, record_command
from hookd import __version__

LABELS = {
    "naive": "naive pika+requests",
    "aio": "aio-pika+aiohttp",
    "node": "node amqplib+undici",
    "raw": "raw requests",
    "wrk": "wrk (C)",
}


@dataclass(frozen=True)
class HookdBuild:
    """Which hookd runs: this tree's, or `--compare-rev`'s checkout (its package first on PYTHONPATH,
    the same interpreter and libraries)."""

    tree: Path | None = None
    revision: str | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.tree is not None:
            env["PYTHONPATH"] = str(self.tree)
        return env


def label(contender: str, processes: int, *, revision: str | None = None, profiled: bool = False) -> str:
    if contender in LABELS:
        return LABELS[contender]
    name = f"hookd {revision}" if contender == "hookd-prev" and revision else "hookd"
    if processes > 1:
        name += f" x{processes}"
    return name + (" (py-spy)" if profiled else "")


def start_hookd(files: RunFiles, build: HookdBuild, *, profile_dir: Path | None = None) -> Procs:
    """One `hookd run` per config file, its output in hookd.log beside it; under py-spy with a
    profile folder (the collapsed stacks go to `<prefix>-p<i>.txt` there)."""
    procs: Procs = []
    spy = py_spy() if profile_dir is not None else None
    if profile_dir is not None and spy is None:
        raise RuntimeError("py-spy not found: pip install py-spy (make bench installs it)")
    for index, path in enumerate(files.configs):
        command = [sys.executable, "-m", "hookd", "run", "--config", str(path)]
        if spy is not None and profile_dir is not None:
            command = record_command(spy, profile_dir / f"{files.prefix}-p{index}.txt", command)
        log = (path.parent / "hookd.log").open("wb")
        procs.append(subprocess.Popen(command, cwd=path.parent, stdout=log, stderr=subprocess.STDOUT, env=build.env()))
    return procs


def start_peer(contender: str, files: RunFiles, broker: BenchBroker, *, naive_prefetch: int) -> Procs:
    """One peer process (bench/peers/) consuming the row's events queue."""
    settings = files.settings
    spec = {
        "amqp": broker.url,
        "queue": files.topology.events,
        "prefetch": naive_prefetch if contender == "naive" else settings.prefetch,
        "connections_per_host": settings.delivery.per_hook_concurrency,
        "timeout_s": settings.delivery.timeout_s,
        "account": ACCOUNT,
        "user_agent": f"hookd/{__version__}",
        "delivery_namespace": str(uuid.NAMESPACE_URL),
        "hooks": [h.public() for h in files.hooks],
    }
    path = files.dir / f"{contender}.json"
    path.write_text(json.dumps(spec))
    if contender == "node":
        command = ["node", str(PEERS / "node.mjs"), str(path)]
    else:
        command = [sys.executable, "-m", f"bench.peers.{contender}", str(path)]
    log = (files.dir / f"{contender}.log").open("wb")
    return [subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)]
