"""Ordered delivery on a real three-node RabbitMQ cluster: three workers, each on its own node, share
the partitions; the node one of them uses stops mid-stream; no job's events reach the receiver out of
order, and none is lost (issue 19's acceptance)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.helpers import hookd_command, subprocess_env, wait_until
from support.order_receiver import LIFECYCLE, OrderReceiver, order_receiver

from hookd.broker import topology_for
from hookd.config import load_settings
from hookd.publisher import EventPublisher

pytestmark = pytest.mark.cluster
__all__ = ["order_receiver"]  # the fixture, used below

ACCOUNT = "acme"
PARTITIONS = 6


class Ordered:
    """One test's topology, hooks file, and workers each preferring its own node of the cluster."""

    def __init__(self, cluster: Any, folder: Path, receiver: OrderReceiver) -> None:
        self.cluster = cluster
        self.folder = folder
        self.receiver = receiver
        token = uuid.uuid4().hex[:8]
        self.prefix, self.exchange = f"hookd-co-{token}", f"hookd-co-{token}.events"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        hooks = [{"id": "1", "account_id": ACCOUNT, "url": receiver.url(), "events": ["job"], "secret": "s" * 24}]
        self.hooks_path = folder / "hooks.yaml"
        self.hooks_path.write_text(yaml.safe_dump({"hooks": hooks}), encoding="utf-8")

    def config(self, first_node: int) -> Path:
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
                "partitions": PARTITIONS,
            },
            "subscriptions": {"source": "yaml", "path": str(self.hooks_path)},
            "delivery": {"allow_private_networks": True, "retry_delays_s": [1], "timeout_s": 5, "drain_timeout_s": 5},
            "state": {"url": f"sqlite:///{self.folder / 'state.sqlite3'}"},
            "logging": {"format": "json", "level": "info"},
        }
        path = self.folder / f"hookd-{first_node}.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        path.chmod(0o600)
        return path

    def start_worker(self, first_node: int) -> None:
        log = self.folder / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            self.workers.append(
                subprocess.Popen(
                    hookd_command("run", "--config", str(self.config(first_node))),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=subprocess_env(),
                )
            )
        self.logs.append(log)

    def owned(self, index: int) -> set[int]:
        """The partitions worker `index` owns now, by its log."""
        owned: set[int] = set()
        for line in self.logs[index].read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("msg") == "partition.claimed":
                    owned.add(int(entry["partition"]))
                elif entry.get("msg") == "partition.releasing":
                    owned.discard(int(entry["partition"]))
        return owned

    def publish_jobs(self, jobs: range) -> None:
        settings = load_settings(self.config(0))
        with EventPublisher(list(self.cluster.urls), self.exchange, topology=topology_for(settings)) as publisher:
            for job in jobs:
                for event in LIFECYCLE:
                    publisher.publish(event, ACCOUNT, {"id": job, "status": event})

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def ordered(cluster: Any, tmp_path: Path, order_receiver: Callable[..., OrderReceiver]) -> Iterator[Ordered]:
    receiver = order_receiver(failure_rate=0.05, seed=5)
    made = Ordered(cluster, tmp_path, receiver)
    yield made
    made.close()
    for index, node in enumerate(cluster.nodes):
        if not node.running:
            cluster.start_node(index)


def test_three_workers_on_three_nodes_keep_every_jobs_order_through_a_lost_node(ordered: Ordered) -> None:
    """Workers on nodes 0, 1 and 2 own two partitions each; the node worker 0 uses stops while 300
    jobs x 3 events flow; every event first reaches the receiver in its job's order, none is lost."""
    receiver = ordered.receiver
    for node in range(3):
        ordered.start_worker(node)
    wait_until(
        lambda: sorted(len(ordered.owned(w)) for w in range(3)) == [2, 2, 2],
        timeout_s=90,
        what=lambda: f"two partitions per worker, got {[sorted(ordered.owned(w)) for w in range(3)]}",
    )
    ordered.publish_jobs(range(150))
    receiver.wait_delivered(150, timeout_s=60)
    ordered.cluster.stop_node(0)
    ordered.publish_jobs(range(150, 300))
    receiver.wait_delivered(900, timeout_s=240)
    assert receiver.out_of_order(range(300)) == []
    assert ordered.workers[0].poll() is None, "the worker whose node stopped exited"
