"""A PostgreSQL failover under a running daemon (issue 12): hookd's store and state are configured with
one libpq multi-host URL naming a primary and its streaming standby; the primary dies, the standby is
promoted, and hookd carries on with the same config: the CLI writes to the new primary, the daemon
reloads from it and records history there, and it never exits."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hookd.testing import services
from hookd.testing.devbroker import HOST
from hookd.testing.postgres import DATABASE, PrivatePostgres

from .conftest import HookdFactory
from .helpers import Amqp, Receiver, signature, wait_until
from .test_db_source import create_hook, reloads, write_db_config

pytestmark = pytest.mark.integration


@pytest.fixture
def replicated() -> Iterator[tuple[PrivatePostgres, PrivatePostgres]]:
    """A private primary and its streaming standby, stopped and deleted afterwards; without the
    PostgreSQL server binaries the test is skipped (failed under CI=true)."""
    try:
        services.ensure_postgres_installed()
    except services.ServiceUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
    with PrivatePostgres() as primary, PrivatePostgres.standby_of(primary) as standby:
        yield primary, standby


def multi_host_url(*servers: PrivatePostgres) -> str:
    """What an operator writes for a replicated PostgreSQL: every host, and "connect to the writable one"."""
    hosts = ",".join(f"{HOST}:{server.port}" for server in servers)
    return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"


def wait_replayed(primary: PrivatePostgres, standby: PrivatePostgres) -> None:
    """Wait until the standby replayed everything the primary has written so far: replication is
    asynchronous, and a crash loses what was not streamed yet (here: the hook made before it)."""
    with psycopg.connect(primary.url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    assert row is not None
    with psycopg.connect(standby.url, autocommit=True) as conn:

        def replayed() -> bool:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)).fetchone()
            return done is not None and bool(done[0])

        wait_until(replayed, timeout_s=10, what="the standby to replay the primary's WAL")


def hook_rows(server: PrivatePostgres, hook_id: str) -> int:
    with psycopg.connect(server.url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM hookd_hooks WHERE id = %s", (hook_id,)).fetchone()
    return int(row[0]) if row else 0


def deliveries_of(hookd: HookdFactory, event_id: str) -> dict[str, dict[str, Any]] | None:
    """The recorded deliveries of one event by hook id (`hookd deliveries list` through the same URL)."""
    result = hookd.cli("deliveries", "list", "--config", str(hookd.config_path), "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return {row["hook_id"]: row for row in rows if row["event_id"] == event_id} or None


def test_failover_reaches_a_running_daemon_and_the_cli_without_a_config_change(
    hookd: HookdFactory, amqp: Amqp, receiver: Receiver, replicated: tuple[PrivatePostgres, PrivatePostgres]
) -> None:
    """After the primary crashes and its standby is promoted, the same multi-host URL serves the CLI,
    the running daemon's reload and its history; deliveries go on throughout; the daemon never exits."""
    primary, standby = replicated
    write_db_config(hookd, multi_host_url(primary, standby))
    before = create_hook(hookd, receiver.url("/before"))
    daemon = hookd.start()
    amqp.publish_event(hookd.names, "job.started")
    got = receiver.wait_for(1, "/before")[0]
    assert got.header("X-Hook-Signature") == signature(before["secret"], got.body)
    wait_replayed(primary, standby)

    crashed = time.monotonic()
    primary.kill()
    daemon.wait_log("subscriptions.unavailable", timeout_s=10)
    noticed = time.monotonic()
    amqp.publish_event(hookd.names, "job.started")  # neither server takes writes now: hooks are kept
    receiver.wait_for(2, "/before")

    standby.promote()
    promoted = time.monotonic()
    daemon.wait_log("subscriptions.available", timeout_s=10)
    available = time.monotonic()
    reloaded = reloads(daemon)
    after = create_hook(hookd, receiver.url("/after"))
    assert hook_rows(standby, after["id"]) == 1, "the new hook is not on the promoted standby"
    daemon.wait_log("subscriptions.reloaded", count=reloaded + 1, timeout_s=10)
    picked_up = time.monotonic()

    event_id = amqp.publish_event(hookd.names, "job.completed")
    old, new = receiver.wait_for(3, "/before")[2], receiver.wait_for(1, "/after")[0]
    assert old.header("X-Hook-Signature") == signature(before["secret"], old.body)
    assert new.header("X-Hook-Signature") == signature(after["secret"], new.body)
    recorded = wait_until(
        lambda: deliveries_of(hookd, event_id) if len(deliveries_of(hookd, event_id) or ()) == 2 else None,
        timeout_s=10,
        what="both post-failover deliveries in the history",
    )
    assert {row["state"] for row in recorded.values()} == {"delivered"}
    assert recorded[after["id"]]["delivery_id"] == new.delivery
    assert daemon.process.poll() is None, daemon.tail()
    print(
        f"failover: unavailable {noticed - crashed:.2f} s after the crash, available {available - promoted:.2f} s "
        f"after the promotion, a hook created then loaded {picked_up - available:.2f} s later"
    )
