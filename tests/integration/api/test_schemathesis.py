"""The spec is the contract: schemathesis (every phase, stateful links, every check) against a real
`hookd serve` on SQLite finds no failure.

One run of schemathesis's own command line, as an outsider would run it, with the API key of the
account it tests and a fixed seed (the same cases every run: a failure reproduces). The only help it
gets is `schemathesis_hooks.py`, which teaches it the `basic-auth-data` format the spec names. Its
report (cases, failures) is printed with the test's output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.stack import Stack, need_broker, unique

#: Cases per operation and phase: the whole run stays within about two minutes on a busy 2-core machine.
MAX_EXAMPLES = 25
SEED = 21
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """hookd serve alone (no worker: pings wait in the broker) on SQLite, with room for every request."""
    need_broker()
    folder = tmp_path_factory.mktemp("schemathesis")
    running = Stack(folder, f"sqlite:///{folder / 'hooks.db'}", run=False, api={"rate_limit_per_hour": 100_000_000})
    yield running
    running.close()


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_schemathesis_finds_nothing_the_spec_does_not_allow(served: Stack, tmp_path: Path) -> None:
    """All phases, stateful links and every check against /openapi.json: zero failures, zero errors."""
    account = unique("st")
    key = served.key(account)
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.account_id" = "{account}"\n', encoding="utf-8")
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        "NO_COLOR": "1",
    }
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run",
        f"{served.url}/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--auth", f"{key}:",
        "--seed", str(SEED),
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1",  # threads: CPython 3.11's ast.parse is not thread-safe, hypothesis calls it
        "--request-timeout", "30",
        "--suppress-health-check", "too_slow,filter_too_much",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=tmp_path
    )
    took = time.monotonic() - started
    report = done.stdout + done.stderr
    summary = [line.strip() for line in report.splitlines() if re.search(r"\(in [0-9.]+s\)|generated|Scenarios", line)]
    print(f"schemathesis: exit {done.returncode} in {took:.0f} s; " + "; ".join(summary))
    assert done.returncode == 0, report[-20000:]
    generated = re.search(r"\b(\d+) generated, \1 passed", report)
    assert generated is not None and int(generated[1]) > 500, report[-5000:]
