"""Factory fixtures for the store tests: databases on SQLite (tmp_path) and PostgreSQL (a schema per test).

PostgreSQL is the session's (`postgres_url` from tests/conftest.py): the configured server when it
answers, else a private one started for the run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hookd.state.db import Database
from hookd.subscriptions.model import Hook
from hookd.subscriptions.sql_store import SqlStore

SQL_BACKENDS = ("sqlite", "postgresql")

DatabaseOpener = Callable[[], Database]


@pytest.fixture
def sqlite_opener(tmp_path: Path) -> Iterator[DatabaseOpener]:
    """Open handles to one fresh SQLite file, as separate processes would; all closed afterwards."""
    handles: list[Database] = []

    def open_database() -> Database:
        handles.append(Database.from_url(f"sqlite:///{tmp_path / 'hookd.db'}"))
        return handles[-1]

    yield open_database
    for db in handles:
        db.close()


@pytest.fixture
def postgresql_opener(postgres_url: str) -> Iterator[DatabaseOpener]:
    """Open handles to a fresh, empty schema of its own; the schema and everything in it is dropped after."""
    schema = f"hookd_test_{uuid.uuid4().hex[:12]}"
    handles: list[Database] = []

    def open_database() -> Database:
        handles.append(Database.from_url(postgres_url, schema=schema))
        return handles[-1]

    with Database.from_url(postgres_url) as admin:
        with admin.transaction(write=True) as tx:
            tx.script(f'CREATE SCHEMA "{schema}"')
        try:
            yield open_database
        finally:
            for db in handles:
                db.close()
            with admin.transaction(write=True) as tx:
                tx.script(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=SQL_BACKENDS)
def opener(request: pytest.FixtureRequest) -> DatabaseOpener:
    """`sqlite_opener` or `postgresql_opener`: the test runs once per SQL backend."""
    factory: DatabaseOpener = request.getfixturevalue(f"{request.param}_opener")
    return factory


@pytest.fixture
def database(opener: DatabaseOpener) -> Database:
    """A migrated database on each SQL backend."""
    db = opener()
    db.migrate()
    return db


@pytest.fixture
def store(database: Database) -> SqlStore:
    """An empty `SqlStore` on each SQL backend."""
    return SqlStore(database)


@pytest.fixture
def make_hook() -> Callable[..., Hook]:
    """Build a `Hook` with sensible defaults; keyword arguments override any field."""
    counter = iter(range(1, 1_000_000))

    def factory(**overrides: Any) -> Hook:
        fields: dict[str, Any] = {
            "id": str(next(counter)),
            "account_id": "acme",
            "url": "https://hooks.example.com/in",
            "events": ("job.failed",),
            "secret": "s3cr3t-value",
        }
        fields.update(overrides)
        return Hook(**fields)

    return factory
