"""What recording delivery history costs the delivery path (issue 3): the same backlog delivered
with `state.history` off, on with SQLite, and on with PostgreSQL, in one run on one broker.

For each mode: N events are published first (one hook each, so N deliveries), then `hookd run` is
started and timed from its first to its last delivery at a fast local receiver. Prints a table and
writes bench/results/history_cost.json. Not a test: nothing here asserts a time.

    .venv/bin/python bench/history_cost.py [--events 3000] [--max-in-flight 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import yaml

from hookd.broker import BrokerConnection, topology_for
from hookd.config import AMQP_URL_ENV, DEFAULT_AMQP_URL, load_settings
from hookd.publisher import EventPublisher

ROOT = Path(__file__).resolve().parent.parent
AMQP = os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL  # hookd's own default, not a copy
POSTGRES = os.environ.get("HOOKD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class Counter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    times: ClassVar[list[float]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.times.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def run_mode(
    name: str, state: dict[str, object], *, events: int, max_in_flight: int, port: int, workdir: Path
) -> dict[str, object]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    hooks = {
        "hooks": [
            {
                "id": "1",
                "account_id": "acme",
                "url": f"http://127.0.0.1:{port}/h",
                "events": ["job"],
                "secret": "s" * 32,
            }
        ]
    }
    (workdir / f"{prefix}-hooks.yaml").write_text(yaml.safe_dump(hooks))
    (workdir / f"{prefix}-hooks.yaml").chmod(0o600)  # it holds secrets: hookd warns otherwise
    config = {
        "broker": {"url": AMQP, "exchange": f"{prefix}.events", "queue_prefix": prefix},
        "subscriptions": {"source": "yaml", "path": f"{prefix}-hooks.yaml"},
        "delivery": {"max_in_flight": max_in_flight, "allow_private_networks": True, "retry_delays_s": [5]},
        "state": state,
        "logging": {"format": "json", "level": "warning"},
    }
    path = workdir / f"{prefix}.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    settings = load_settings(path, environ={})
    body = (ROOT / "config/samples/job.json").read_bytes()
    with EventPublisher(AMQP, settings.broker.exchange, topology=topology_for(settings)) as publisher:
        for _ in range(events):
            publisher.publish("job.completed", "acme", body)
    Counter.times = []
    proc = subprocess.Popen([sys.executable, "-m", "hookd", "run", "--config", str(path)], cwd=workdir)
    deadline = time.monotonic() + 300
    while len(Counter.times) < events and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.terminate()
    proc.wait(30)
    conn = BrokerConnection(AMQP, topology_for(settings))
    conn.connect(declare=False)
    conn.delete_topology()
    conn.close()
    times = sorted(Counter.times)
    elapsed = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {
        "mode": name,
        "deliveries": len(times),
        "seconds": round(elapsed, 3),
        "per_s": round((len(times) - 1) / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--max-in-flight", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        modes = [
            ("history off", {"history": False}),
            ("history on, SQLite", {"url": f"sqlite:///{workdir}/state.sqlite3"}),
            ("history on, PostgreSQL", {"url": POSTGRES}),
        ]
        for _ in range(args.rounds):
            for name, state in modes:
                results.append(
                    run_mode(
                        name, state, events=args.events, max_in_flight=args.max_in_flight, port=port, workdir=workdir
                    )
                )
                print(json.dumps(results[-1]), flush=True)
    server.shutdown()
    server.server_close()
    out = ROOT / "bench/results/history_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    best: dict[str, float] = {}
    for row in results:
        best[str(row["mode"])] = max(best.get(str(row["mode"]), 0.0), float(row["per_s"]))  # type: ignore[arg-type]
    base = best["history off"]
    print(f"\n{'mode':<26}{'deliveries/s (best)':>20}{'vs off':>10}")
    for mode, rate in best.items():
        print(f"{mode:<26}{rate:>20.1f}{rate / base:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
