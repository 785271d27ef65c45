"""Fixtures of the operations suite: sd_notify, metrics and health, `hookd dlq`, `hookd explain`, units.

The broker, the AMQP channel, the receiver and the hookd factory are the integration suite's own
(inherited from tests/integration/conftest.py). This suite adds its own per-test prefix, which
deletes every queue `Topology.queues()` names (hookd may declare more than the contract lists),
a config writer with the `metrics` and `state` sections, and an in-process CLI runner.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.factory import Reaper, unique_prefix
from support.helpers import Names, config_document, write_hooks

from hookd.cli import main

#: The retry schedule of this suite's configs: short, one queue per delay.
RETRY_DELAYS_S = (1.0, 2.0)


@pytest.fixture
def prefix(broker_url: str, reaper: Reaper) -> Iterator[Names]:
    """A unique queue prefix and exchange for one test; every queue and the exchange are deleted after."""
    yield from unique_prefix(broker_url, reaper, "hookd-ops", RETRY_DELAYS_S)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- config files --------------------------------------------------------------------------------------
@dataclass
class OpsConfig:
    """hookd.yaml and hooks.yaml of one test; `write()` rewrites both."""

    path: Path
    hooks_path: Path
    state_path: Path
    broker_url: str
    names: Names

    def write(
        self,
        hooks: list[Mapping[str, Any]],
        *,
        delivery: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        broker: Mapping[str, Any] | None = None,
    ) -> Path:
        write_hooks(self.hooks_path, hooks)
        doc = config_document(
            broker_url=self.broker_url,
            names=self.names,
            hooks_path=self.hooks_path,
            broker=broker,
            delivery={"retry_delays_s": list(RETRY_DELAYS_S), **(delivery or {})},
        )
        doc["state"] = {"url": f"sqlite:///{self.state_path}"}
        if metrics is not None:
            doc["metrics"] = dict(metrics)
        self.path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return self.path


@pytest.fixture
def ops_config(broker_url: str, prefix: Names, tmp_path: Path) -> OpsConfig:
    """The test's config files (written by `ops_config.write(hooks, ...)`), on its own topology."""
    return OpsConfig(
        path=tmp_path / "hookd.yaml",
        hooks_path=tmp_path / "hooks.yaml",
        state_path=tmp_path / "state.sqlite3",
        broker_url=broker_url,
        names=prefix,
    )


# -- running the command line in process ---------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """`cli("dlq", "list", "--config", path)`: run `hookd ...` in process and capture its output."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help, --version and usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
