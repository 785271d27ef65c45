"""What the integration fixtures build, as classes a suite or a test may name in its annotations:
`HookdFactory` (hookd processes on a test's topology), `Reaper` (background teardown) and
`unique_prefix` (the body of every suite's `prefix` fixture). The fixtures themselves are in
tests/integration/conftest.py."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from .helpers import (
    Amqp,
    CliResult,
    HookdProcess,
    Names,
    config_document,
    run_cli,
    write_hooks,
)

#: The contract's default durable schedule: deleted too, in case a config fell back to it.
_DEFAULT_RETRY_DELAYS_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)


class Reaper:
    """Finishes slow teardown in the background (a daemon's drain, then deleting its queues).

    Each test has its own queues, exchange and receiver, so the next test need not wait for this;
    the session waits for all of it at the end and fails if any clean-up failed.
    """

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def submit(self, name: str, job: Callable[[], None]) -> None:
        def run() -> None:
            try:
                job()
            except Exception as exc:
                self.errors.append(f"{name}: {exc!r}")

        thread = threading.Thread(target=run, name=f"reaper {name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=60)


def unique_prefix(
    broker_url: str, reaper: Reaper, label: str, retry_delays_s: Iterable[float] = _DEFAULT_RETRY_DELAYS_S
) -> Iterator[Names]:
    """The body of every suite's `prefix` fixture: a unique queue prefix and exchange for one test;
    after it, the test's own clean-up steps, then every queue hookd may have declared and the exchange
    are deleted (in the background, joined at the end of the session)."""
    token = uuid.uuid4().hex[:10]
    names = Names(prefix=f"{label}-{token}", exchange=f"{label}-{token}.exchange")
    names.retry_delays_s.update(retry_delays_s)
    yield names

    def delete() -> None:
        for step in names.before_delete:
            step()
        with Amqp(broker_url) as channel:
            channel.delete(names)

    reaper.submit(names.prefix, delete)


class HookdFactory:
    """Writes hookd.yaml and hooks.yaml into the test's tmp dir and starts `hookd run` on them."""

    def __init__(self, broker_url: str, names: Names, workdir: Path) -> None:
        self.broker_url = broker_url
        self.names = names
        self.workdir = workdir
        self.config_path = workdir / "hookd.yaml"
        self.hooks_path = workdir / "hooks.yaml"
        self.processes: list[HookdProcess] = []

    def write_config(
        self,
        hooks: Iterable[Mapping[str, Any]] = (),
        *,
        broker: Mapping[str, Any] | None = None,
        delivery: Mapping[str, Any] | None = None,
        logging: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write both files (hooks.yaml from `hooks`); overrides merge into each section's defaults."""
        write_hooks(self.hooks_path, hooks)
        doc = config_document(
            broker_url=self.broker_url,
            names=self.names,
            hooks_path=self.hooks_path,
            broker=broker,
            delivery=delivery,
            logging=logging,
        )
        delays = doc["delivery"]["retry_delays_s"]
        if isinstance(delays, list):  # a test may write a broken value on purpose
            self.names.retry_delays_s.update(float(d) for d in delays if isinstance(d, int | float))
        self.config_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return self.config_path

    def write_hooks(self, hooks: Iterable[Mapping[str, Any]]) -> None:
        write_hooks(self.hooks_path, hooks)

    def start(
        self,
        hooks: Iterable[Mapping[str, Any]] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **sections: Mapping[str, Any] | None,
    ) -> HookdProcess:
        """Start `hookd run`; with `hooks`, write the config first. Returns once it is connected."""
        if hooks is not None:
            self.write_config(hooks, **sections)
        process = HookdProcess(self.config_path, self.workdir, env=env)
        self.processes.append(process)
        process.wait_log("broker.connected")
        return process

    def cli(self, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> CliResult:
        """Run another hookd command in the test's tmp dir."""
        return run_cli(*args, cwd=self.workdir, env=env, stdin=stdin)

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()
