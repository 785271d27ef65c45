"""`hookd db upgrade` migrates the hooks and state databases, idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookd.state.db import Database
from hookd.state.db import _migrate as _apply
from hookd.state.migrations import LATEST_VERSION, MIGRATIONS

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


def _migrate_to(url: str, version: int) -> None:
    """Bring a database to `version` only, as an older hookd would have left it."""
    with Database.from_url(url) as db:
        _apply(db, [m for m in MIGRATIONS if m.version <= version])


@pytest.mark.parametrize(
    "argv",
    [["deliveries", "list"], ["hooks", "list"], ["hooks", "show", "1"], ["explain", "job.failed", "--account", "acme"]],
    ids=["deliveries", "hooks-list", "hooks-show", "explain"],
)
def test_reading_commands_never_migrate_a_shared_database(
    capsys: pytest.CaptureFixture[str], write_config: ConfigWriter, hooks_url: str, state_url: str, argv: list[str]
) -> None:
    """A reading command against a schema older than its own refuses in one line naming `hookd db
    upgrade` and leaves the schema where the older workers have it."""
    older = min(m.version for m in MIGRATIONS if m.version > 1) - 1
    _migrate_to(hooks_url, older)
    _migrate_to(state_url, older)
    cli = Cli(capsys, write_config(subscriptions={"source": "db", "url": hooks_url}, state={"url": state_url}))
    result = cli(*argv)
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1 and "hookd db upgrade" in result.err
    assert _version(hooks_url) == _version(state_url) == older


def test_a_schema_newer_than_the_command_is_refused_by_reading_commands(
    capsys: pytest.CaptureFixture[str], write_config: ConfigWriter, state_url: str, tmp_path: Path
) -> None:
    """A state database a newer hookd upgraded is read by no older command: one line says so."""
    with Database.from_url(state_url) as db:
        db.migrate()
        with db.transaction(write=True) as tx:
            tx.execute("INSERT INTO hookd_schema (version, description) VALUES (?, ?)", (LATEST_VERSION + 1, "future"))
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("hooks: []\n", encoding="utf-8")
    cli = Cli(capsys, write_config(subscriptions={"path": str(hooks)}, state={"url": state_url}))
    result = cli("deliveries", "list")
    assert result.code == 1 and "newer than this hookd knows" in result.err
