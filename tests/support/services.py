"""The test session's RabbitMQ, PostgreSQL and Chromium: the configured ones when they answer, else
private ones started for the run (`support.bootstrap.services` does the work); and promtool (Debian's
`prometheus` package, installed like the others) for the alert-rule tests.

Lazy and shared: the first test that needs a service resolves it, later tests reuse the answer, so
`make unit` starts nothing and one private node serves the whole session. The root conftest stops
what was started when the session ends (`close_all`), by pid, through the handles that started it.
A service that cannot be had fails the test under CI=true (a broken build) and skips it elsewhere,
with the one-line reason; the failure is remembered, so a missing package costs one attempt, not one
per test.

`HOOKD_TEST_AMQP_URL` and `HOOKD_TEST_POSTGRES_URL` name the configured services (defaults: the
machine's own on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest

from .bootstrap import services

T = TypeVar("T")

CONFIGURED_AMQP_URL = os.environ.get("HOOKD_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
CONFIGURED_POSTGRES_URL = os.environ.get("HOOKD_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"

#: Where Debian's `prometheus` package puts promtool.
PROMTOOL = Path("/usr/bin/promtool")

_lock = threading.Lock()
_resolved: dict[str, services.Service | services.Browser] = {}
_refused: dict[str, str] = {}


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


def _resolve(name: str, make: Callable[[], services.Service | services.Browser]) -> services.Service | services.Browser:
    with _lock:
        if name in _refused:
            unavailable(_refused[name])
        if name not in _resolved:
            try:
                _resolved[name] = make()
            except services.ServiceUnavailable as exc:
                _refused[name] = str(exc)
                unavailable(str(exc))
        return _resolved[name]


def amqp_url() -> str:
    """A RabbitMQ that answers: the configured one, else a private node for the session."""
    service = _resolve("rabbitmq", lambda: services.rabbitmq_url(CONFIGURED_AMQP_URL))
    assert isinstance(service, services.Service)
    return service.url


def postgres_url() -> str:
    """A PostgreSQL database that answers: the configured one, else a private server's `test` database."""
    service = _resolve("postgresql", lambda: services.postgres_url(CONFIGURED_POSTGRES_URL))
    assert isinstance(service, services.Service)
    return service.url


def browser() -> services.Browser:
    """Debian's Chromium and ChromeDriver (installed first when missing and root)."""
    found = _resolve("chromium", services.chromium)
    assert isinstance(found, services.Browser)
    return found


def promtool() -> Path:
    """Debian's promtool (package `prometheus`), installed first when missing and root; the run's
    alert-rule tests need the real rule engine, not a reimplementation."""
    with _lock:
        if "promtool" in _refused:
            unavailable(_refused["promtool"])
    try:
        services._ensure_packages(
            lambda: os.access(PROMTOOL, os.X_OK), ["prometheus"], "promtool is needed to test the alert rules and"
        )
    except services.ServiceUnavailable as exc:
        with _lock:
            _refused["promtool"] = str(exc)
        unavailable(str(exc))
    return PROMTOOL


def summary() -> list[str]:
    """One line per service the session used or could not have, for the end of the run."""
    lines = []
    for name, found in sorted(_resolved.items()):
        if isinstance(found, services.Browser):
            lines.append(f"{name}: {found.chromium}, {found.chromedriver}")
        else:
            where = "private, started for this run" if found.private is not None else "configured"
            lines.append(f"{name}: {_redacted(found.url)} ({where})")
    lines.extend(f"{name}: unavailable: {why}" for name, why in sorted(_refused.items()))
    return lines


def _redacted(url: str) -> str:
    """`url` without its password (a configured URL may carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def close_all() -> None:
    """Stop every private server this session started (a configured service is left alone)."""
    with _lock:
        for found in _resolved.values():
            if isinstance(found, services.Service):
                found.close()  # kept in `_resolved` for `summary`, which pytest calls after this


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
