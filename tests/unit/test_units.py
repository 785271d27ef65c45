"""The systemd units in deploy/systemd: the settings the install guide promises, and systemd-analyze verify."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hookd.config import DeliverySettings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
#: What both units must say, key by key (a key may appear several times in a unit).
REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "Restart": "on-failure",
    "EnvironmentFile": "-/etc/hookd/hookd.env",
    "DynamicUser": "yes",
    "StateDirectory": "hookd",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "KillSignal": "SIGTERM",
}


def parse(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]} (systemd allows repeated keys)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], key: str) -> list[str]:
    return [v for k, v in unit.get("Service", []) if k == key]


@pytest.mark.parametrize("name", ["hookd.service", "hookd@.service"])
def test_unit_has_the_promised_settings(name: str) -> None:
    """Type=notify with a watchdog, restart on failure, env file, dynamic user, state dir, hardening."""
    unit = parse(UNITS / name)
    for key, expected in REQUIRED.items():
        assert expected in values(unit, key), f"{name}: {key}={expected} missing (has {values(unit, key)})"
    assert int(values(unit, "WatchdogSec")[0]) >= 10
    assert ("WantedBy", "multi-user.target") in unit["Install"]


@pytest.mark.parametrize("name", ["hookd.service", "hookd@.service"])
def test_stop_timeout_exceeds_the_drain_timeout(name: str) -> None:
    """systemd must not SIGKILL hookd while it drains within delivery.drain_timeout_s (default)."""
    unit = parse(UNITS / name)
    assert int(values(unit, "TimeoutStopSec")[0]) > DeliverySettings().drain_timeout_s + 10


def test_template_names_its_instance_and_shares_everything_else() -> None:
    """hookd@N differs from hookd.service only by naming the instance."""
    single, template = parse(UNITS / "hookd.service"), parse(UNITS / "hookd@.service")
    assert "hookd@%i" in values(template, "SyslogIdentifier")
    assert "HOOKD_INSTANCE=%i" in values(template, "Environment")
    instance_only = {"SyslogIdentifier", "Environment", "EnvironmentFile"}
    same = [(k, v) for k, v in single["Service"] if k not in instance_only]
    assert same == [(k, v) for k, v in template["Service"] if k not in instance_only]


def test_env_example_names_the_broker_url() -> None:
    """The EnvironmentFile example shows HOOKD_AMQP_URL, the variable config.py reads."""
    text = (UNITS / "hookd.env.example").read_text(encoding="utf-8")
    assert "HOOKD_AMQP_URL=" in text


def test_systemd_analyze_verify_is_clean() -> None:
    """scripts/verify-units.sh (make verify-units) passes: no warning at all from systemd-analyze."""
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (install the systemd package)", pytrace=False)
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "verify-units.sh")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
