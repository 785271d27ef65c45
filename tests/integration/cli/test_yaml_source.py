"""With `subscriptions.source: yaml` the file is the source: reads work, writes are refused with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookd.state import disables
from hookd.state.db import Database
from hookd.subscriptions.yaml_store import parse_hooks

from .conftest import HOOKS_FILE, Cli

WRITES = [
    ["create", "--account", "acme", "--url", "https://h.example.com/", "--events", "job"],
    ["update", "42", "--name", "x"],
    ["delete", "42"],
    ["disable", "42"],
    ["reset-secret", "42"],
    ["import", "hooks.yaml"],
]


@pytest.fixture
def yaml_cli(capsys: pytest.CaptureFixture[str], yaml_config: Path) -> Cli:
    return Cli(capsys, yaml_config)


@pytest.mark.parametrize("argv", WRITES, ids=[a[0] for a in WRITES])
def test_write_commands_refuse_a_yaml_source(yaml_cli: Cli, yaml_config: Path, argv: list[str]) -> None:
    """Each write command exits 2 saying the YAML file is the source, and the file is unchanged."""
    hooks_file = yaml_config.parent / "hooks.yaml"
    argv = [str(hooks_file) if a == "hooks.yaml" else a for a in argv]
    result = yaml_cli("hooks", *argv)
    assert result.code == 2 and "hooks come from the YAML file" in result.err and str(hooks_file) in result.err
    assert hooks_file.read_text(encoding="utf-8") == HOOKS_FILE


def test_enable_forgets_the_disable_hookd_kept_for_a_file_hook(
    yaml_cli: Cli, yaml_config: Path, state_url: str
) -> None:
    """`hooks enable` of a file hook hookd disabled forgets the kept decision (the file is unchanged);
    of one it did not disable, it says the file's `active` key decides; of an unknown id, exit 2."""
    hooks_file = yaml_config.parent / "hooks.yaml"
    with Database.from_url(state_url) as state:
        state.migrate()
        [hook] = parse_hooks(HOOKS_FILE, source="test", base_dir=hooks_file.parent, environ={})
        disables.keep(state, hook, "gone")
        result = yaml_cli("hooks", "enable", "42")
        assert result.code == 0 and "reload hookd" in result.out
        assert disables.kept(state) == {}
    again = yaml_cli("hooks", "enable", "42")
    assert again.code == 0 and "was not disabled by hookd" in again.out
    assert yaml_cli("hooks", "enable", "7").code == 2  # like an unknown id on a database source
    assert hooks_file.read_text(encoding="utf-8") == HOOKS_FILE


def test_list_and_show_read_a_yaml_source(yaml_cli: Cli) -> None:
    """list and show work on the YAML file's hooks (no timestamps: the file has none)."""
    assert [h["id"] for h in yaml_cli("hooks", "list", "--json").json()] == ["42"]
    shown = yaml_cli("hooks", "show", "42", "--reveal-secret", "--json").json()
    assert shown["secret"] == "yaml-secret-value-0123456789" and "created_at" not in shown


def test_export_reads_a_yaml_source(yaml_cli: Cli) -> None:
    """export of a YAML source prints its hooks with their secrets."""
    exported = yaml_cli.export()
    assert "id: '42'" in exported and "secret: yaml-secret-value-0123456789" in exported


def test_reading_does_not_create_the_state_database(yaml_cli: Cli, state_url: str) -> None:
    """show on a setup that never delivered reports empty statuses without creating the state file."""
    statuses = yaml_cli("hooks", "show", "42", "--json").json()["statuses"]
    assert statuses and all(s["last_trigger_status"] is None for s in statuses)
    assert not Path(state_url.removeprefix("sqlite:///")).exists()
