"""A real hookd stack for the API and browser tests: `hookd serve` and `hookd run` subprocesses on one
hooks database (SQLite or a PostgreSQL schema of their own), a broker topology of their own, a
recording receiver, and API keys made with the real `hookd api-keys create`.

Shared by tests/integration/api and tests/integration/browser (a helper module, not a conftest). The
building blocks (the receiver, AMQP helpers, waits) are `support.helpers`.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from hookd.cli import main
from hookd.state.db import Database
from hookd.subscriptions.sql_store import SqlStore
from support import services
from support.helpers import (
    Amqp,
    Names,
    Receiver,
    free_port,
    hookd_command,
    subprocess_env,
    wait_until,
)

RETRY_DELAYS_S = (1.0,)


def need_broker() -> None:
    """The session's RabbitMQ answers (started privately if the configured one does not)."""
    services.amqp_url()


@contextlib.contextmanager
def database_url(backend: str, folder: Path) -> Iterator[str]:
    """An empty hooks database: a SQLite file in `folder`, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'hooks.db'}"
        return
    with services.postgres_schema("hookd_api") as schema:
        yield services.in_schema(services.postgres_url(), schema)


class Process:
    """One `hookd COMMAND --config PATH` subprocess; JSON log lines on stdout go to a file."""

    def __init__(self, command: str, config: Path, folder: Path, env: dict[str, str] | None = None) -> None:
        self.stdout_path = folder / f"{command}-{uuid.uuid4().hex[:6]}.stdout"
        self.stderr_path = self.stdout_path.with_suffix(".stderr")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                hookd_command(command, "--config", str(config)),
                cwd=folder,
                env=subprocess_env(env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.stdout_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def wait_log(self, msg: str, timeout_s: float = 20.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            entries = [e for e in self.logs() if e.get("msg") == msg]
            if entries:
                return entries[0]
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hookd exited with {self.process.returncode} before {msg!r}:\n{self.output()[-3000:]}"
                )
            return None

        return wait_until(found, timeout_s=timeout_s, what=lambda: f"{msg!r} in the log:\n{self.output()[-3000:]}")

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; return the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)


class Stack:
    """hookd serve (+ hookd run, + a receiver) on one database and one broker topology."""

    def __init__(
        self,
        folder: Path,
        database: str,
        *,
        run: bool = True,
        api: dict[str, Any] | None = None,
        delivery: dict[str, Any] | None = None,
        workers: int = 1,
    ) -> None:
        token = uuid.uuid4().hex[:10]
        self.folder = folder
        self.database = database
        self.names = Names(prefix=f"hookd-api-{token}", exchange=f"hookd-api-{token}.exchange")
        self.names.retry_delays_s.update(RETRY_DELAYS_S)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "hookd.yaml"
        doc = {
            "broker": {
                "url": services.amqp_url(),
                "exchange": self.names.exchange,
                "queue_prefix": self.names.prefix,
                "queue_type": "classic",
                "reconnect_max_s": 1,
            },
            "subscriptions": {"source": "db", "url": database, "poll_interval_s": 0.2},
            "delivery": {
                "timeout_s": 5,
                "retry_delays_s": list(RETRY_DELAYS_S),
                "inline_attempts": 1,
                "allow_private_networks": True,  # the operator's choice: the receiver is on loopback
                "drain_timeout_s": 2,
                **(delivery or {}),
            },
            "api": {"listen": f"127.0.0.1:{self.port}", **(api or {})},
            "logging": {"format": "json", "level": "info"},
        }
        self.config.write_text(yaml.safe_dump(doc), encoding="utf-8")
        self.receiver = Receiver()
        self.processes: list[Process] = []
        self.keys: list[str] = []
        try:
            self.serve = self._start("serve", "api.listening")
            self.run = self._start("run", "broker.connected") if run else None
            self.workers = [self.run] if self.run else []
            self.workers += [self._start("run", "broker.connected") for _ in range(workers - 1) if run]
        except BaseException:
            self.close()
            raise

    def _start(self, command: str, ready: str) -> Process:
        process = Process(command, self.config, self.folder)
        self.processes.append(process)
        process.wait_log(ready)
        return process

    def restart_workers(self) -> None:
        """Stop every `hookd run` (SIGTERM: drained) and start as many again."""
        for worker in self.workers:
            assert worker.stop() == 0, worker.output()[-3000:]
        self.workers = [self._start("run", "broker.connected") for _ in self.workers]
        self.run = self.workers[0] if self.workers else None

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.receiver.close()
        with contextlib.suppress(Exception), Amqp(services.amqp_url()) as channel:
            channel.delete(self.names)

    # -- helpers for tests ----------------------------------------------------------------------------
    def cli(self, *argv: str) -> tuple[int, str]:
        """`hookd ARGV --config ...` in process; (exit code, stdout)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*argv, "--config", str(self.config)])
        return code, out.getvalue()

    def key(self, account: str | None) -> str:
        """A new API key of `account` (None: an operator key), made by `hookd api-keys create --json`."""
        owner = ["--all-accounts"] if account is None else ["--account", account]
        code, out = self.cli("api-keys", "create", *owner, "--json")
        assert code == 0, out
        text = str(json.loads(out)["key"])
        self.keys.append(text)
        return text

    def client(self, key: str | None) -> requests.Session:
        """An HTTP client for the API, authenticated with `key` (`curl -u KEY:`), or anonymous."""
        session = requests.Session()
        if key is not None:
            session.auth = (key, "")
        return session

    def api(self, account: str, path: str = "") -> str:
        return f"{self.url}/{account}/api{path}"

    def revision(self) -> int:
        """The hooks database's change counter: unchanged means nothing was written."""
        with Database.from_url(self.database) as db:
            return SqlStore(db).revision()

    def wait_loaded(self) -> None:
        """Every worker has loaded every hook of the database (its last reload counted them all), so
        an event published now is matched against them (a worker polls every 0.2 s)."""
        with Database.from_url(self.database) as db:
            total = len(SqlStore(db).list())

        def loaded(worker: Process) -> bool:
            counts = [
                e.get("hooks") for e in worker.logs() if e.get("msg") in ("subscriptions.reloaded", "daemon.start")
            ]
            return bool(counts) and counts[-1] == total

        wait_for(lambda: all(loaded(w) for w in self.workers), f"every worker to load the {total} hooks")

    def publish(self, event: str, account: str, body: dict[str, Any] | None = None) -> str:
        with Amqp(services.amqp_url()) as channel:
            return channel.publish_event(self.names, event, body or {"id": 7, "status": "failed"}, account_id=account)

    def wait_requests(self, path: str, count: int = 1, timeout_s: float = 15.0) -> list[Any]:
        return self.receiver.wait_for(count, path, timeout_s=timeout_s)

    def serve_output(self) -> str:
        return self.serve.output()


def unique(prefix: str) -> str:
    """A fresh account id, so tests sharing one stack never see each other's hooks."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    return wait_until(condition, timeout_s=timeout_s, what=what)


def settle(seconds: float = 0.3) -> None:
    time.sleep(seconds)
