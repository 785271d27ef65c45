"""The run's services, for every suite: `broker_url` (RabbitMQ), `postgres_url` (PostgreSQL) and
`browser` (Chromium). Each is the configured service when it answers, else a private one started on
first use and stopped when the run ends (tests/support/services.py); under pytest-xdist the workers
share them (one private node per run, not per worker: tests/support/runstate.py). A suite's own
conftest holds the fixtures only it uses; the broker fixtures every integration suite shares are in
tests/integration/conftest.py.

Tests marked `alone` (and every `cluster` test, the heaviest the suite builds) must not share the
machine with other tests: `make test` runs them in a phase of their own, after the parallel one."""

from __future__ import annotations

import pytest
from support import runstate, services
from support.bootstrap.services import Browser


def pytest_configure(config: pytest.Config) -> None:
    """Join the run's shared state: an xdist worker uses its root's, the root makes it."""
    runstate.begin(worker=hasattr(config, "workerinput"))


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on a private three-node cluster runs alone (`make test`'s second phase)."""
    for item in items:
        if item.get_closest_marker("cluster") is not None and item.get_closest_marker("alone") is None:
            item.add_marker(pytest.mark.alone)


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The AMQP URL of a RabbitMQ that answers (configured, else a private node for the run)."""
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
    """The run's root stops the private servers the run started (configured services are left running)."""
    services.close_all()
