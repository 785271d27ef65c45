"""`hookd run` workers on the private three-node cluster (support.bootstrap.cluster), for the cluster
suites: one test's topology (a unique queue prefix and exchange), its hooks file, a config per worker
listing the nodes from the one it should prefer, the workers' JSON logs, and their stop."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from hookd.broker import topology_for
from hookd.config import load_settings
from hookd.publisher import EventPublisher

from .bootstrap.cluster import RabbitCluster
from .helpers import hookd_command, subprocess_env


class ClusterWorkers:
    """Workers of one test; `hooks` are the hooks file's entries, `state` its state section."""

    def __init__(
        self,
        cluster: RabbitCluster,
        folder: Path,
        hooks: list[dict[str, Any]],
        *,
        tag: str,
        partitions: int,
        state: dict[str, Any],
    ) -> None:
        self.cluster = cluster
        self.folder = folder
        token = uuid.uuid4().hex[:8]
        self.prefix, self.exchange = f"hookd-{tag}-{token}", f"hookd-{tag}-{token}.events"
        self._partitions = partitions
        self._state = state
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.hooks_path = folder / "hooks.yaml"
        self.hooks_path.write_text(yaml.safe_dump({"hooks": hooks}), encoding="utf-8")

    def config(self, first_node: int) -> Path:
        """hookd.yaml listing the nodes starting with `first_node`, in that order."""
        urls = self.cluster.urls[first_node:] + self.cluster.urls[:first_node]
        doc = {
            "broker": {
                "url": urls,
                "node_order": "listed",
                "exchange": self.exchange,
                "queue_prefix": self.prefix,
                "reconnect_max_s": 1,
                "connect_timeout_s": 3,
                "heartbeat_s": 5,
                "partitions": self._partitions,
            },
            "subscriptions": {"source": "yaml", "path": str(self.hooks_path)},
            "delivery": {"allow_private_networks": True, "retry_delays_s": [1], "timeout_s": 5, "drain_timeout_s": 5},
            "state": {**self._state, "url": f"sqlite:///{self.folder / 'state.sqlite3'}"},
            "logging": {"format": "json", "level": "info"},
        }
        path = self.folder / f"hookd-{first_node}.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        path.chmod(0o600)
        return path

    def start_worker(self, first_node: int) -> int:
        """Start `hookd run` preferring node `first_node`; its index (it may not consume yet)."""
        log = self.folder / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                hookd_command("run", "--config", str(self.config(first_node))),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=subprocess_env(),
            )
        self.workers.append(process)
        self.logs.append(log)
        return len(self.workers) - 1

    def log_entries(self, index: int) -> list[dict[str, Any]]:
        """Worker `index`'s JSON log lines so far."""
        entries = []
        for line in self.logs[index].read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def publisher(self, first_node: int = 0) -> EventPublisher:
        """A publisher declaring hookd's queues, on the nodes (its own order: shuffled)."""
        settings = load_settings(self.config(first_node))
        return EventPublisher(list(self.cluster.urls), self.exchange, topology=topology_for(settings))

    def close(self) -> None:
        """Stop the workers this test started (TERM, then KILL after 20 s), by their process."""
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
