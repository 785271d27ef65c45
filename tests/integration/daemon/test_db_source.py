"""A running daemon on a database source: live reload, shared stores, secrets, ping, redelivery,
status and history, and a database outage (issue 3's acceptance), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from support import services
from support.factory import HookdFactory
from support.helpers import Amqp, Receiver, config_document, signature, wait_until
from support.tcpproxy import TcpProxy


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema on the session's server, dropped afterwards."""
    with services.postgres_schema("hookd_it") as schema:
        yield schema


def _pg_url(schema: str, port: int | None = None) -> str:
    """The schema's URL; with `port`, through a proxy on 127.0.0.1:`port` instead of the server."""
    base = services.postgres_url()
    if port is not None:
        server = urlsplit(base)
        base = base.replace(server.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{port}", 1)
    return services.in_schema(base, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The hooks (and state) database of one test: an SQLite file or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hooks.sqlite3'}"
    schema: str = request.getfixturevalue("pg_schema")
    return _pg_url(schema)


def write_db_config(hookd: HookdFactory, url: str, **delivery: Any) -> Path:
    """hookd.yaml with `subscriptions.source: db` (state in the same database), fast polling."""
    doc = config_document(
        broker_url=hookd.broker_url, names=hookd.names, hooks_path=hookd.hooks_path, delivery=delivery
    )
    doc["subscriptions"] = {"source": "db", "url": url, "poll_interval_s": 0.2}
    hookd.config_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return hookd.config_path


def hooks_cli(hookd: HookdFactory, *args: str) -> dict[str, Any]:
    result = hookd.cli("hooks", *args, "--config", str(hookd.config_path), "--json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def create_hook(hookd: HookdFactory, url: str, events: str = "job,cluster") -> dict[str, Any]:
    return hooks_cli(hookd, "create", "--account", "acme", "--url", url, "--events", events)


def reloads(process: Any) -> int:
    return len(process.find("subscriptions.reloaded"))


def test_running_daemon_follows_create_update_disable_delete(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, db_url: str
) -> None:
    """A running daemon picks up each CLI change within seconds and delivers accordingly."""
    write_db_config(hookd, db_url)
    sentinel = create_hook(hookd, receiver.url("/sentinel"))
    daemon = hookd.start()

    def publish_and_settle(expected_sentinel: int) -> None:
        amqp.publish_event(hookd.names, "job.failed")
        receiver.wait_for(expected_sentinel, "/sentinel")

    def change(*args: str) -> None:
        before = reloads(daemon)
        hooks_cli(hookd, *args)
        daemon.wait_log("subscriptions.reloaded", count=before + 1, timeout_s=15)

    hook = create_hook(hookd, receiver.url("/a"), events="job.failed")
    daemon.wait_log("subscriptions.reloaded", timeout_s=15)
    publish_and_settle(1)
    assert len(receiver.wait_for(1, "/a")) == 1

    change("update", hook["id"], "--url", receiver.url("/b"))
    publish_and_settle(2)
    assert len(receiver.wait_for(1, "/b")) == 1 and len(receiver.requests("/a")) == 1

    change("update", hook["id"], "--events", "cluster")
    publish_and_settle(3)
    change("disable", hook["id"])
    publish_and_settle(4)
    change("enable", hook["id"])
    change("update", hook["id"], "--events", "job")
    publish_and_settle(5)
    assert len(receiver.wait_for(2, "/b")) == 2
    change("delete", hook["id"])
    publish_and_settle(6)
    assert len(receiver.requests("/b")) == 2, "deleted, disabled or unsubscribed hooks got events"
    assert sentinel["id"] != hook["id"]


def test_two_daemons_sharing_postgresql_both_see_changes(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, pg_schema: str
) -> None:
    """Two workers on one PostgreSQL store both reload a change and share the deliveries."""
    write_db_config(hookd, _pg_url(pg_schema))
    first, second = hookd.start(), hookd.start()
    create_hook(hookd, receiver.url("/shared"))
    first.wait_log("subscriptions.reloaded", timeout_s=15)
    second.wait_log("subscriptions.reloaded", timeout_s=15)
    for _ in range(20):
        amqp.publish_event(hookd.names, "job.completed")
    assert len(receiver.wait_for(20, "/shared")) >= 20


def test_reset_secret_changes_the_signing_key_of_the_next_delivery(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, db_url: str
) -> None:
    """After reset-secret the next delivery is signed with the new secret, not the old one."""
    write_db_config(hookd, db_url)
    hook = create_hook(hookd, receiver.url("/rot"))
    daemon = hookd.start()
    amqp.publish_event(hookd.names, "job.started")
    first = receiver.wait_for(1, "/rot")[0]
    assert first.header("X-Hook-Signature") == signature(hook["secret"], first.body)

    before = reloads(daemon)
    rotated = hooks_cli(hookd, "reset-secret", hook["id"])
    daemon.wait_log("subscriptions.reloaded", count=before + 1, timeout_s=15)
    amqp.publish_event(hookd.names, "job.started")
    second = receiver.wait_for(2, "/rot")[1]
    assert rotated["secret"] != hook["secret"]
    assert second.header("X-Hook-Signature") == signature(rotated["secret"], second.body)


def test_ping_reaches_the_hook_signed_without_its_secret(hookd: HookdFactory, receiver: Receiver, db_url: str) -> None:
    """`hookd hooks ping` delivers a signed ping whose body carries the hook but not its secret."""
    write_db_config(hookd, db_url)
    hook = create_hook(hookd, receiver.url("/ping"))
    hookd.start()
    hooks_cli(hookd, "ping", hook["id"])
    got = receiver.wait_for(1, "/ping")[0]
    assert got.event == "ping"
    assert got.header("X-Hook-Signature") == signature(hook["secret"], got.body)
    assert hook["secret"].encode() not in got.body
    assert json.loads(got.body)["id"] == hook["id"]


def _delivery_rows(hookd: HookdFactory, *args: str) -> list[dict[str, Any]]:
    result = hookd.cli("deliveries", "list", *args, "--config", str(hookd.config_path), "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_redeliver_resends_with_the_same_delivery_id(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, db_url: str
) -> None:
    """`deliveries redeliver` sends the stored body again with the same X-Hook-Delivery."""
    write_db_config(hookd, db_url)
    create_hook(hookd, receiver.url("/again"))
    hookd.start()
    amqp.publish_event(hookd.names, "cluster.idled", b'{"id": 99, "status": "idle"}')
    first = receiver.wait_for(1, "/again")[0]
    rows = wait_until(lambda: _delivery_rows(hookd) or None, timeout_s=10)
    result = hookd.cli("deliveries", "redeliver", rows[0]["delivery_id"], "--config", str(hookd.config_path))
    assert result.returncode == 0, result.stderr
    second = receiver.wait_for(2, "/again")[1]
    assert second.delivery == first.delivery == rows[0]["delivery_id"]
    assert second.body == first.body
    assert second.attempt == first.attempt + 1


def test_status_and_history_reflect_success_retry_and_failure(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, db_url: str
) -> None:
    """Delivery rows, attempt logs and per-event status show delivered, retried and failed deliveries."""
    write_db_config(hookd, db_url, retry_delays_s=[1])
    ok = create_hook(hookd, receiver.url("/ok"), events="job.failed")
    flaky = create_hook(hookd, receiver.url("/flaky"), events="job.failed")
    broken = create_hook(hookd, receiver.url("/broken"), events="job.failed")
    receiver.program("/flaky", 500, 500, then=200)
    receiver.program("/broken", 404, then=404)
    hookd.start()
    amqp.publish_event(hookd.names, "job.failed")
    receiver.wait_for(3, "/flaky", timeout_s=20)

    def settled() -> dict[str, dict[str, Any]] | None:
        rows = {row["hook_id"]: row for row in _delivery_rows(hookd)}
        done = len(rows) == 3 and rows.get(flaky["id"], {}).get("state") == "delivered"
        return rows if done and rows[broken["id"]]["state"] == "failed" else None

    rows = wait_until(settled, timeout_s=15)
    assert rows[ok["id"]]["state"] == "delivered" and rows[ok["id"]]["attempts"] == 1
    assert rows[flaky["id"]]["attempts"] == 3
    assert rows[broken["id"]]["last_status"] == 404

    shown = hookd.cli(
        "deliveries", "show", rows[flaky["id"]]["delivery_id"], "--config", str(hookd.config_path), "--json"
    )
    assert shown.returncode == 0, shown.stderr
    log = json.loads(shown.stdout)["attempt_log"]
    assert [a["status"] for a in log] == [500, 500, 200]

    status = hooks_cli(hookd, "show", broken["id"])["statuses"]
    failed = next(s for s in status if s["name"] == "job.failed")
    assert failed["last_trigger_status"] == "failure" and failed["last_response_code"] == 404
    status = hooks_cli(hookd, "show", ok["id"])["statuses"]
    assert next(s for s in status if s["name"] == "job.failed")["last_trigger_status"] == "success"


def test_database_outage_mid_run_loses_no_event(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, pg_schema: str
) -> None:
    """With PostgreSQL cut off, the daemon keeps its hooks, delivers every event and recovers."""
    server = urlsplit(services.postgres_url())
    proxy = TcpProxy((server.hostname or "127.0.0.1", server.port or 5432))
    try:
        write_db_config(hookd, _pg_url(pg_schema, proxy.port))
        create_hook(hookd, receiver.url("/outage"))
        daemon = hookd.start()
        proxy.cut()
        daemon.wait_log("subscriptions.unavailable", timeout_s=10)
        event_ids = {amqp.publish_event(hookd.names, "job.completed") for _ in range(30)}
        got = receiver.wait_for(30, "/outage", timeout_s=20)
        assert {json.loads(g.body).get("id") for g in got} == {1}
        assert len({g.delivery for g in got}) == len(event_ids)
        assert amqp.message_count(hookd.names.dead) == 0
        proxy.restore()
        daemon.wait_log("subscriptions.available", timeout_s=10)
    finally:
        proxy.close()
