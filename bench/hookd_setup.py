"""hookd's side of a run: the hooks file and one config file per process, on hookd's own defaults.

The bench writes only what a benchmark must differ in (where the broker and the hooks are, a
unique queue prefix and exchange per run, private receivers allowed, JSON logs, a metrics port)
and what a row asks for (ordering on or off, `--set` overrides). Every other value is hookd's
default, read back from the config file through hookd's own loader (`hookd.config`): the bench
never copies a default, and the report shows the settings hookd actually ran with.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.brokers import BenchBroker
from bench.load import ACCOUNT, BenchHook
from hookd.broker import Topology, topology_for
from hookd.config import DeliverySettings, Settings, load_settings

Overrides = Mapping[str, Mapping[str, Any]]

#: The installation-wide ordering switch (issue 19); rows that compare ordering on and off set it.
ORDERED_DEFAULT = "ordered_default"


def hookd_knows(settings_class: type, key: str) -> bool:
    """Whether this hookd's settings have `key` (a row for a feature hookd lacks says so instead)."""
    return key in {f.name for f in dataclasses.fields(settings_class)}


def ordering_switch_available() -> bool:
    return hookd_knows(DeliverySettings, ORDERED_DEFAULT)


@dataclass(frozen=True)
class RunFiles:
    """The files of one run of hookd (or of a peer on the same queues): one prefix, one hooks file."""

    prefix: str
    dir: Path
    hooks: list[BenchHook]
    configs: list[Path]
    settings: Settings  # process 0's, as hookd's loader read them
    notes: list[str] = field(default_factory=list)

    @property
    def topology(self) -> Topology:
        return topology_for(self.settings)

    def logs(self) -> list[Path]:
        return [path.parent / "hookd.log" for path in self.configs]


def free_port() -> int:
    """A port nothing listens on right now (hookd's metrics endpoint; `metrics.listen` wants one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_run(
    workdir: Path,
    hooks: list[BenchHook],
    processes: int,
    broker: BenchBroker,
    *,
    ordered: bool | None = None,
    overrides: Overrides | None = None,
) -> RunFiles:
    """Config files for `processes` hookd processes sharing one queue prefix, each with its own state
    database beside its config (hookd's default) and its own metrics port."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    base = workdir / prefix
    base.mkdir()
    hooks_file = base / "hooks.yaml"
    entries = [{"id": h.id, "account_id": ACCOUNT, "url": h.url, "events": ["job"], "secret": h.secret} for h in hooks]
    hooks_file.write_text(yaml.safe_dump({"hooks": entries}))
    hooks_file.chmod(0o600)  # it holds secrets: hookd warns (config.permissions) otherwise
    notes: list[str] = []
    delivery: dict[str, Any] = {"allow_private_networks": True}
    if ordered is not None:
        if ordering_switch_available():
            delivery[ORDERED_DEFAULT] = ordered
        else:
            notes.append(f"no delivery.{ORDERED_DEFAULT} in this hookd: it ran unordered, its only behaviour")
    configs = []
    for index in range(processes):
        folder = base / f"p{index}"
        folder.mkdir()
        broker_section: dict[str, Any] = {
            "url": broker.urls_for(index),
            "exchange": f"{prefix}.events",
            "queue_prefix": prefix,
        }
        if broker.pinned:
            broker_section["node_order"] = "listed"
        config: dict[str, Any] = {
            "broker": broker_section,
            "subscriptions": {"source": "yaml", "path": str(hooks_file)},
            "delivery": dict(delivery),
            "logging": {"format": "json"},  # the level stays hookd's default (info: a line per attempt)
            "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        }
        for section, values in (overrides or {}).items():
            config.setdefault(section, {}).update(values)
        path = folder / "hookd.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        configs.append(path)
    settings = load_settings(configs[0], environ={})
    return RunFiles(prefix, base, hooks, configs, settings, notes)


def settings_summary(settings: Settings) -> dict[str, Any]:
    """What hookd ran with, as its loader read it (for the report): every section but credentials."""
    summary: dict[str, Any] = {
        name: dataclasses.asdict(getattr(settings, name)) for name in ("delivery", "state", "logging", "metrics")
    }
    broker = settings.broker
    summary["broker"] = {"queue_type": broker.queue_type, "prefetch": settings.prefetch, "nodes": len(broker.urls)}
    summary["state"].pop("url", None)
    plain: dict[str, Any] = json.loads(json.dumps(summary, default=str))
    return plain


def log_summary(files: RunFiles) -> dict[str, int]:
    """Counts of hookd's warning-or-worse log lines by message (each process's hookd.log), and of its
    parked deliveries by reason (`delivery.parked:<reason>`): parking is work a run should not need."""
    counts: dict[str, int] = {}
    for log in files.logs():
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


def last_error(files: RunFiles) -> str | None:
    """The last error line of any process's log (why a hookd that exited early did), shortened."""
    found = None
    for log in files.logs():
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                if '"error"' in line or '"critical"' in line or not line.startswith("{"):
                    found = line.strip()
    return found[:300] if found else None
