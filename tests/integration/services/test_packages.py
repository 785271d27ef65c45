"""The Debian package step of the bootstrap, without installing anything: the message and the guard."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.bootstrap import devbroker, services


def test_without_root_a_missing_server_fails_with_one_line_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root: nothing is installed, and the error says in one line which package to install."""
    monkeypatch.setattr(devbroker, "installed", lambda: False)
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)
    with pytest.raises(services.ServiceUnavailable) as caught:
        services.ensure_rabbitmq_installed()
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install rabbitmq-server" in message


@pytest.mark.parametrize("existing", [None, b"#!/bin/sh\nexit 0\n"], ids=["no policy", "own policy"])
def test_services_stay_down_during_an_install_and_the_policy_is_restored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, existing: bytes | None
) -> None:
    """While installing, policy-rc.d refuses every service start (101); afterwards the old one is back."""
    policy = tmp_path / "policy-rc.d"
    if existing is not None:
        policy.write_bytes(existing)
        policy.chmod(0o750)
    monkeypatch.setattr(services, "_POLICY_RC_D", policy)
    with services._services_kept_down():
        assert subprocess.run([str(policy), "rabbitmq-server", "start"], check=False).returncode == 101
    if existing is None:
        assert not policy.exists()
    else:
        assert policy.read_bytes() == existing
        assert policy.stat().st_mode & 0o777 == 0o750
    assert list(tmp_path.iterdir()) == ([policy] if existing is not None else [])
