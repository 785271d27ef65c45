"""config: the `secrets` section (key_file, old_key_files), validated with every problem at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookd.cipher import KEY_BYTES, new_key_file
from hookd.config import SecretsSettings, load_settings
from hookd.errors import ConfigError

DB = {"source": "db", "url": "sqlite:///hooks.db"}


def write_config(folder: Path, **sections: Any) -> Path:
    path = folder / "hookd.yaml"
    path.write_text(yaml.safe_dump({"subscriptions": DB, **sections}), encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ or {})
    return info.value.problems


def test_no_secrets_section_means_no_encryption(tmp_path: Path) -> None:
    """Unset (or null) key_file: no keys, values stored as given."""
    assert load_settings(write_config(tmp_path), {}).secrets == SecretsSettings()
    assert load_settings(write_config(tmp_path, secrets={"key_file": None}), {}).secrets == SecretsSettings()


def test_key_files_resolve_against_the_config_file(tmp_path: Path) -> None:
    """Relative paths are relative to the config file's folder, not the working directory."""
    (tmp_path / "keys").mkdir()
    new_key_file(tmp_path / "keys" / "new.key")
    new_key_file(tmp_path / "old.key")
    config = write_config(tmp_path, secrets={"key_file": "keys/new.key", "old_key_files": [str(tmp_path / "old.key")]})
    secrets = load_settings(config, {}).secrets
    assert secrets.key_file == tmp_path / "keys" / "new.key"
    assert secrets.old_key_files == (tmp_path / "old.key",)


def test_every_key_file_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Missing, wrong size and group-readable files: one problem each, naming the setting, exit-2 kind."""
    (tmp_path / "short.key").write_bytes(b"k" * 16)
    (tmp_path / "short.key").chmod(0o600)
    new_key_file(tmp_path / "open.key")
    (tmp_path / "open.key").chmod(0o644)
    config = write_config(
        tmp_path,
        secrets={"key_file": "missing.key", "old_key_files": ["short.key", "open.key"]},
        delivery={"timeout_s": -1},
    )
    problems = problems_of(config)
    assert any(p.startswith("secrets.key_file:") and "does not exist" in p for p in problems)
    assert any(p.startswith("secrets.old_key_files[0]:") and "holds 16 bytes" in p for p in problems)
    assert any(p.startswith("secrets.old_key_files[1]:") and "mode 0644" in p for p in problems)
    assert any(p.startswith("delivery.timeout_s") for p in problems)


def test_malformed_secrets_values_are_problems(tmp_path: Path) -> None:
    """Wrong types, unknown keys, and old keys without a current one are refused."""
    config = write_config(tmp_path, secrets={"key_file": 42, "old_key_files": "k.key", "key": "x"})
    problems = problems_of(config)
    assert "secrets.key: unknown key" in problems
    assert any(p.startswith("secrets.key_file: must be a file path") for p in problems)
    assert any(p.startswith("secrets.old_key_files: must be a list of file paths") for p in problems)
    new_key_file(tmp_path / "old.key")
    lone = problems_of(write_config(tmp_path, secrets={"old_key_files": ["old.key"]}))
    assert lone == ("secrets.old_key_files: only with secrets.key_file (the key that seals new values)",)


def test_the_systemd_credential_is_used_when_present(tmp_path: Path) -> None:
    """With CREDENTIALS_DIRECTORY holding a file of the key file's name, that file is the key."""
    credentials = tmp_path / "run-credentials"
    credentials.mkdir()
    new_key_file(credentials / "secrets.key")
    config = write_config(tmp_path, secrets={"key_file": "/etc/hookd-missing/secrets.key"})
    settings = load_settings(config, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert settings.secrets.key_file == credentials / "secrets.key"
    assert problems_of(config)[0].startswith("secrets.key_file: /etc/hookd-missing/secrets.key does not exist")


def test_a_key_with_a_yaml_source_is_a_notice(tmp_path: Path) -> None:
    """The hooks file is never encrypted: a key_file with source yaml is accepted with a notice."""
    new_key_file(tmp_path / "secrets.key")
    path = tmp_path / "hookd.yaml"
    path.write_text(
        yaml.safe_dump(
            {"subscriptions": {"source": "yaml", "path": "hooks.yaml"}, "secrets": {"key_file": "secrets.key"}}
        ),
        encoding="utf-8",
    )
    notices = load_settings(path, {}).notices
    assert any("secrets.key_file has no effect with subscriptions.source: yaml" in n for n in notices)


def test_the_key_never_appears_in_the_settings_repr(tmp_path: Path) -> None:
    """Settings hold the key file's path, never its bytes."""
    new_key_file(tmp_path / "secrets.key")
    settings = load_settings(write_config(tmp_path, secrets={"key_file": "secrets.key"}), {})
    key = (tmp_path / "secrets.key").read_bytes()
    assert len(key) == KEY_BYTES
    assert key.hex() not in repr(settings) and repr(key) not in repr(settings)
    assert os.fspath(tmp_path / "secrets.key") in repr(settings)
