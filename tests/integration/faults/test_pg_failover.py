"""A PostgreSQL failover under hookd (issue 12): the store and state are configured with one libpq
multi-host URL naming a primary and its streaming standby; the primary dies, the standby is promoted,
and hookd carries on with the same config: the CLI writes to the new primary, the running daemon
reloads from it and records history there, and it never exits. A primary whose machine vanishes
(no reset, no refusal) costs a pooled connection seconds, not TCP's minutes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.bootstrap import services
from support.bootstrap.devbroker import HOST
from support.bootstrap.postgres import DATABASE, PrivatePostgres
from support.factory import HookdFactory
from support.helpers import Amqp, Receiver, signature, wait_until
from support.services import need, unavailable

from hookd.state.db import CONNECT_TIMEOUT_S, TCP_USER_TIMEOUT_MS
from integration.daemon.test_db_source import create_hook, reloads, write_db_config

VANISH = Path(__file__).with_name("vanish.py")
TESTS = Path(__file__).resolve().parents[2]


def need_postgres_server() -> None:
    """The PostgreSQL server binaries are there (installed first when root), else skip or fail."""
    need(services.ensure_postgres_installed)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The recording receiver of tests/integration (this suite's own `receiver` misbehaves on purpose)."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def replicated() -> Iterator[tuple[PrivatePostgres, PrivatePostgres]]:
    """A private primary and its streaming standby, stopped and deleted afterwards."""
    need_postgres_server()
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


def deliveries_of(hookd: HookdFactory, event_id: str, count: int) -> dict[str, dict[str, Any]]:
    """The recorded deliveries of one event by hook id (`hookd deliveries list` through the same URL),
    once there are `count` of them (none before)."""
    result = hookd.cli("deliveries", "list", "--config", str(hookd.config_path), "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    found = {row["hook_id"]: row for row in rows if row["event_id"] == event_id}
    return found if len(found) >= count else {}


def logged_at(entries: list[dict[str, Any]]) -> float:
    """When the daemon wrote the first of these log lines (its `ts`), as a Unix time."""
    return datetime.fromisoformat(entries[0]["ts"]).timestamp()


def test_failover_reaches_a_running_daemon_and_the_cli_without_a_config_change(
    replicated: tuple[PrivatePostgres, PrivatePostgres], hookd: HookdFactory, amqp: Amqp, receiver: Receiver
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

    crashed = time.time()
    primary.kill()
    unavailable_at = logged_at(daemon.wait_log("subscriptions.unavailable", timeout_s=10))
    amqp.publish_event(hookd.names, "job.started")  # no server takes writes now: the hooks are kept
    receiver.wait_for(2, "/before")

    standby.promote()
    promoted = time.time()
    available_at = logged_at(daemon.wait_log("subscriptions.available", timeout_s=10))
    reloaded = reloads(daemon)
    creating = time.time()
    after = create_hook(hookd, receiver.url("/after"))
    assert hook_rows(standby, after["id"]) == 1, "the new hook is not on the promoted standby"
    entries = daemon.wait_log("subscriptions.reloaded", count=reloaded + 1, timeout_s=10)
    loaded_at = datetime.fromisoformat(entries[reloaded]["ts"]).timestamp()

    event_id = amqp.publish_event(hookd.names, "job.completed")
    old, new = receiver.wait_for(3, "/before")[2], receiver.wait_for(1, "/after")[0]
    assert old.header("X-Hook-Signature") == signature(before["secret"], old.body)
    assert new.header("X-Hook-Signature") == signature(after["secret"], new.body)
    recorded = wait_until(
        lambda: deliveries_of(hookd, event_id, count=2), timeout_s=10, what="both deliveries in the history"
    )
    assert {row["state"] for row in recorded.values()} == {"delivered"}
    assert recorded[after["id"]]["delivery_id"] == new.delivery
    assert daemon.process.poll() is None, f"hookd exited during the failover:\n{daemon.tail()}"
    daemon.send(signal.SIGTERM)
    assert daemon.wait_exit() == 0, daemon.tail()
    print(
        f"failover: after the crash, hookd saw no writable server at {unavailable_at - crashed:.2f} s and the "
        f"promoted one at {available_at - crashed:.2f} s (promote() returned at {promoted - crashed:.2f} s); "
        f"a hook created then was loaded {loaded_at - creating:.2f} s after `hookd hooks create` started"
    )


def test_a_vanished_primary_costs_a_pooled_connection_seconds_not_minutes() -> None:
    """With the primary's address gone (a dead machine: nothing resets or refuses) and the standby
    promoted, a transaction on a pooled connection to the old primary gives up within the TCP user
    timeout and runs on the new primary; none after it waits on another dead pooled connection."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        unavailable("a network namespace of its own needs root, unshare and ip (iproute2)")
    need_postgres_server()
    command = ["unshare", "--net", "--", sys.executable, str(VANISH)]
    env = {**os.environ, "PYTHONPATH": str(TESTS)}  # vanish.py imports the test tree's `support`
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = process.communicate(timeout=90)  # vanish.py gives up by itself well before
    except subprocess.TimeoutExpired:
        process.terminate()  # vanish.py stops its servers on SIGTERM
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err[-3000:]
    calls = json.loads(out.splitlines()[-1])["calls"]
    first, rest = calls[0], calls[1:]
    # Seconds, not minutes: the dead connection is given up after the TCP user timeout, then one
    # connect attempt per host (the vanished one costs its connect timeout); the rest is slack for a
    # busy machine. Without the user timeout, TCP would retransmit for some fifteen minutes.
    bound_s = TCP_USER_TIMEOUT_MS / 1000 + CONNECT_TIMEOUT_S + 15
    assert first["outcome"] == "ok" and first["took_s"] < bound_s, calls
    # The pool kept no other connection to the vanished primary: one would cost a whole user timeout.
    reused_dead = TCP_USER_TIMEOUT_MS / 1000
    assert [c["outcome"] for c in rest] == ["ok"] * len(rest) and all(c["took_s"] < reused_dead for c in rest), calls
    slowest = max((c["took_s"] for c in rest), default=0.0)
    print(f"vanished primary: the first transaction took {first['took_s']:.1f} s, the next {slowest:.2f} s at most")
