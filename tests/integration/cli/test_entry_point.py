"""The real `python -m hookd` entry point: exit codes, messages without tracebacks, help with examples."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hookd.cli import main, parser

from .conftest import Cli, ConfigWriter, run_hookd


def test_bad_argument_exits_2_end_to_end(write_config: ConfigWriter) -> None:
    """A bad URL: exit code 2, the reason on stderr, nothing on stdout."""
    config = write_config(subscriptions={"source": "db", "url": "sqlite:///hooks.db"})
    argv = ["hooks", "create", "--account", "a", "--url", "ftp://x/", "--events", "job", "--config", str(config)]
    done = run_hookd(*argv)
    assert done.returncode == 2 and "must use http or https" in done.stderr and done.stdout == ""


def test_create_exits_0_end_to_end(write_config: ConfigWriter, capsys: pytest.CaptureFixture[str]) -> None:
    """create in its own process exits 0, and the hook it printed is stored."""
    config = write_config(subscriptions={"source": "db", "url": "sqlite:///hooks.db"})
    argv = ["--account", "a", "--url", "https://x.example.com/", "--events", "job", "--config", str(config)]
    done = run_hookd("hooks", "create", *argv, "--json")
    assert done.returncode == 0 and done.stderr == ""
    created = json.loads(done.stdout)
    assert Cli(capsys, config)("hooks", "list", "--json").json()[0]["id"] == created["id"]


def test_unreachable_database_exits_1_without_traceback(write_config: ConfigWriter) -> None:
    """Nothing listening where the database should be: exit 1 and a one-line reason, no traceback."""
    config = write_config(subscriptions={"source": "db", "url": "postgresql://postgres@127.0.0.1:1/test"})
    done = run_hookd("hooks", "list", "--config", str(config))
    assert done.returncode == 1 and "connect failed" in done.stderr and "Traceback" not in done.stderr


def test_unreachable_broker_exits_1_without_traceback(write_config: ConfigWriter, yaml_config: Path) -> None:
    """hooks ping with no broker listening: exit 1 and a clear reason, no traceback."""
    hooks = str(yaml_config.parent / "hooks.yaml")
    config = write_config(
        broker={"url": "amqp://guest:guest@127.0.0.1:1/%2F", "connect_timeout_s": 1},
        subscriptions={"source": "yaml", "path": hooks},
    )
    done = run_hookd("hooks", "ping", "42", "--config", str(config))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("hookd: cannot reach the broker at amqp://guest:***@127.0.0.1:1/")


def _actions() -> list[list[str]]:
    """Every `hookd GROUP ACTION` of the admin groups."""
    found = []
    root = parser()
    commands = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    for group in ("hooks", "deliveries", "db"):
        sub = commands.choices[group]
        actions = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        found += [[group, name] for name in actions.choices]
    return found


@pytest.mark.parametrize("argv", [["hooks"], ["deliveries"], ["db"], *_actions()], ids=" ".join)
def test_every_command_has_help_with_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """--help exits 0 and shows at least one example invocation."""
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "example" in out and f"hookd {argv[0]}" in out.split("example", 1)[1]
