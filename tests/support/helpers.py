"""Building blocks of the integration tests: a recording HTTP receiver, a hookd process, AMQP helpers.

Everything here talks to real things: RabbitMQ through pika, hookd as a subprocess, HTTP over
loopback. Waits poll a condition until a deadline instead of sleeping a fixed time; the only fixed
pauses are `settle()` calls that give an unwanted effect the chance to show up before asserting its
absence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pika
import pika.exceptions
import yaml

from hookd.broker import Topology
from hookd.config import BrokerSettings

T = TypeVar("T")

#: Ordered delivery's partitions in a test's hookd.yaml (see `config_document`).
TEST_PARTITIONS = 4
#: How long an absence is given to show itself (a stray delivery, a redelivery) before asserting it.
SETTLE_S = 0.3


# -- waiting -------------------------------------------------------------------------------------------
def wait_until(
    condition: Callable[[], T],
    *,
    timeout_s: float = 15.0,
    interval_s: float = 0.05,
    what: str | Callable[[], str] = "condition",
) -> T:
    """Poll `condition` until it returns something truthy and return that; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            description = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {description}")
        time.sleep(interval_s)


def settle(seconds: float = SETTLE_S) -> None:
    """Give something that must NOT happen the time it would need to happen."""
    time.sleep(seconds)


def signature(secret: str, body: bytes) -> str:
    """The contract's X-Hook-Signature, computed independently of hookd."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def free_port() -> int:
    """A TCP port nobody listens on right now (for refused connections and `hookd receive`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the recording HTTP receiver ---------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """One programmed answer: a status, an optional delay before answering, extra headers; with
    `hold`, the answer waits until the test sets that event (at most `HOLD_MAX_S`), so a test can keep
    a delivery in flight exactly as long as it needs, whatever the machine's speed."""

    status: int = 200
    delay_s: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None


#: The longest a held answer waits for its test (a test that forgets to release it fails, not hangs).
HOLD_MAX_S = 60.0


@dataclass(frozen=True)
class Recorded:
    """One request as the receiver saw it; `headers` are case-insensitive."""

    method: str
    path: str
    headers: Message
    body: bytes
    at: float  # time.monotonic() when the request had been read, before any programmed delay

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def event(self) -> str | None:
        return self.headers.get("X-Hook-Event")

    @property
    def hook_id(self) -> str | None:
        return self.headers.get("X-Hook-ID")

    @property
    def delivery(self) -> str | None:
        return self.headers.get("X-Hook-Delivery")

    @property
    def attempt(self) -> int:
        return int(self.headers.get("X-Hook-Attempt") or 0)


def _as_reply(value: Reply | int) -> Reply:
    return value if isinstance(value, Reply) else Reply(value)


@dataclass
class _Script:
    replies: list[Reply]
    then: Reply


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as hookd's session pool expects
    timeout = 30  # an idle keep-alive connection is dropped eventually
    disable_nagle_algorithm = True  # else each keep-alive response waits ~40 ms for the delayed ACK

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-request (kill -9): no delivery happened
            self.close_connection = True
            return
        request = Recorded(self.command, urlsplit(self.path).path, self.headers, body, time.monotonic())
        reply = self.server.receiver.record(request)
        if reply.delay_s and self.server.receiver.closing.wait(reply.delay_s):
            self.close_connection = True
            return
        if reply.hold is not None and not self._released(reply.hold):
            self.close_connection = True
            return
        payload = b'{"ok":true}'
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _released(self, hold: threading.Event) -> bool:
        """Wait for the test to release a held answer: False when the receiver closes first or after
        `HOLD_MAX_S` (then the connection is dropped unanswered)."""
        deadline = time.monotonic() + HOLD_MAX_S
        while not hold.wait(0.05):
            if self.server.receiver.closing.is_set() or time.monotonic() >= deadline:
                return False
        return True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        return None


class TrackingServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 that knows its open connections, so `stop()` can cut
    kept-alive ones instead of waiting for clients to hang up (the test receivers' base)."""

    daemon_threads = True
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client gone mid-answer (timeout, kill -9) is expected in these tests

    def stop(self) -> None:
        """Stop serving, cut every open connection, join the connection threads."""
        self.shutdown()
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server_close()


class _Server(TrackingServer):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(_Handler)


class Receiver:
    """A local HTTP endpoint that records every request and answers as programmed per path.

    Unprogrammed paths answer 200. `program(path, 500, 503)` answers 500, then 503, then 200.
    """

    def __init__(self) -> None:
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._scripts: dict[str, _Script] = {}
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="receiver", daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def program(self, path: str, *replies: Reply | int, then: Reply | int = 200) -> None:
        """Answer requests to `path` with `replies` in order, then with `then` forever."""
        with self._lock:
            self._scripts[path] = _Script([_as_reply(r) for r in replies], _as_reply(then))

    def record(self, request: Recorded) -> Reply:
        with self._lock:
            self._requests.append(request)
            script = self._scripts.get(request.path)
            if script is None:
                return Reply()
            return script.replies.pop(0) if script.replies else script.then

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, *, timeout_s: float = 15.0) -> list[Recorded]:
        """Wait until at least `count` requests (to `path`, if given) arrived; return all of them."""

        def enough() -> list[Recorded] | None:
            found = self.requests(path)
            return found if len(found) >= count else None

        return wait_until(
            enough,
            timeout_s=timeout_s,
            what=lambda: f"{count} request(s) to {path or 'any path'}, got {len(self.requests(path))}",
        )

    def close(self) -> None:
        """Stop serving, cut keep-alive connections, join every thread."""
        self.closing.set()
        self._server.stop()
        self._thread.join(timeout=10)


# -- AMQP ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Got:
    """A message fetched from a queue."""

    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    routing_key: str
    delivery_mode: int | None


@dataclass
class Names:
    """One test's hookd topology: its queue prefix and exchange, named by `hookd.broker.Topology`.

    `retry_delays_s` collects every delay a config of the test used, so teardown deletes its queues;
    `before_delete` holds what must finish first (daemons of the test exiting).
    """

    prefix: str
    exchange: str
    retry_delays_s: set[float] = field(default_factory=set)
    before_delete: list[Callable[[], None]] = field(default_factory=list)

    @property
    def topology(self) -> Topology:
        """hookd's own naming of these queues (the one source: tests never spell a queue name)."""
        return Topology(exchange=self.exchange, prefix=self.prefix, retry_delays_s=tuple(sorted(self.retry_delays_s)))

    @property
    def events(self) -> str:
        return self.topology.events

    @property
    def deliveries(self) -> str:
        return self.topology.deliveries

    @property
    def dead(self) -> str:
        return self.topology.dead

    @property
    def invalid(self) -> str:
        return self.topology.invalid

    def retry(self, delay_s: float) -> str:
        return self.topology.retry_queue(delay_s)


class Amqp:
    """A test's own confirmed channel on the broker: publish like the scheduler, inspect queues."""

    def __init__(self, url: str) -> None:
        params = pika.URLParameters(url)
        params.heartbeat = 0  # the test thread may block on waits for a while without pumping I/O
        params.connection_attempts = 1
        self._connection = pika.BlockingConnection(params)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()

    def __enter__(self) -> Amqp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _ch(self) -> Any:
        if self._channel.is_closed:  # a refused passive declare closes the channel: open a fresh one
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None,
        headers: Mapping[str, Any] | None,
    ) -> None:
        """Publish persistently with a broker confirm; fail if the message is not routed to a queue."""
        props = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="application/json",
            message_id=message_id,
            headers=dict(headers) if headers is not None else None,
            timestamp=int(time.time()),
        )
        self._ch().basic_publish(exchange, routing_key, body, props, mandatory=True)

    def publish_event(
        self,
        names: Names,
        event: str,
        body: bytes | Mapping[str, Any] = b'{"id": 1}',
        *,
        account_id: str | int = "acme",
        event_id: str | None = None,
    ) -> str:
        """Publish one well-formed lifecycle event as the scheduler does; return its event id."""
        event_id = event_id or f"evt-{uuid.uuid4()}"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.publish(names.exchange, event, raw, message_id=event_id, headers={"account_id": account_id})
        return event_id

    def get(self, queue: str) -> Got | None:
        method, props, body = self._ch().basic_get(queue, auto_ack=True)
        if method is None:
            return None
        return Got(
            body=body,
            headers=dict(props.headers or {}),
            message_id=props.message_id,
            routing_key=method.routing_key,
            delivery_mode=props.delivery_mode,
        )

    def drain(self, queue: str) -> list[Got]:
        """Take every message currently in `queue`."""
        got: list[Got] = []
        while (message := self.get(queue)) is not None:
            got.append(message)
        return got

    def wait_messages(self, queue: str, count: int, *, timeout_s: float = 15.0) -> list[Got]:
        """Take messages from `queue` until `count` arrived; return them (and anything else taken)."""
        got: list[Got] = []

        def enough() -> bool:
            got.extend(self.drain(queue))
            return len(got) >= count

        wait_until(enough, timeout_s=timeout_s, what=lambda: f"{count} message(s) in {queue}, got {len(got)}")
        return got

    def message_count(self, queue: str) -> int:
        """Messages ready in `queue` (passive declare: fails if the queue does not exist)."""
        return int(self._ch().queue_declare(queue, passive=True).method.message_count)

    def observe(self, exchange: str) -> str:
        """Bind a private queue to `exchange` with `#`: it sees everything published there from now on."""
        ch = self._ch()
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)
        queue = str(ch.queue_declare("", exclusive=True, auto_delete=True).method.queue)
        ch.queue_bind(queue, exchange, routing_key="#")
        return queue

    def exists(self, queue: str) -> bool:
        try:
            self._ch().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return False
            raise
        return True

    def has_queue_type(self, queue: str, queue_type: str) -> bool:
        """True when `queue` exists with `x-queue-type` `queue_type` (a redeclaration must be equivalent)."""
        prefix = queue.rsplit(".", 1)[0]
        partitions = TEST_PARTITIONS  # what the test's config sets: the events queue's arguments depend on it
        arguments = Topology(exchange="", prefix=prefix, queue_type=queue_type, partitions=partitions).arguments(queue)
        try:
            self._ch().queue_declare(queue, durable=True, arguments=arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 406:
                return False
            raise
        return True

    def declare(self, queue: str, arguments: Mapping[str, Any]) -> None:
        """Declare a durable queue with these arguments, as another version or configuration might have."""
        self._ch().queue_declare(queue, durable=True, arguments=dict(arguments))

    def delete(self, names: Names) -> None:
        """Delete a test's queues and its exchange (idempotent)."""
        ch = self._ch()
        # the fixed queues, the retry schedule's delay queues, those hookd declares on the fly (parking,
        # Retry-After) and ordered delivery's partitions, as many as hookd's default (tests set fewer, or
        # a few more): Topology's list
        for queue in dataclasses.replace(names.topology, partitions=BrokerSettings().partitions).queues():
            ch.queue_delete(queue)
        ch.exchange_delete(names.exchange)


# -- hookd as a subprocess -----------------------------------------------------------------------------
def hookd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hookd", *args]


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment for hookd: unbuffered, no broker override unless a test sets one."""
    env = {k: v for k, v in os.environ.items() if k != "HOOKD_AMQP_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, stdin: bytes | None = None, timeout_s: float = 30
) -> CliResult:
    """Run `python -m hookd ARGS` to completion; stdin is passed as raw bytes."""
    done = subprocess.run(
        hookd_command(*args),
        cwd=cwd,
        env=subprocess_env(env),
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    return CliResult(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def hook_entry(
    hook_id: str,
    url: str,
    *,
    account_id: str | int = "acme",
    events: Iterable[str] = ("job", "cluster"),
    secret: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of the hooks file; the secret defaults to a unique value per hook."""
    entry: dict[str, Any] = {"id": hook_id, "account_id": account_id, "url": url, "events": list(events)}
    if not any(key in extra for key in ("secret_env", "secret_file")):
        entry["secret"] = secret or f"whsec-{hook_id}-{uuid.uuid4().hex}"
    entry.update(extra)
    return entry


def secret_of(hooks: Iterable[Mapping[str, Any]], hook_id: str) -> str:
    return next(str(h["secret"]) for h in hooks if str(h["id"]) == hook_id)


def write_hooks(path: Path, hooks: Iterable[Mapping[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"hooks": list(hooks)}, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _merge(base: dict[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(base)
    merged.update(override or {})
    return merged


def config_document(
    *,
    broker_url: str,
    names: Names,
    hooks_path: Path,
    broker: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    logging: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """hookd.yaml for a test: JSON logs, loopback allowed, short retries, quorum queues."""
    return {
        "broker": _merge(
            {
                "url": broker_url,
                "exchange": names.exchange,
                "queue_prefix": names.prefix,
                "queue_type": "quorum",
                "heartbeat_s": 10,
                "reconnect_max_s": 1,
                # four partitions, not the default sixteen: each is a quorum queue, and a broker running
                # many tests at once (its file handles limited to ~900 here) holds every test's queues
                "partitions": TEST_PARTITIONS,
            },
            broker,
        ),
        "subscriptions": {"source": "yaml", "path": str(hooks_path)},
        "delivery": _merge(
            {
                "timeout_s": 5,
                "max_in_flight": 100,
                "retry_delays_s": [1, 2],
                "inline_attempts": 2,
                "inline_backoff_s": 0.05,
                "allow_private_networks": True,
                "drain_timeout_s": 5,
            },
            delivery,
        ),
        "logging": _merge({"format": "json", "level": "info"}, logging),
    }


def partitions_spread(logs: Sequence[Sequence[Mapping[str, Any]]], partitions: int) -> bool:
    """Every worker (given by its JSON log lines) owns its share of the ordering partitions, ceil(P / N),
    and has finished handing over the rest. The first worker to start claims every partition, and
    moving them to the others takes a few seconds: a test about how workers share the work waits for
    this before publishing, or the first worker gets it all, as fast or slow as the machine is."""
    share = math.ceil(partitions / len(logs))
    for lines in logs:
        moves = [e for e in lines if str(e.get("msg", "")).startswith("partition.")]
        owned = [e["owned"] for e in moves if "owned" in e]
        releasing = sum(1 for e in moves if e.get("msg") == "partition.releasing")
        released = sum(1 for e in moves if e.get("msg") == "partition.released")
        if not owned or owned[-1] != share or releasing != released:
            return False
    return True


class HookdProcess:
    """One `hookd run` subprocess; stdout (JSON log lines) and stderr go to files in the test's tmp dir."""

    def __init__(self, config_path: Path, workdir: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.config_path = config_path
        self.workdir = workdir
        stem = f"hookd-{uuid.uuid4().hex[:6]}"
        self.stdout_path = workdir / f"{stem}.stdout"
        self.stderr_path = workdir / f"{stem}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                hookd_command("run", "--config", str(config_path)),
                cwd=workdir,
                env=subprocess_env(env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (anything else on stdout is ignored here)."""
        entries = []
        for line in self.stdout_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def find(self, msg: str, **fields: Any) -> list[dict[str, Any]]:
        """Log entries with this `msg` whose fields equal `fields`."""
        return [e for e in self.logs() if e.get("msg") == msg and all(e.get(k) == v for k, v in fields.items())]

    def wait_log(self, msg: str, *, count: int = 1, timeout_s: float = 15.0, **fields: Any) -> list[dict[str, Any]]:
        """Wait until `count` log entries match; fail early, with the output, if the process died."""

        def found() -> list[dict[str, Any]] | None:
            entries = self.find(msg, **fields)
            if len(entries) >= count:
                return entries
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hookd exited with {self.process.returncode} before logging {msg!r}:\n{self.output()[-4000:]}"
                )
            return None

        return wait_until(
            found, timeout_s=timeout_s, what=lambda: f"{count} x {msg!r} {fields} in hookd's log:\n{self.tail()}"
        )

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"hookd did not exit within {timeout_s:g} s:\n{self.tail()}") from None

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM if still running, without waiting."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
