"""Fixtures of the admin API tests: one real stack (`hookd serve`, `hookd run`, a receiver) per test
module and database backend. Tests use accounts of their own (`stack.unique`), so sharing a stack
couples nothing; it keeps the suite to a few process starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.stack import Stack, database_url, need_broker


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """hookd serve and hookd run on a fresh hooks database (SQLite, then PostgreSQL) and topology."""
    need_broker()
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    with database_url(request.param, folder) as url:
        running = Stack(folder, url)
        yield running
        running.close()
