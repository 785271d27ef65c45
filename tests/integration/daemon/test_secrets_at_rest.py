"""Secrets at rest end to end (issue 14): a real `hookd run` on the real broker signs with secrets the
database stores encrypted, before and after `hookd secrets encrypt`; nothing in the SQLite files or a
pg_dump reveals them; a wrong key stops `hookd run` and `hookd serve` with exit 2, changing nothing."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from support import services
from support.factory import HookdFactory
from support.helpers import Amqp, Receiver, config_document, hookd_command, signature, subprocess_env
from support.services import require_pg_dump

from hookd.cipher import key_id, new_key_file

PASSWORD = "basic-pw-7d1c9e0b4a"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema on the session's server, dropped afterwards."""
    with services.postgres_schema("hookd_sec") as schema:
        yield schema


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(database URL, PostgreSQL schema or None): an SQLite file or a schema of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hooks.sqlite3'}", None
    schema: str = request.getfixturevalue("pg_schema")
    return services.in_schema(services.postgres_url(), schema), schema


def write_config(folder: Path, url: str, name: str, key_file: Path | None, hookd: HookdFactory | None = None) -> Path:
    """A db-source config (state in the same database), fast polling, `secrets.key_file` as given; with
    `hookd`, on that test's broker topology."""
    doc: dict[str, Any] = {}
    if hookd is not None:
        doc = config_document(broker_url=hookd.broker_url, names=hookd.names, hooks_path=hookd.hooks_path)
    doc["subscriptions"] = {"source": "db", "url": url, "poll_interval_s": 0.2}
    doc["secrets"] = {"key_file": None if key_file is None else str(key_file)}
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def cli(folder: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        hookd_command(*args, "--config", str(config)),
        cwd=folder,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def cli_json(folder: Path, config: Path, *args: str) -> Any:
    done = cli(folder, config, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def new_key(folder: Path, name: str) -> Path:
    """A key file made in process (`hookd secrets new-key` itself is tested in tests/integration/cli)."""
    path = folder / name
    new_key_file(path)
    return path


def stored_rows(url: str, schema: str | None) -> list[tuple[Any, ...]]:
    """The hooks table as stored, read around hookd (sqlite3 / psycopg directly)."""
    query = "SELECT * FROM hookd_hooks ORDER BY id"
    if schema is None:
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(services.postgres_url()) as conn:
        return conn.execute(f'SELECT * FROM "{schema}".hookd_hooks ORDER BY id').fetchall()


def at_rest(url: str, schema: str | None) -> bytes:
    """Everything a copy of the database would show: the SQLite file with its -wal and -shm, or a pg_dump."""
    if schema is None:
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    require_pg_dump()
    dump = subprocess.run(
        ["pg_dump", "--schema", schema, services.postgres_url()], capture_output=True, timeout=60, check=False
    )
    assert dump.returncode == 0, dump.stderr
    return dump.stdout


def assert_signed(request: Any, secret: str) -> None:
    assert request.header("X-Hook-Signature") == signature(secret, request.body)
    expected = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    assert request.header("Authorization") == f"Basic {expected}"


def test_deliveries_are_signed_with_secrets_stored_encrypted(
    backend: tuple[str, str | None], hookd: HookdFactory, amqp: Amqp, receiver: Receiver
) -> None:
    """Signed right before and after `secrets encrypt` under a running hookd; then no copy holds a credential."""
    url, schema = backend  # set up first, so a PostgreSQL schema is dropped only after hookd has stopped
    folder = hookd.workdir
    key = new_key(folder, "secrets.key")
    plain_config = write_config(folder, url, "plain.yaml", None, hookd)
    config = write_config(folder, url, "hookd.yaml", key, hookd)
    hook = cli_json(
        folder,
        plain_config,
        *("hooks", "create", "--account", "acme", "--url", receiver.url("/in"), "--events", "job"),
        *("--basic-auth", f"ops:{PASSWORD}"),
    )
    secret = hook["secret"]
    assert secret.encode() in at_rest(url, schema)  # the baseline: without a key, a copy shows it
    daemon = hookd.start()
    try:
        amqp.publish_event(hookd.names, "job.failed")
        assert_signed(receiver.wait_for(1, "/in")[0], secret)

        encrypted = cli(folder, config, "secrets", "encrypt")
        assert encrypted.returncode == 0, encrypted.stderr
        assert encrypted.stdout.startswith("encrypted 2 secret(s)")
        daemon.wait_log("subscriptions.reloaded", timeout_s=10)
        amqp.publish_event(hookd.names, "job.completed")
        assert_signed(receiver.wait_for(2, "/in")[1], secret)

        copy = at_rest(url, schema)  # while hookd runs, its WAL and pooled connections open
        assert b"enc:v1:" in copy
        assert secret.encode() not in copy and PASSWORD.encode() not in copy
    finally:
        daemon.stop()  # before the schema is dropped: a draining daemon still writes its history
    output = daemon.output()
    assert secret not in output and PASSWORD not in output and "enc:v1:" not in output


def test_a_wrong_key_stops_run_and_serve_and_changes_nothing(tmp_path: Path) -> None:
    """`hookd run` and `hookd serve` with a wrong key, or none: exit 2 naming the key ids, no row changed."""
    url = f"sqlite:///{tmp_path / 'hooks.sqlite3'}"
    right, wrong = new_key(tmp_path, "right.key"), new_key(tmp_path, "wrong.key")
    config = write_config(tmp_path, url, "right.yaml", right)
    create = ["hooks", "create", "--account", "acme", "--url", "https://hooks.example.com/in", "--events", "job"]
    cli_json(tmp_path, config, *create)
    before = stored_rows(url, None)
    for command, key_file in (("run", wrong), ("serve", wrong), ("run", None)):
        bad = write_config(tmp_path, url, f"{command}-{key_file is None}.yaml", key_file)
        done = subprocess.run(
            hookd_command(command, "--config", str(bad)),
            cwd=tmp_path,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert f"encrypted with key {key_id(right.read_bytes())}, which is not configured" in done.stderr
        expected = (
            f"secrets.key_file has key {key_id(wrong.read_bytes())}" if key_file else "no secrets.key_file is set"
        )
        assert expected in done.stderr, done.stderr
    assert stored_rows(url, None) == before
