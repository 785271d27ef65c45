"""Factory fixtures for the integration tests: a real broker, a per-test topology, a receiver, hookd.

Every fixture cleans up what it made: the receiver's threads are joined at once; hookd processes get
SIGTERM at once and are waited for (then killed) in the background, after which the test's queues
and exchange are deleted from the broker. The session waits for all of it before it ends.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookd.testing.devbroker import PrivateBroker, installed

from .helpers import (
    DEFAULT_AMQP_URL,
    Amqp,
    CliResult,
    HookdProcess,
    Names,
    Receiver,
    amqp_problem,
    config_document,
    run_cli,
    write_hooks,
)

#: The contract's default durable schedule: deleted too, in case a config fell back to it.
_DEFAULT_RETRY_DELAYS_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The AMQP URL of a broker that answers; skip (fail under CI=true) when there is none."""
    url = os.environ.get("HOOKD_TEST_AMQP_URL") or DEFAULT_AMQP_URL
    problem = amqp_problem(url)
    if problem is not None:
        message = (
            f"RabbitMQ is needed for the integration tests and is unreachable: {problem}. "
            "Start it (scripts/ensure-services.sh) or point HOOKD_TEST_AMQP_URL at one."
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def amqp(broker_url: str) -> Iterator[Amqp]:
    """The test's own confirmed channel: publish like the scheduler, read `.dead` and `.invalid`."""
    with Amqp(broker_url) as channel:
        yield channel


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


@pytest.fixture(scope="session")
def reaper() -> Iterator[Reaper]:
    """Background teardown, joined (and checked) at the end of the session."""
    background = Reaper()
    yield background
    background.join()
    assert not background.errors, background.errors


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


@pytest.fixture
def prefix(broker_url: str, reaper: Reaper) -> Iterator[Names]:
    """A unique queue prefix and exchange for one test; every queue and the exchange are deleted after."""
    yield from unique_prefix(broker_url, reaper, "hookd-it")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP receiver on 127.0.0.1, programmable per path."""
    server = Receiver()
    yield server
    server.close()


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


@pytest.fixture
def hookd(broker_url: str, prefix: Names, tmp_path: Path) -> Iterator[HookdFactory]:
    """Start hookd daemons on the test's topology; each is stopped (SIGTERM, then kill) afterwards."""
    factory = HookdFactory(broker_url, prefix, tmp_path)
    yield factory
    for process in factory.processes:
        process.terminate()
    prefix.before_delete.append(factory.stop_all)  # waits for the drain (kills after 5 s), then queues go


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A RabbitMQ node of the test's own, to stop and restart under hookd (needs the rabbitmq-server
    package and root; skipped without them, failed under CI=true)."""
    if not installed() or os.geteuid() != 0:
        message = "a private RabbitMQ node needs the rabbitmq-server package and root"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    node = PrivateBroker(tmp_path / "rabbit")
    node.start()
    yield node
    node.close()
