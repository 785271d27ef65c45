"""The session's services, for every suite: `broker_url` (RabbitMQ), `postgres_url` (PostgreSQL) and
`browser` (Chromium). Each is the configured service when it answers, else a private one started on
first use and stopped when the session ends (tests/support/services.py). A suite's own conftest holds
the fixtures only it uses; the broker fixtures every integration suite shares are in
tests/integration/conftest.py."""

from __future__ import annotations

import pytest
from support import services

from support.bootstrap.services import Browser


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The AMQP URL of a RabbitMQ that answers (configured, else a private node for the session)."""
    return services.amqp_url()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of a PostgreSQL database that answers (configured, else a private server's)."""
    return services.postgres_url()


@pytest.fixture(scope="session")
def browser() -> Browser:
    """Debian's Chromium and ChromeDriver."""
    return services.browser()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which servers the run used: the configured ones, or private ones it started."""
    lines = services.summary()
    if lines:
        terminalreporter.section("services")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the private servers the session started (the configured services are left running)."""
    services.close_all()
