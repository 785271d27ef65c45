"""`hookd serve` and `hookd api-keys` at the command line: refusals and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from hookd.cli import main


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_serve_refuses_a_yaml_source_with_exit_2(tmp_path: Path) -> None:
    """With subscriptions.source: yaml, `hookd serve` exits 2 and says it needs source db, listening on nothing."""
    (tmp_path / "hooks.yaml").write_text("hooks: []\n")
    config = write(tmp_path / "hookd.yaml", {"subscriptions": {"source": "yaml", "path": "hooks.yaml"}})
    done = subprocess.run(
        [sys.executable, "-m", "hookd", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "subscriptions.source: db" in done.stderr
    assert "api.listening" not in done.stdout


def test_bad_api_settings_are_reported_together(tmp_path: Path, capsys: object) -> None:
    """Every bad api.* key is named at once and the command exits 2."""
    config = write(
        tmp_path / "hookd.yaml",
        {
            "subscriptions": {"source": "db", "url": "sqlite:///hooks.db"},
            "api": {"listen": "nowhere", "rate_limit_per_hour": 0, "session_ttl_s": "long", "colour": "blue"},
        },
    )
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    for key in ("api.listen", "api.rate_limit_per_hour", "api.session_ttl_s", "api.colour"):
        assert key in err


def test_api_keys_need_an_owner_and_a_database(tmp_path: Path, capsys: object) -> None:
    """create needs --account or --all-accounts (not both); a YAML source or an unknown id to revoke is exit 2."""
    db_config = write(tmp_path / "db.yaml", {"subscriptions": {"source": "db", "url": "sqlite:///hooks.db"}})
    (tmp_path / "hooks.yaml").write_text("hooks: []\n")
    yaml_config = write(tmp_path / "yaml.yaml", {"subscriptions": {"source": "yaml", "path": "hooks.yaml"}})
    for argv in (["api-keys", "create"], ["api-keys", "create", "--account", "a", "--all-accounts"]):
        try:
            code = main([*argv, "--config", str(db_config)])
        except SystemExit as exc:
            code = int(exc.code or 0)
        assert code == 2, argv
    assert main(["api-keys", "create", "--account", "a", "--config", str(yaml_config)]) == 2
    assert main(["api-keys", "revoke", "k000000000000", "--config", str(db_config)]) == 2
    capsys.readouterr()  # type: ignore[attr-defined]
    assert main(["api-keys", "create", "--all-accounts", "--json", "--config", str(db_config)]) == 0
    created = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert set(created) >= {"key", "id", "account_id"} and created["account_id"] is None
