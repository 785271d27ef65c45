"""Fixtures of the service bootstrap suite: the bootstrap of `support.bootstrap` tried for real.

These tests start private servers whatever the machine runs, so they pass the same on a developer's
machine and in a network namespace with only loopback (`scripts/netns-run.sh`). A helper that cannot
be had (a Debian package missing and no root to install it) skips the test locally with the one-line
reason, and fails it under CI=true, where a missing service is a broken build.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from support.bootstrap import services
from support.bootstrap.devbroker import free_port, speaks_amqp
from support.services import CONFIGURED_AMQP_URL, CONFIGURED_POSTGRES_URL, need


def gone(pid: int) -> bool:
    """True if no process has this pid any more (the handles reap their servers: no zombie lingers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def dead_amqp_url() -> str:
    """A configured AMQP URL that does not answer: the suite's own when its broker is down (as in
    `scripts/netns-run.sh`, so the real default takes the private path), else a free loopback port."""
    parts = urlsplit(CONFIGURED_AMQP_URL)
    if not speaks_amqp(parts.hostname or "localhost", parts.port or 5672):
        return CONFIGURED_AMQP_URL
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"


def dead_postgres_url() -> str:
    """A configured PostgreSQL URL that does not answer: the suite's own when its server is down, else
    a free loopback port (see `dead_amqp_url`)."""
    if services.postgres_problem(CONFIGURED_POSTGRES_URL) is not None:
        return CONFIGURED_POSTGRES_URL
    return f"postgresql://postgres@127.0.0.1:{free_port()}/test"


@pytest.fixture(scope="session")
def postgres_installed() -> None:
    """The PostgreSQL server binaries are there (installed first when root)."""
    need(services.ensure_postgres_installed)


@pytest.fixture(scope="session")
def rabbitmq_installed() -> None:
    """The RabbitMQ server is there (installed first when root)."""
    need(services.ensure_rabbitmq_installed)
