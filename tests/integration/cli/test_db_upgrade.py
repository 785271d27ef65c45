"""`hookd db upgrade` migrates the hooks and state databases, idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookd.state.db import Database
from hookd.state.migrations import LATEST_VERSION

from .conftest import Cli, ConfigWriter


def _version(url: str) -> int:
    with Database.from_url(url) as db:
        return db.version()


def test_upgrade_migrates_hooks_and_state_databases(
    capsys: pytest.CaptureFixture[str], write_config: ConfigWriter, hooks_url: str, state_url: str
) -> None:
    """A fresh hooks database and a separate state database both end at the latest version."""
    cli = Cli(capsys, write_config(subscriptions={"source": "db", "url": hooks_url}, state={"url": state_url}))
    result = cli("db", "upgrade")
    assert result.code == 0
    assert result.out.splitlines()[0].startswith("hooks database ")
    assert f"schema version {LATEST_VERSION} (was 0)" in result.out.splitlines()[1]
    assert _version(hooks_url) == _version(state_url) == LATEST_VERSION


def test_upgrade_is_idempotent(cli: Cli) -> None:
    """A second upgrade changes nothing and says the schema is already current."""
    assert cli("db", "upgrade").code == 0
    again = cli("db", "upgrade", "--json").json()
    assert again == [
        {
            "databases": ["hooks", "state"],
            "url": again[0]["url"],
            "from_version": LATEST_VERSION,
            "version": LATEST_VERSION,
        }
    ]
    assert "already current" in cli("db", "upgrade").out


def test_upgrade_with_a_yaml_source_migrates_the_state_database(
    yaml_config: Path, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With hooks in a YAML file there is only the state database to migrate."""
    result = Cli(capsys, yaml_config)("db", "upgrade")
    assert result.code == 0 and result.out.startswith("state database sqlite:///")
    assert _version(state_url) == LATEST_VERSION
