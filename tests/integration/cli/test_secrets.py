"""`hookd secrets new-key|encrypt|rotate-key|status`, and every command's refusal of a wrong key (exit 2,
nothing changed), on SQLite and PostgreSQL."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hookd.cipher import KEY_BYTES, key_id
from hookd.cli import main
from hookd.state.db import Database

from .conftest import Cli, ConfigWriter, Result


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """`hookd ARGV` in process, without an implied --config."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def raw_rows(url: str) -> list[dict[str, Any]]:
    """The hooks table exactly as stored."""
    with Database.from_url(url) as db, db.transaction() as tx:
        return tx.fetchdicts("SELECT * FROM hookd_hooks ORDER BY id")


def new_key(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    result = run(capsys, "secrets", "new-key", str(path), "--json")
    assert result.code == 0, result.err
    identifier: str = result.json()["key_id"]
    return identifier


@pytest.fixture
def keyed_config(write_config: ConfigWriter, hooks_url: str) -> Callable[..., Path]:
    """A config on the test's hooks database with `secrets` set as given."""

    def write(key_file: Path | None = None, old: list[Path] | None = None) -> Path:
        secrets: dict[str, Any] = {"key_file": None if key_file is None else str(key_file)}
        if old:
            secrets["old_key_files"] = [str(p) for p in old]
        return write_config(subscriptions={"source": "db", "url": hooks_url}, secrets=secrets)

    return write


@pytest.fixture
def two_hooks(cli: Cli) -> str:
    """Two hooks without a key (one with basic auth): three plaintext credentials; their export."""
    for extra in (["--basic-auth", "ops:pw-0123456789"], []):
        argv = ["hooks", "create", "--account", "acme", "--url", "https://hooks.example.com/in", "--events", "job"]
        assert cli(*argv, *extra).code == 0
    return cli.export()


def test_new_key_writes_32_private_bytes_and_never_overwrites(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """new-key: exit 0 with the key id; an existing file or a missing folder: exit 2, nothing written."""
    path = tmp_path / "secrets.key"
    result = run(capsys, "secrets", "new-key", str(path))
    assert result.code == 0, result.err
    data = path.read_bytes()
    assert len(data) == KEY_BYTES and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"key id {key_id(data)}" in result.out and data.hex() not in result.out
    again = run(capsys, "secrets", "new-key", str(path))
    assert again.code == 2 and "already exists" in again.err and path.read_bytes() == data
    assert run(capsys, "secrets", "new-key", str(tmp_path / "nowhere" / "k.key")).code == 2


def test_encrypt_status_and_check_config(
    cli: Cli, two_hooks: str, keyed_config: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Plaintext rows: check-config warns, encrypt encrypts all three (then none: idempotent), status counts."""
    assert cli("secrets", "status").out.splitlines()[1:] == ["  plaintext: 3"]
    assert cli("secrets", "encrypt").code == 2  # no key_file
    identifier = new_key(capsys, tmp_path / "secrets.key")
    config = keyed_config(tmp_path / "secrets.key")
    checked = cli("check-config", config=config)
    assert checked.code == 0 and "3 secret(s) in the hooks database are still stored in plaintext" in checked.err
    assert cli.export() == two_hooks  # plaintext reads with a key configured
    encrypted = cli("secrets", "encrypt", config=config)
    assert encrypted.code == 0, encrypted.err
    assert encrypted.out.startswith(f"encrypted 3 secret(s) with key {identifier} (0 already encrypted")
    again = cli("secrets", "encrypt", "--json", config=config).json()
    assert (again["changed"], again["encrypted_before"], again["plaintext_before"]) == (0, {identifier: 3}, 0)
    status = cli("secrets", "status", "--json", config=config).json()
    assert (status["encrypted"], status["plaintext"], status["unreadable"]) == ({identifier: 3}, 0, 0)
    assert status["keys"] == {"secrets.key_file": identifier}
    assert "plaintext" not in cli("check-config", config=config).err
    assert cli("hooks", "export", config=config).out == two_hooks


def test_rotate_key_reencrypts_everything(
    cli: Cli, two_hooks: str, keyed_config: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """rotate-key: every value under the new key; the old key alone is then refused, the new one reads all."""
    old_id = new_key(capsys, tmp_path / "old.key")
    new_id = new_key(capsys, tmp_path / "new.key")
    old_config = keyed_config(tmp_path / "old.key")
    assert cli("secrets", "encrypt", config=old_config).code == 0
    (tmp_path / "short.key").write_bytes(b"k" * 8)
    (tmp_path / "short.key").chmod(0o600)
    bad = cli("secrets", "rotate-key", "--new-key-file", str(tmp_path / "short.key"), config=old_config)
    assert bad.code == 2 and "--new-key-file" in bad.err and "holds 8 bytes" in bad.err
    rotated = cli("secrets", "rotate-key", "--new-key-file", str(tmp_path / "new.key"), config=old_config)
    assert rotated.code == 0, rotated.err
    assert rotated.out.startswith(f"re-encrypted 3 secret(s) with key {new_id} (before: 3 with key {old_id})")
    assert "set secrets.key_file" in rotated.out
    refused = cli("hooks", "list", config=old_config)
    assert refused.code == 2 and new_id in refused.err and old_id in refused.err
    new_config = keyed_config(tmp_path / "new.key", old=[tmp_path / "old.key"])
    assert cli("hooks", "export", config=new_config).out == two_hooks
    status = cli("secrets", "status", "--json", config=new_config).json()
    assert (status["encrypted"], status["plaintext"]) == ({new_id: 3}, 0)


def test_a_wrong_key_is_refused_everywhere_and_nothing_changes(
    *,
    cli: Cli,
    two_hooks: str,
    keyed_config: Callable[..., Path],
    hooks_url: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Every command that reads hooks, and every secrets action, exits 2 naming the key ids; no row changes."""
    right = new_key(capsys, tmp_path / "right.key")
    wrong = new_key(capsys, tmp_path / "wrong.key")
    assert cli("secrets", "encrypt", config=keyed_config(tmp_path / "right.key")).code == 0
    before = raw_rows(hooks_url)
    import_file = tmp_path / "import.yaml"
    import_file.write_text(two_hooks, encoding="utf-8")
    for config, configured in ((keyed_config(tmp_path / "wrong.key"), wrong), (keyed_config(), None)):
        for argv in (
            ["hooks", "list"],
            ["hooks", "show", "1"],
            ["hooks", "export"],
            ["hooks", "update", "1", "--name", "changed"],
            ["hooks", "disable", "2"],
            ["hooks", "reset-secret", "1", "--overlap", "1h"],
            ["hooks", "import", str(import_file)],
            ["check-config"],
            ["secrets", "encrypt"],
            ["secrets", "status"],
            ["secrets", "rotate-key", "--new-key-file", str(tmp_path / "wrong.key")],
        ):
            if configured is None and argv == ["secrets", "encrypt"]:
                continue  # refused earlier: no key_file
            result = cli(*argv, config=config)
            assert result.code == 2, (argv, result.out, result.err)
            assert f"encrypted with key {right}, which is not configured" in result.err, (argv, result.err)
            expected = f"secrets.key_file has key {configured}" if configured else "no secrets.key_file is set"
            assert expected in result.err, (argv, result.err)
        assert raw_rows(hooks_url) == before


def test_secrets_actions_need_a_database(yaml_config: Path, cli: Cli) -> None:
    """With hooks in a YAML file there is nothing to encrypt: exit 2 and say so."""
    for action in ("encrypt", "status"):
        result = cli("secrets", action, config=yaml_config)
        assert result.code == 2 and "needs subscriptions.source: db" in result.err
