"""filesafety: files holding secrets that group or others can read are reported; others are not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hookd.filesafety import permission_problems


def _write(path: Path, doc: object, mode: int) -> Path:
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    path.chmod(mode)
    return path


def _config(tmp_path: Path, *, mode: int = 0o600, broker_url: str = "amqp://127.0.0.1/", **subs: object) -> Path:
    subscriptions = subs or {"source": "yaml", "path": "hooks.yaml"}
    return _write(tmp_path / "hookd.yaml", {"broker": {"url": broker_url}, "subscriptions": subscriptions}, mode)


def _hooks(tmp_path: Path, entry: dict[str, object], mode: int) -> Path:
    base = {"id": 1, "account_id": "a", "url": "https://x.example/", "events": ["job"]}
    return _write(tmp_path / "hooks.yaml", {"hooks": [{**base, **entry}]}, mode)


def test_world_readable_hooks_file_with_inline_secret_is_reported(tmp_path: Path) -> None:
    """A hooks file with an inline secret readable by every user is reported with its mode and a fix."""
    config = _config(tmp_path)
    _hooks(tmp_path, {"secret": "s3cr3t"}, 0o644)
    [problem] = permission_problems(config)
    assert "hooks.yaml" in problem and "every local user" in problem and "0644" in problem and "chmod 600" in problem


def test_group_readable_hooks_file_is_reported(tmp_path: Path) -> None:
    """Group read access to a file with secrets is reported too, naming the group."""
    config = _config(tmp_path)
    _hooks(tmp_path, {"secret": "s3cr3t"}, 0o640)
    [problem] = permission_problems(config)
    assert "its group" in problem and "every local user" not in problem


def test_private_files_are_not_reported(tmp_path: Path) -> None:
    """Files readable by their owner only are fine."""
    config = _config(tmp_path)
    _hooks(tmp_path, {"secret": "s3cr3t", "basic_auth": {"username": "u", "password": "p"}}, 0o600)
    assert permission_problems(config) == []


def test_hooks_file_without_secrets_may_be_world_readable(tmp_path: Path) -> None:
    """A hooks file taking its secret from the environment holds none: not reported."""
    config = _config(tmp_path)
    _hooks(tmp_path, {"secret_env": "HOOK_1_SECRET"}, 0o644)
    assert permission_problems(config) == []


def test_inline_basic_auth_password_counts_as_a_secret(tmp_path: Path) -> None:
    """An inline basic-auth password makes the hooks file secret-bearing."""
    config = _config(tmp_path)
    _hooks(tmp_path, {"secret_env": "S", "basic_auth": {"username": "u", "password": "pw"}}, 0o644)
    assert len(permission_problems(config)) == 1


def test_readable_secret_file_is_reported(tmp_path: Path) -> None:
    """A secret_file readable by others is reported, even when the hooks file itself is fine."""
    config = _config(tmp_path)
    secret = tmp_path / "hook-1.secret"
    secret.write_text("s3cr3t\n")
    secret.chmod(0o644)
    _hooks(tmp_path, {"secret_file": "hook-1.secret"}, 0o644)
    [problem] = permission_problems(config)
    assert problem.startswith(f"{secret}: secret file")


def test_readable_password_file_is_reported(tmp_path: Path) -> None:
    """A basic-auth password_file readable by others is reported."""
    config = _config(tmp_path)
    password = tmp_path / "pw"
    password.write_text("pw\n")
    password.chmod(0o604)
    _hooks(tmp_path, {"secret_env": "S", "basic_auth": {"username": "u", "password_file": str(password)}}, 0o600)
    assert [p.split(":")[0] for p in permission_problems(config)] == [str(password)]


def test_config_with_broker_password_is_reported(tmp_path: Path) -> None:
    """A config file whose broker URL carries a password is secret-bearing."""
    config = _config(tmp_path, mode=0o644, broker_url="amqp://hookd:pw@broker/")
    _hooks(tmp_path, {"secret_env": "S"}, 0o644)
    [problem] = permission_problems(config)
    assert problem.startswith(f"{config}: config file")


def test_config_without_passwords_may_be_world_readable(tmp_path: Path) -> None:
    """A config file without passwords is not reported whatever its mode."""
    config = _config(tmp_path, mode=0o644)
    _hooks(tmp_path, {"secret_env": "S"}, 0o644)
    assert permission_problems(config) == []


def test_readable_sqlite_hooks_database_is_reported(tmp_path: Path) -> None:
    """With a database source, a readable SQLite file (every hook's secret) is reported."""
    database = tmp_path / "hooks.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    config = _config(tmp_path, source="db", url="sqlite:///hooks.sqlite3")
    [problem] = permission_problems(config)
    assert problem.startswith(f"{database}: hooks database")


@pytest.mark.parametrize("text", ["", "[", "hooks: 3", "- a\n- b"])
def test_unparseable_files_give_no_warning(tmp_path: Path, text: str) -> None:
    """Broken or odd files are left to the loader: no warning, no crash."""
    (tmp_path / "hooks.yaml").write_text(text)
    assert permission_problems(_config(tmp_path)) == []


def test_missing_config_gives_no_warning(tmp_path: Path) -> None:
    """A config file that does not exist yields no warning (the loader reports it)."""
    assert permission_problems(tmp_path / "absent.yaml") == []


@pytest.mark.parametrize(
    "subscriptions", [{"source": "yaml", "path": "hooks\x00.yaml"}, {"source": "db", "url": "sqlite:///h\x00.db"}]
)
def test_nul_in_a_configured_path_gives_no_warning(tmp_path: Path, subscriptions: dict[str, str]) -> None:
    """A path with a NUL character (the loader reports it) is skipped, not a crash."""
    assert permission_problems(_config(tmp_path, **subscriptions)) == []
