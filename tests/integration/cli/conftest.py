"""Factory fixtures for the admin command tests: config files, hooks databases, a state database, a broker.

The commands run in process through `hookd.cli.main` (fast); `run_hookd` runs the real entry point
in a subprocess for end-to-end exit codes. PostgreSQL and RabbitMQ are real: the session's
(`broker_url`, `postgres_url` from tests/conftest.py), private ones when none is configured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
import yaml
from support import services

from hookd.broker import Topology
from hookd.cli import main
from hookd.config import BrokerSettings
from hookd.state.db import Database
from hookd.state.history import AttemptRecord, Settlement, write_batch

RETRY_DELAYS_S = (5.0,)  # one retry queue per test topology: less to declare and delete


# -- running the command line --------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


class Cli:
    """Runs `hookd ...` in process against one config file and captures what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], config: Path) -> None:
        self._capsys = capsys
        self.config = config

    def __call__(self, *argv: str, config: Path | None = None) -> Result:
        self._capsys.readouterr()
        try:
            code = main([*argv, "--config", str(config or self.config)])
        except SystemExit as exc:  # argparse: --help and usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def export(self) -> str:
        """The full hooks export: compared before and after a refused command."""
        result = self("hooks", "export")
        assert result.code == 0, result.err
        return result.out


def run_hookd(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point, `python -m hookd`, in a subprocess."""
    environ = {k: v for k, v in os.environ.items() if k != "HOOKD_AMQP_URL"}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hookd", *argv], capture_output=True, text=True, timeout=30, env=environ, check=False
    )


# -- config files ------------------------------------------------------------------------------------------
ConfigWriter = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Write a hookd.yaml into the test's folder: `write_config(subscriptions={...}, broker={...})`."""
    counter = iter(range(1_000_000))

    def write(**sections: Any) -> Path:
        path = tmp_path / f"hookd-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(sections), encoding="utf-8")
        return path

    return write


def _sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / f'hooks-{uuid.uuid4().hex[:8]}.db'}"


def _postgresql_url(postgres_url: str) -> Iterator[str]:
    """A fresh schema of its own, reached through search_path in the URL; dropped afterwards."""
    with services.postgres_schema("hookd_cli") as schema:
        yield services.in_schema(postgres_url, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def hooks_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty hooks database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield from _sqlite_url(tmp_path)
    else:
        yield from _postgresql_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def fresh_sqlite_url(tmp_path: Path) -> Iterator[str]:
    """Another empty SQLite hooks database (the target of an export → import round trip)."""
    yield from _sqlite_url(tmp_path)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], write_config: ConfigWriter, hooks_url: str) -> Cli:
    """`hookd` on a config whose hooks (and state) live in `hooks_url`, on each SQL backend."""
    return Cli(capsys, write_config(subscriptions={"source": "db", "url": hooks_url}))


@pytest.fixture
def create(cli: Cli) -> Callable[..., dict[str, Any]]:
    """Create a hook through the CLI and return its JSON resource; extra flags override the defaults."""

    def factory(*flags: str, account: str = "acme", events: str = "job.failed") -> dict[str, Any]:
        argv = ["hooks", "create", "--account", account, "--url", "https://hooks.example.com/in", "--events", events]
        resource: dict[str, Any] = cli(*argv, *flags, "--json").json()
        return resource

    return factory


# -- the state database --------------------------------------------------------------------------------------
Recorder = Callable[..., None]


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def record(state_url: str) -> Iterator[Recorder]:
    """Write history rows with `history.write_batch` into a migrated SQLite state database."""
    db = Database.from_url(state_url)
    db.migrate()

    def write(*records: AttemptRecord | Settlement) -> None:
        with db.transaction(write=True) as tx:
            write_batch(tx, list(records))

    yield write
    db.close()


def attempt(
    delivery_id: str,
    *,
    hook_id: str = "42",
    event: str = "job.failed",
    number: int = 1,
    status: int | None = 200,
    outcome: str = "delivered",
    at: datetime | None = None,
    error: str | None = None,
    body: bytes = b'{"id": 7}',
) -> AttemptRecord:
    """One attempt record with sensible defaults."""
    return AttemptRecord(
        delivery_id=delivery_id,
        hook_id=hook_id,
        event=event,
        event_id=f"evt-{delivery_id}",
        account_id="acme",
        attempt=number,
        status=status,
        outcome=outcome,
        duration_ms=12.5,
        error=error,
        response_excerpt=None if status is None else f"answer {status}",
        at=at or datetime.now(UTC),
        body=body,
    )


def settlement(
    delivery_id: str,
    state: str,
    attempts: int,
    *,
    hook_id: str = "42",
    event: str = "job.failed",
    at: datetime | None = None,
    body: bytes = b'{"id": 7}',
) -> Settlement:
    """How a delivery ended (the same hook and event defaults as `attempt`)."""
    return Settlement(
        delivery_id=delivery_id,
        hook_id=hook_id,
        event=event,
        event_id=f"evt-{delivery_id}",
        account_id="acme",
        state=state,
        attempts=attempts,
        last_status=503,
        at=at or datetime.now(UTC),
        body=body,
    )


HOOKS_FILE = """hooks:
  - id: "42"
    account_id: acme
    url: https://ops.example.com/hooks
    events: [job.failed, cluster]
    secret: yaml-secret-value-0123456789
"""


@pytest.fixture
def yaml_config(write_config: ConfigWriter, tmp_path: Path, state_url: str) -> Path:
    """A config whose hooks come from a YAML file (hook 42) and whose state is `state_url`."""
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(HOOKS_FILE, encoding="utf-8")
    return write_config(subscriptions={"source": "yaml", "path": str(hooks)}, state={"url": state_url})


# -- the broker ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Broker:
    """The test's own topology (unique prefix and exchange) and a channel to read its queues."""

    channel: Any
    topology: Topology
    url: str

    def sections(self) -> dict[str, Any]:
        """The config's `broker` and `delivery` sections for this topology."""
        broker = {
            "url": self.url,
            "exchange": self.topology.exchange,
            "queue_prefix": self.topology.prefix,
            "queue_type": "classic",
        }
        return {"broker": broker, "delivery": {"retry_delays_s": list(RETRY_DELAYS_S)}}

    def get(self, queue: str) -> tuple[Any, bytes] | None:
        """One message (properties, body) from `queue`, acknowledged; None when it is empty."""
        method, props, body = self.channel.basic_get(queue, auto_ack=True)
        return None if method is None else (props, body)


@pytest.fixture
def broker(broker_url: str) -> Iterator[Broker]:
    """A unique queue prefix and exchange, declared as hookd declares them; all deleted afterwards."""
    token = uuid.uuid4().hex[:10]
    topology = Topology(
        f"hookd-cli-{token}.events",
        f"hookd-cli-{token}",
        "classic",
        RETRY_DELAYS_S,
        partitions=BrokerSettings().partitions,  # the config `sections()` writes keeps hookd's default
    )
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        channel = connection.channel()
        topology.declare(channel)  # so a test can also check that nothing was published
        yield Broker(channel, topology, broker_url)
    finally:
        channel = connection.channel()
        for name in topology.queues():
            channel.queue_delete(name)
        channel.exchange_delete(topology.exchange)
        connection.close()
