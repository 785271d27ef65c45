"""PrivatePostgres and `services.postgres_url`: the configured server when it answers, else a private one."""

from __future__ import annotations

import psycopg
import pytest
from support.bootstrap import services
from support.bootstrap.devbroker import reachable
from support.bootstrap.postgres import PrivatePostgres

from .conftest import dead_postgres_url, gone

pytestmark = pytest.mark.usefixtures("postgres_installed")


def database_and_listener(url: str) -> tuple[object, ...] | None:
    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
        return conn.execute("SELECT current_database(), current_setting('listen_addresses')").fetchone()


def test_private_postgres_answers_and_its_postmaster_is_gone_after_stop() -> None:
    """A private server serves database `test` on 127.0.0.1 only; stop() ends its postmaster."""
    server = PrivatePostgres()
    try:
        server.start()
        assert database_and_listener(server.url) == ("test", "127.0.0.1")
        pid = server.pid
        assert pid is not None
        server.stop()
        assert gone(pid)
        assert not reachable("127.0.0.1", server.port, timeout=0.5)
    finally:
        server.close()
    assert not server.base_dir.exists()


def test_postgres_url_uses_a_server_that_answers_and_leaves_it_running() -> None:
    """An answering configured server is used as is, and closing the service does not touch it."""
    with PrivatePostgres() as configured:
        service = services.postgres_url(configured.url)
        assert (service.url, service.private) == (configured.url, None)
        service.close()
        assert database_and_listener(configured.url) == ("test", "127.0.0.1")


def test_postgres_url_starts_a_private_server_when_the_configured_one_is_dead() -> None:
    """A dead configured URL gets a private server, which closing the service stops and deletes."""
    dead_url = dead_postgres_url()
    service = services.postgres_url(dead_url)
    try:
        assert isinstance(service.private, PrivatePostgres)
        assert service.url != dead_url
        assert database_and_listener(service.url) == ("test", "127.0.0.1")
        pid = service.private.pid
        assert pid is not None
    finally:
        service.close()
    assert gone(pid)
    assert not service.private.base_dir.exists()
