"""`hookd status` against real services: two `hookd run` workers on a real broker and a shared state
database, a hook failing, a hook gone (disabled, its deliveries dead-lettered), one worker stopped."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.helpers import Amqp, HookdProcess, Names, Receiver, free_port, hook_entry, wait_until

from hookd.broker import topology_for
from hookd.config import load_settings
from hookd.publisher import EventPublisher

from .conftest import Cli, OpsConfig

#: A short first retry, then a long one: hook 2's deliveries end up waiting in the 300 s retry queue.
DELAYS_S = [1, 300]


@pytest.fixture
def workers(prefix: Names, tmp_path: Path) -> Iterator[list[HookdProcess]]:
    """`hookd run` processes the test starts; stopped (SIGTERM, then kill) before its queues go."""
    started: list[HookdProcess] = []
    prefix.retry_delays_s.update(DELAYS_S)
    yield started

    def stop() -> None:
        for process in started:
            process.stop()

    prefix.before_delete.append(stop)


def start(config: OpsConfig, workdir: Path, started: list[HookdProcess]) -> HookdProcess:
    process = HookdProcess(config.path, workdir)
    started.append(process)
    process.wait_log("broker.connected")
    return process


def status(cli: Cli, config: OpsConfig) -> tuple[int, dict[str, Any]]:
    result = cli("status", "--config", str(config.path), "--json")
    return result.code, json.loads(result.out)


def test_status_shows_failing_and_disabled_hooks_dead_letters_and_a_stopped_worker(
    ops_config: OpsConfig, receiver: Receiver, amqp: Amqp, workers: list[HookdProcess], cli: Cli
) -> None:
    """Degraded (exit 1): hook 2's circuit open with its 503 in plain words, hook 3 disabled as gone,
    the dead letters by reason, the oldest waiting delivery, and the stopped worker among the others."""
    prefix = ops_config.names
    receiver.program("/down", then=503)
    receiver.program("/gone", then=410)
    hooks = [
        hook_entry("1", receiver.url("/ok"), events=["job"]),
        hook_entry("2", receiver.url("/down"), events=["job"]),
        hook_entry("3", receiver.url("/gone"), events=["job"]),
    ]
    # One failed attempt opens a circuit: a worker counts only its own attempts, and with two workers
    # the next attempt at a hook may be the other's.
    delivery = {"retry_delays_s": DELAYS_S, "inline_attempts": 1, "breaker_threshold": 1, "breaker_cooldown_s": 300}
    ops_config.write(hooks, delivery=delivery, metrics={"listen": f"127.0.0.1:{free_port()}"})
    first = start(ops_config, ops_config.path.parent, workers)
    ops_config.write(hooks, delivery=delivery, metrics={"listen": f"127.0.0.1:{free_port()}"})
    second = start(ops_config, ops_config.path.parent, workers)
    for job in range(3):  # three jobs: three entities, none waiting behind another
        amqp.publish_event(prefix, "job.failed", {"id": job})

    last: list[dict[str, Any]] = [{}]

    def troubled() -> dict[str, Any] | None:
        code, report = status(cli, ops_config)
        last[0] = report
        hooks = {h["hook_id"]: h for h in report["hooks"]}
        live = [w for w in report["workers"] if w["state"] == "live" and w["node"]]
        ready = code == 1 and hooks.get("2", {}).get("circuit") in ("open", "half_open") and "3" in hooks
        ready = ready and report["dead_letters_last_hour"]["total"] >= 1 and report["oldest_waiting"] and len(live) == 2
        return report if ready else None

    report = wait_until(
        troubled, timeout_s=45, what=lambda: f"hooks 2 and 3 in trouble, a dead letter, two live workers: {last[0]}"
    )
    hooks_seen = {h["hook_id"]: h for h in report["hooks"]}
    assert "1" not in hooks_seen
    assert hooks_seen["2"]["last_error"].startswith("the receiver answered 503 Service Unavailable")
    assert hooks_seen["3"]["notice"] == "disabled" and hooks_seen["3"]["reason"] == "gone"
    assert hooks_seen["3"]["last_error"].startswith("the receiver answered 410 Gone")
    # hook 3's first 410 on each worker is dead-lettered (hook_gone); later events skip the disabled hook
    assert set(report["dead_letters_last_hour"]["by_reason"]) <= {"hook_gone", "hook_disabled"}
    assert report["oldest_waiting"]["hook_id"] == "2"
    assert any(p.startswith("hook 3: disabled (gone)") for p in report["problems"])
    dead = {q["name"]: q for q in report["queues"]}[prefix.dead]["messages"]
    assert dead >= 1  # read, not taken: once the broker has taken back what status read, all are still there
    wait_until(lambda: amqp.message_count(prefix.dead) >= dead, what=f"{dead} dead letters back in {prefix.dead}")

    second.send(signal.SIGTERM)
    assert second.wait_exit() == 0

    def one_left() -> dict[str, Any] | None:
        code, report = status(cli, ops_config)
        consuming = {row["queue"]: row for row in report["consuming"]}
        states = sorted(w["state"] for w in report["workers"])
        return (
            report
            if code == 1 and consuming[prefix.events]["consumers"] == 1 and states == ["live", "stopped"]
            else None
        )

    report = wait_until(one_left, timeout_s=15, what="one worker consuming, the other stopped")
    by_node = {row["queue"]: row["workers_by_node"] for row in report["consuming"]}
    assert sum(by_node[prefix.events].values()) == 1 and sum(by_node[prefix.deliveries].values()) == 1
    assert first.process.poll() is None

    screen = cli("status", "--config", str(ops_config.path))
    assert screen.code == 1
    assert screen.out.startswith("hookd status: DEGRADED")
    for needle in ("Hooks in trouble", "circuit", "disabled (gone)", "Dead letters in the last hour", "stopped"):
        assert needle in screen.out, needle


def test_status_is_healthy_when_every_queue_is_consumed_and_nothing_fails(
    ops_config: OpsConfig, receiver: Receiver, amqp: Amqp, workers: list[HookdProcess], cli: Cli
) -> None:
    """Exit 0, no problems, the worker consuming both queues through its broker node."""
    prefix = ops_config.names
    ops_config.write([hook_entry("1", receiver.url("/ok"), events=["job"])])
    start(ops_config, ops_config.path.parent, workers)
    amqp.publish_event(prefix, "job.completed")
    receiver.wait_for(1)

    def healthy() -> dict[str, Any] | None:
        code, report = status(cli, ops_config)
        return report if code == 0 and report["workers"] and report["workers"][0]["node"] else None

    report = wait_until(healthy, timeout_s=20, what="a healthy status with the worker's heartbeat")
    assert report["status"] == "healthy" and report["problems"] == []
    node = report["workers"][0]["node"]
    assert {row["queue"]: row["workers_by_node"] for row in report["consuming"]} == {
        prefix.events: {node: 1},
        prefix.deliveries: {node: 1},
    }
    assert report["dead_letters_last_hour"] == {"total": 0, "by_reason": {}}


def test_status_exits_3_when_the_broker_is_unreachable_and_2_on_bad_arguments(ops_config: OpsConfig, cli: Cli) -> None:
    """A broker that refuses connections is exit 3 with the reason; no --config or a missing file is 2."""
    ops_config.write([], broker={"url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", "connect_timeout_s": 2})
    result = cli("status", "--config", str(ops_config.path), "--json")
    assert result.code == 3
    report = json.loads(result.out)
    assert report["status"] == "unreachable" and report["unreachable"][0].startswith("broker ")
    assert cli("status").code == 2
    assert cli("status", "--config", str(ops_config.path.parent / "missing.yaml")).code == 2


def test_status_exits_3_when_the_state_database_is_unreachable_and_names_it(ops_config: OpsConfig, cli: Cli) -> None:
    """The broker answers (hookd's queues declared), PostgreSQL refuses connections: exit 3, one line
    naming the state database once, `unreachable` in --json naming it and not the broker, whose
    queues are still shown."""
    ops_config.write([])
    state_url = f"postgresql://hookd@127.0.0.1:{free_port()}/test"
    doc = yaml.safe_load(ops_config.path.read_text(encoding="utf-8"))
    doc["state"] = {"url": state_url}
    ops_config.path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    settings = load_settings(ops_config.path)
    with EventPublisher(list(settings.broker.urls), settings.broker.exchange, topology=topology_for(settings)):
        pass  # declares hookd's queues, as a first `hookd run` would: the broker's part is all there

    result = cli("status", "--config", str(ops_config.path), "--json")
    assert result.code == 3, result.out + result.err
    report = json.loads(result.out)
    assert report["status"] == "unreachable"
    (line,) = report["unreachable"]
    assert line.startswith(f"state database {state_url}: ") and line.count(state_url) == 1
    assert "connect" in line and "\n" not in line
    queues = {q["name"]: q for q in report["queues"]}
    assert queues[ops_config.names.events]["messages"] == 0 and queues[ops_config.names.dead]["messages"] == 0

    screen = cli("status", "--config", str(ops_config.path))
    assert screen.code == 3
    assert screen.out.startswith("hookd status: UNREACHABLE")
    assert [row for row in screen.out.splitlines() if "state database" in row] == [f"  ! {line}"]


def test_status_before_any_worker_declared_the_queues_is_degraded_not_unreachable(
    ops_config: OpsConfig, cli: Cli
) -> None:
    """A broker that answers but holds none of hookd's queues (no worker ever started on the prefix):
    exit 1, every queue shown missing and the events queue's absence a problem; the broker is not
    called unreachable."""
    ops_config.write([])
    result = cli("status", "--config", str(ops_config.path), "--json")
    report = json.loads(result.out)
    assert result.code == 1, report
    assert report["status"] == "degraded" and report["unreachable"] == []
    assert {q["messages"] for q in report["queues"]} == {None}
    assert f"{ops_config.names.events} does not exist: no worker ever started on this prefix" in report["problems"]
