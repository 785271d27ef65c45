"""support.runstate: the processes of one test run share one decision per service and stop, by pid, only
what the run started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import runstate

TESTS = Path(__file__).resolve().parents[1]

#: One process of a run: under the run's lock for "svc", decide (record its pid) unless decided.
_DECIDE = """
import json, os, sys, time
from support import runstate
with runstate.locked("svc"):
    record = runstate.read("svc")
    if record is None:
        time.sleep(0.2)  # a slow decision: the others must wait for it, not decide too
        record = {"by": os.getpid()}
        runstate.write("svc", record)
print(json.dumps(record))
"""


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory of the test's own, as a root would name it for its workers."""
    monkeypatch.setenv(runstate.RUN_DIR_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    """A process group of the test's own: a shell (the leader) and a child of it, both sleeping."""
    process = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_the_first_process_decides_and_the_others_follow_its_record(run_dir: Path) -> None:
    """Four processes asking at once: one decides, the other three read its record."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    processes = [subprocess.Popen([sys.executable, "-c", _DECIDE], stdout=subprocess.PIPE, env=env) for _ in range(4)]
    answers = [json.loads(p.communicate(timeout=60)[0]) for p in processes]
    assert len({a["by"] for a in answers}) == 1
    assert answers[0]["by"] in {p.pid for p in processes}
    assert runstate.read("svc") == answers[0]


def test_a_worker_joins_its_roots_run_and_only_the_root_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root makes the run's directory and names it; a worker uses it; the root deletes it at the end."""
    monkeypatch.delenv(runstate.RUN_DIR_ENV, raising=False)
    monkeypatch.setattr(runstate, "_owned", [])
    runstate.begin(worker=False)
    made = Path(os.environ[runstate.RUN_DIR_ENV])
    assert runstate.is_root() and made.is_dir()
    monkeypatch.setattr(runstate, "_owned", [])  # as in a worker process: the variable, no ownership
    runstate.begin(worker=True)
    assert not runstate.is_root() and os.environ[runstate.RUN_DIR_ENV] == str(made)
    runstate.end()  # a worker's end deletes nothing
    assert made.is_dir()
    monkeypatch.setattr(runstate, "_owned", [made])
    runstate.end()
    assert not made.exists()


def test_a_started_process_group_is_stopped_by_its_pid(group: subprocess.Popen[bytes]) -> None:
    """stop() signals the leader, and what is left of its group is gone when it returns."""
    started = runstate.Started.of(group.pid)
    assert started.alive()
    started.stop(signal.SIGTERM, grace_s=1)  # the leader goes on TERM; its sleeping child is killed after
    assert group.wait(timeout=10) == -signal.SIGTERM
    assert runstate._members(group.pid) == []


def test_a_pid_that_names_another_process_now_is_left_alone(group: subprocess.Popen[bytes]) -> None:
    """A record whose start time does not match the pid's process (the pid was reused) stops nothing."""
    stale = runstate.Started(group.pid, runstate.Started.of(group.pid).ticks - 1)
    assert not stale.alive()
    stale.stop(signal.SIGTERM, grace_s=1)
    assert group.poll() is None and runstate._members(group.pid)
