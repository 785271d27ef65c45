"""The alerting rules in deploy/prometheus/ run on Prometheus' own rule engine: `promtool check rules`
validates them, `promtool test rules` plays the series of hookd-rules.test.yml through them (for each
alert, series that fire it and series that do not). promtool is Debian's `prometheus` package."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import services

RULES_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(services.promtool()), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_rules_accepts_the_rules_file() -> None:
    """Every rule parses, and every alert's expression, labels and annotation templates are valid."""
    done = _promtool("check", "rules", "hookd-rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 11 rules found" in done.stdout + done.stderr


def test_promtool_test_rules_fires_and_stays_quiet_as_the_test_file_says() -> None:
    """Each alert fires on its firing series, with the summary and description expected, and only there."""
    done = _promtool("test", "rules", "hookd-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
