"""A real `hookd run` under operations: sd_notify messages, /metrics after real deliveries, /healthz.

These tests drive the daemon as systemd and Prometheus would: a fake notify socket in
$NOTIFY_SOCKET, and `metrics.listen` scraped over HTTP. They depend on the daemon calling
`hookd.sdnotify` and `hookd.metrics` (see docs/operations.md for the contract).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.bootstrap.devbroker import PrivateBroker, installed
from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, hook_entry, wait_until
from support.services import unavailable

from .conftest import OpsConfig, free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    """Every sample /metrics exposes, keyed by name and label set."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def healthz(base: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


# -- sd_notify -----------------------------------------------------------------------------------------
@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A fake systemd notification socket (a short path: AF_UNIX paths are limited to 108 bytes)."""
    path = f"/tmp/hookd-notify-{uuid.uuid4().hex[:12]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield path, sock
    sock.close()
    os.unlink(path)


def next_message(sock: socket.socket, wanted: str) -> str:
    """The next datagram containing `wanted` (others, such as WATCHDOG=1 or STATUS=, are skipped)."""
    while True:
        message = sock.recv(4096).decode()
        if wanted in message.splitlines():
            return message


def test_daemon_notifies_ready_pings_the_watchdog_and_notifies_stopping(
    ops_config: OpsConfig, hookd: HookdFactory, receiver: Receiver, notify_socket: tuple[str, socket.socket]
) -> None:
    """READY=1 once consuming, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM, then exit 0."""
    path, sock = notify_socket
    ops_config.write([hook_entry("1", receiver.url("/r"))])
    daemon = hookd.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": ""})
    assert next_message(sock, "READY=1")
    next_message(sock, "WATCHDOG=1")
    next_message(sock, "WATCHDOG=1")  # a second ping: they keep coming while it runs
    daemon.send(signal.SIGTERM)
    assert next_message(sock, "STOPPING=1")
    assert daemon.wait_exit(timeout_s=20) == 0


# -- metrics after real deliveries ---------------------------------------------------------------------
def test_metrics_show_real_deliveries_retries_and_dead_letters(
    ops_config: OpsConfig, hookd: HookdFactory, receiver: Receiver, amqp: Amqp
) -> None:
    """One event to three hooks (ok, retried then ok, refused): every metric the issue lists moves."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver.program("/flaky", 500, 500, then=200)
    receiver.program("/bad", 400)
    ops_config.write(
        [
            hook_entry("1", receiver.url("/ok"), events=["job"]),
            hook_entry("2", receiver.url("/flaky"), events=["job"]),
            hook_entry("3", receiver.url("/bad"), events=["job"]),
        ],
        delivery={"breaker_threshold": 0, "inline_attempts": 2},
        metrics={"listen": f"127.0.0.1:{port}"},
    )
    hookd.start()
    names = ops_config.names
    amqp.publish_event(names, "job.completed")
    receiver.wait_for(1, "/ok")
    receiver.wait_for(1, "/bad")
    receiver.wait_for(3, "/flaky", timeout_s=20)

    def settled() -> Samples | None:
        found = scrape(base)
        done = sample(found, "hookd_deliveries_total", event="job.completed", outcome="delivered") == 2
        return found if done else None

    found = wait_until(settled, timeout_s=15, what="two delivered deliveries in /metrics")
    event = {"event": "job.completed"}
    assert sample(found, "hookd_deliveries_total", **event, outcome="dead_lettered") == 1
    assert sample(found, "hookd_retries_scheduled_total", **event) == 1
    assert sample(found, "hookd_dead_lettered_total", **event, reason="permanent_failure") == 1
    assert sample(found, "hookd_delivery_attempts_total", **event, outcome="delivered") == 2
    assert sample(found, "hookd_delivery_attempts_total", **event, outcome="retryable") == 2
    assert sample(found, "hookd_delivery_attempts_total", **event, outcome="permanent") == 1
    durations = [v for (n, _), v in found.items() if n == "hookd_attempt_duration_seconds_count"]
    assert sum(durations) == 5
    assert sample(found, "hookd_deliveries_in_flight") == 0
    for hook_id in ("1", "2", "3"):
        assert sample(found, "hookd_hook_breaker_state", hook_id=hook_id) == 0, hook_id
    assert sample(found, "hookd_hook_success_ratio", hook_id="1") == 1.0
    assert sample(found, "hookd_hook_success_ratio", hook_id="3") == 0.0
    assert sample(found, "hookd_hook_success_ratio", hook_id="2") == pytest.approx(1 / 3)
    assert sample(found, "hookd_consumer_lag_messages", queue=names.events) is not None
    assert sample(found, "hookd_broker_connected") == 1
    status, body = healthz(base)
    assert status == 200, body
    assert body["checks"] == {"broker": "ok", "store": "ok"}


# -- health when the broker goes away ------------------------------------------------------------------
@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A RabbitMQ node of the test's own, which it may stop (needs the rabbitmq-server package and root)."""
    if not installed() or os.geteuid() != 0:
        unavailable("a private RabbitMQ node needs the rabbitmq-server package and root")
    broker = PrivateBroker(tmp_path / "rabbit")
    broker.start()
    yield broker
    broker.close()


def test_healthz_turns_unhealthy_when_the_broker_goes_away(
    private_broker: PrivateBroker, tmp_path: Path, receiver: Receiver
) -> None:
    """/healthz is 200 while connected and 503, naming the broker, once the broker is gone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    names = Names(prefix="hookd-ops-health", exchange="hookd-ops-health.events")
    config = OpsConfig(
        tmp_path / "hookd.yaml", tmp_path / "hooks.yaml", tmp_path / "state.sqlite3", private_broker.url, names
    )
    config.write(
        [hook_entry("1", receiver.url("/r"))],
        broker={"heartbeat_s": 2, "reconnect_max_s": 1},
        metrics={"listen": f"127.0.0.1:{port}"},
    )
    factory = HookdFactory(private_broker.url, names, tmp_path)
    try:
        factory.start()
        wait_until(lambda: healthz(base)[0] == 200, timeout_s=10, what="/healthz 200 while connected")
        private_broker.stop()
        status, body = wait_until(
            lambda: (answer := healthz(base))[0] == 503 and answer, timeout_s=15, what="/healthz 503 without a broker"
        )
        assert status == 503
        assert body["status"] == "unhealthy"
        assert str(body["checks"]["broker"]).startswith("error")  # type: ignore[index]
        assert body["checks"]["store"] == "ok"  # type: ignore[index]
    finally:
        factory.stop_all()
