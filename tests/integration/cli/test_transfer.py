"""`hookd hooks export` and `hooks import`: the hooks-file format, round trips, all-or-nothing imports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hookd.subscriptions.yaml_store import parse_hooks

from .conftest import Cli, ConfigWriter

Create = Callable[..., dict[str, Any]]


@pytest.fixture
def other(capsys: pytest.CaptureFixture[str], write_config: ConfigWriter, fresh_sqlite_url: str) -> Cli:
    """`hookd` on a second, empty hooks database."""
    return Cli(capsys, write_config(subscriptions={"source": "db", "url": fresh_sqlite_url}))


def _without_times(hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if k not in ("created_at", "updated_at")} for h in hooks]


def _populate(cli: Cli, create: Create) -> None:
    create("--name", "ops: monitor #1", "--basic-auth", "user:p@ss:word", events="job.failed,cluster")
    create("--inactive", "--insecure-ssl", account="1001", events="job")
    hook = create(events="cluster.available")
    assert cli("hooks", "update", hook["id"], "--name", "ünïcode 'quoted'").code == 0


def test_export_is_a_valid_hooks_file(cli: Cli, create: Create, tmp_path: Path) -> None:
    """export prints the hooks-file format, with each hook's secret under `secret:`."""
    first = create("--basic-auth", "u:p")
    hooks = list(parse_hooks(cli.export(), source="export", base_dir=tmp_path, environ={}))
    assert [h.id for h in hooks] == [first["id"]]
    assert hooks[0].secret == first["secret"] and hooks[0].basic_auth is not None


def test_export_then_import_round_trips_exactly(cli: Cli, create: Create, other: Cli, tmp_path: Path) -> None:
    """Hooks exported and imported into a fresh database export identically, secrets and all."""
    _populate(cli, create)
    exported = cli.export()
    path = tmp_path / "exported.yaml"
    path.write_text(exported, encoding="utf-8")
    assert other("hooks", "import", str(path)).code == 0
    assert other.export() == exported
    assert _without_times(other("hooks", "list", "--json").json()) == _without_times(
        cli("hooks", "list", "--json").json()
    )


def test_import_upserts_by_id(cli: Cli, create: Create, tmp_path: Path) -> None:
    """import replaces hooks whose id exists, adds the others, and says how many of each."""
    create()
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "hooks:\n"
        "  - {id: '1', account_id: acme, url: 'https://new.example.com/', events: [job], secret: s1}\n"
        "  - {id: 'ops', account_id: acme, url: 'https://ops.example.com/', events: [cluster], secret: s2}\n",
        encoding="utf-8",
    )
    result = cli("hooks", "import", str(path))
    assert result.code == 0 and "imported 2 hooks" in result.out and "(1 new, 1 replaced)" in result.out
    shown = cli("hooks", "show", "1", "--reveal-secret", "--json").json()
    assert shown["settings"]["url"] == "https://new.example.com/" and shown["secret"] == "s1"
    assert [h["id"] for h in cli("hooks", "list", "--json").json()] == ["1", "ops"]


def test_import_of_an_invalid_file_changes_nothing(cli: Cli, create: Create, tmp_path: Path) -> None:
    """One bad hook in the file: exit 2 listing the problem, and no hook of the file is written."""
    create()
    before = cli.export()
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "hooks:\n"
        "  - {id: 'good', account_id: acme, url: 'https://ok.example.com/', events: [job], secret: s1}\n"
        "  - {id: 'bad', account_id: acme, url: 'ftp://x.example.com/', events: [job], secret: s2}\n",
        encoding="utf-8",
    )
    result = cli("hooks", "import", str(path))
    assert result.code == 2 and "hooks[1].url: must use http or https" in result.err
    assert cli.export() == before


def test_import_of_a_missing_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A file that cannot be read is a bad argument: exit 2 naming the file."""
    result = cli("hooks", "import", str(tmp_path / "nope.yaml"))
    assert result.code == 2 and "cannot read" in result.err and "nope.yaml" in result.err
