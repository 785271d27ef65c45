"""The test run's RabbitMQ, PostgreSQL and Chromium: the configured ones when they answer, else
private ones started for the run (`support.bootstrap.services` does the work); and promtool (Debian's
`prometheus` package, installed like the others) for the alert-rule tests.

Lazy and shared: the first test that needs a service resolves it, later tests reuse the answer, so
`make unit` starts nothing. Shared across the run's processes too (pytest-xdist's workers): the
decision is recorded in the run's state (`support.runstate`), under the run's lock, so one private
node and one private PostgreSQL serve every worker. The run's root stops what was started when the
whole run ends (`close_all`), by pid. A service that cannot be had fails the test under CI=true
(a broken build) and skips it elsewhere, with the one-line reason; the refusal is recorded too, so
a missing package costs one attempt per run, not one per test or per worker.

`HOOKD_TEST_AMQP_URL` and `HOOKD_TEST_POSTGRES_URL` name the configured services (defaults: the
machine's own on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest

from . import runstate
from .bootstrap import services
from .bootstrap.devbroker import PrivateBroker

T = TypeVar("T")

CONFIGURED_AMQP_URL = os.environ.get("HOOKD_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
CONFIGURED_POSTGRES_URL = os.environ.get("HOOKD_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"

#: Where Debian's `prometheus` package puts promtool.
PROMTOOL = Path("/usr/bin/promtool")

_lock = threading.Lock()
_records: dict[str, dict[str, Any]] = {}  # what this process learnt from the run's state
_started: dict[str, services.Service] = {}  # the private servers this process started (their handles)
_final: dict[str, dict[str, Any]] = {}  # the run's records, kept by the root for the summary


def unavailable(message: str) -> NoReturn:
    """Fail the test under CI=true, where a missing service is a broken build; skip it elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def need(make: Callable[[], T]) -> T:
    """`make()`, or fail/skip the test with the one-line reason when what it makes cannot be had."""
    try:
        return make()
    except services.ServiceUnavailable as exc:
        unavailable(str(exc))


def require_pg_dump() -> None:
    """pg_dump (Debian's postgresql-client) must be there to check what a dump of the database shows."""
    if shutil.which("pg_dump") is None:
        unavailable("pg_dump is needed to check what a dump shows; install postgresql-client")


def _resolve(name: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The run's record for service `name`: made by `make()` in the first process that asks (under
    the run's lock for `name`), read from the run's state by every later one."""
    with _lock:
        record = _records.get(name)
        if record is None:
            with runstate.locked(name):
                record = runstate.read(name)
                if record is None:
                    try:
                        record = make()
                    except services.ServiceUnavailable as exc:
                        record = {"refused": str(exc)}
                    runstate.write(name, record)
            _records[name] = record
    if "refused" in record:
        unavailable(record["refused"])
    return record


def _server(name: str, found: services.Service, stop_signal: signal.Signals) -> dict[str, Any]:
    """The record of a resolved server; a private one's process, directory and stop signal with it,
    so the run's root can stop it even when another process of the run started it."""
    record: dict[str, Any] = {"url": found.url, "private": None}
    if found.private is not None:
        _started[name] = found
        assert found.private.pid is not None
        directory = found.private.data_dir if isinstance(found.private, PrivateBroker) else found.private.base_dir
        record.update(
            private=runstate.Started.of(found.private.pid).as_record(),
            dir=str(directory),
            signal=stop_signal.name,
        )
    return record


def amqp_url() -> str:
    """A RabbitMQ that answers: the configured one, else a private node for the run."""
    record = _resolve(
        "rabbitmq", lambda: _server("rabbitmq", services.rabbitmq_url(CONFIGURED_AMQP_URL), signal.SIGTERM)
    )
    return str(record["url"])


def postgres_url() -> str:
    """A PostgreSQL database that answers: the configured one, else a private server's `test` database."""
    record = _resolve(
        "postgresql", lambda: _server("postgresql", services.postgres_url(CONFIGURED_POSTGRES_URL), signal.SIGINT)
    )
    return str(record["url"])


def browser() -> services.Browser:
    """Debian's Chromium and ChromeDriver (installed first when missing and root)."""

    def find() -> dict[str, Any]:
        found = services.chromium()
        return {"chromium": str(found.chromium), "chromedriver": str(found.chromedriver)}

    record = _resolve("chromium", find)
    return services.Browser(Path(record["chromium"]), Path(record["chromedriver"]))


def promtool() -> Path:
    """Debian's promtool (package `prometheus`), installed first when missing and root; the run's
    alert-rule tests need the real rule engine, not a reimplementation."""

    def find() -> dict[str, Any]:
        services._ensure_packages(
            lambda: os.access(PROMTOOL, os.X_OK), ["prometheus"], "promtool is needed to test the alert rules and"
        )
        return {"tool": str(PROMTOOL)}

    return Path(_resolve("promtool", find)["tool"])


def summary() -> list[str]:
    """One line per service the run used or could not have, for the end of the run (the root's)."""
    lines = []
    for name, record in sorted((_final or _records).items()):
        if "refused" in record:
            lines.append(f"{name}: unavailable: {record['refused']}")
        elif "chromium" in record:
            lines.append(f"{name}: {record['chromium']}, {record['chromedriver']}")
        elif "tool" in record:
            lines.append(f"{name}: {record['tool']}")
        else:
            where = "private, started for this run" if record["private"] else "configured"
            lines.append(f"{name}: {_redacted(record['url'])} ({where})")
    return lines


def _redacted(url: str) -> str:
    """`url` without its password (a configured URL may carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def close_all() -> None:
    """The run's root, once the whole run is over: stop every private server the run started (through
    the handle when this process started it, else by its recorded pid) and delete the run's state.
    A configured service is left alone; a worker stops nothing (other workers may still need it)."""
    if not runstate.is_root():
        return
    with _lock:
        _final.update(runstate.records())  # kept for `summary`, which pytest calls after this
        for name, record in _final.items():
            if not record.get("private"):
                continue
            handle = _started.pop(name, None)
            if handle is not None:
                handle.close()
            else:
                runstate.Started.from_record(record["private"]).stop(signal.Signals[record["signal"]])
                shutil.rmtree(record["dir"], ignore_errors=True)
        runstate.end()


def in_schema(url: str, schema: str) -> str:
    """`url` with its search_path set to `schema` (how hookd is pointed at a schema of its own)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def postgres_schema(label: str) -> Iterator[str]:
    """A fresh, empty schema on the session's PostgreSQL (named `<label>_<random>`), dropped afterwards
    with everything in it. Yields the schema's name; `in_schema(postgres_url(), name)` reaches it."""
    import psycopg

    url = postgres_url()
    schema = f"{label}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        _drop_schema(url, schema)


def _drop_schema(url: str, schema: str, timeout_s: float = 30.0) -> None:
    """Drop the schema, again if PostgreSQL chose the drop as a deadlock's victim: a hookd the test
    stopped may still be finishing a transaction in it (its processes are reaped in the background)."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            return
        except psycopg.errors.DeadlockDetected:
            if time.monotonic() >= deadline:
                raise
