"""The command line's surface: --version, --help with examples everywhere, and check-config on broken files."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hookd import __version__
from hookd.cli import parser

from .conftest import Cli


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the parser: ("run",), ("hooks", "create"), ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from commands(sub, (*path, name))


def test_version_prints_the_package_version() -> None:
    """`hookd --version` works through the installed entry point's module."""
    done = subprocess.run([sys.executable, "-m", "hookd", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"hookd {__version__}"


def test_every_command_has_help_with_an_example(cli: Cli) -> None:
    """--help on each command and action exits 0 and shows at least one example."""
    paths = list(commands(parser()))
    assert {("dlq", "replay"), ("explain",), ("check-config",), ("run",)} <= set(paths)
    missing = []
    for path in paths:
        result = cli(*path, "--help")
        assert result.code == 0, (path, result.err)
        if "example" not in result.out:
            missing.append(" ".join(path))
    assert not missing, f"--help without an example: {missing}"


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def test_check_config_accepts_valid_files(tmp_path: Path, cli: Cli) -> None:
    """Both files valid: exit 0 and a one-line summary."""
    write(
        tmp_path / "hooks.yaml",
        {"hooks": [{"id": 1, "account_id": "a", "url": "https://x.example.com", "events": ["job"], "secret": "s"}]},
    )
    config = write(tmp_path / "hookd.yaml", {"subscriptions": {"source": "yaml", "path": "hooks.yaml"}})
    result = cli("check-config", "--config", str(config))
    assert result.code == 0, result.err
    assert "ok (1 hooks" in result.out


def test_check_config_lists_every_problem_of_both_files_with_file_and_key(tmp_path: Path, cli: Cli) -> None:
    """A broken config and a broken hooks file: exit 2, each problem named by file and key."""
    write(
        tmp_path / "hooks.yaml",
        {"hooks": [{"id": "1", "account_id": "a", "url": "ftp://x", "events": ["job.exploded"], "secret": "s"}]},
    )
    config = write(
        tmp_path / "hookd.yaml",
        {
            "broker": {"url": "http://nope", "colour": "blue"},
            "subscriptions": {"source": "yaml", "path": "hooks.yaml"},
            "metrics": {"listen": "nope"},
            "delivery": {"max_in_flight": 0},
        },
    )
    result = cli("check-config", "--config", str(config))
    assert result.code == 2
    for file, key in (
        ("hookd.yaml", "broker.colour"),
        ("hookd.yaml", "broker.url"),
        ("hookd.yaml", "metrics.listen"),
        ("hookd.yaml", "delivery.max_in_flight"),
        ("hooks.yaml", "hooks[0].url"),
        ("hooks.yaml", "hooks[0].events"),
    ):
        assert file in result.err and f"- {key}:" in result.err, (file, key, result.err)


def test_check_config_reports_unparseable_yaml_and_a_missing_hooks_file(tmp_path: Path, cli: Cli) -> None:
    """Syntax errors give a position; a hooks file that is not there is a problem, not a crash."""
    broken = write(tmp_path / "broken.yaml", "broker: [\n")
    result = cli("check-config", "--config", str(broken))
    assert result.code == 2 and "broken.yaml" in result.err and "line 2" in result.err
    missing = write(tmp_path / "hookd.yaml", {"subscriptions": {"source": "yaml", "path": "nope.yaml"}})
    result = cli("check-config", "--config", str(missing))
    assert result.code == 2 and "nope.yaml" in result.err and "cannot read hooks file" in result.err


def test_check_config_does_not_create_a_missing_hooks_database(tmp_path: Path, cli: Cli) -> None:
    """A SQLite hooks database not created yet is valid (hookd creates it on start); checking must not create it."""
    config = write(tmp_path / "hookd.yaml", {"subscriptions": {"source": "db", "url": "sqlite:///hooks.db"}})
    result = cli("check-config", "--config", str(config))
    assert result.code == 0, (result.code, result.err)
    assert not (tmp_path / "hooks.db").exists()


def test_check_config_reports_an_unreachable_hooks_database_as_a_problem(tmp_path: Path, cli: Cli) -> None:
    """check-config answers 0 or 2: a database it cannot read is a problem of subscriptions.url."""
    url = "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2"
    config = write(tmp_path / "hookd.yaml", {"subscriptions": {"source": "db", "url": url}})
    result = cli("check-config", "--config", str(config))
    assert result.code == 2, (result.code, result.err)
    assert "subscriptions.url" in result.err


@pytest.mark.parametrize("argv", [["dlq"], ["dlq", "list"], ["explain", "--config", "x.yaml"]])
def test_missing_arguments_are_usage_errors(cli: Cli, argv: list[str]) -> None:
    """argparse refuses incomplete commands with exit 2."""
    assert cli(*argv).code == 2
