"""A recording HTTP receiver whose paths misbehave on demand: scripted statuses, hangs, trickles, floods.

Every request is recorded with the monotonic and wall-clock time it had been read and the status the
receiver decided to answer (None while it hangs, or when it never sent a status line). A request
whose body arrived short (the client died mid-send, e.g. kill -9) is not recorded: nothing was
delivered. Closing the receiver ends every hang, trickle and flood at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from support.helpers import TrackingServer

from .ledger import Receipt

_OK_BODY = b'{"ok":true}'
B = TypeVar("B", bound="Behaviour")


@dataclass
class Request:
    """One request as the receiver saw it; `status` is filled in once the receiver decides its answer."""

    path: str
    headers: Message
    body: bytes
    at: float  # time.monotonic() once read
    wall: float  # time.time() once read
    status: int | None = None

    @property
    def hook_id(self) -> str | None:
        return self.headers.get("X-Hook-ID")

    @property
    def delivery(self) -> str | None:
        return self.headers.get("X-Hook-Delivery")

    @property
    def attempt(self) -> int:
        return int(self.headers.get("X-Hook-Attempt") or 0)

    @property
    def event_id(self) -> str | None:
        """The event body's own "id" (fault tests publish bodies that carry their event id)."""
        with contextlib.suppress(ValueError):
            doc = json.loads(self.body)
            if isinstance(doc, dict) and doc.get("id") is not None:
                return str(doc["id"])
        return None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Behaviour(Protocol):
    def respond(self, handler: _Handler, request: Request) -> None:
        """Answer `request` through `handler`; set `request.status` when a status is decided."""


# -- behaviours ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """One answer: a status, extra headers, an optional wait before answering (a hang, when long)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Script:
    """Answer with `replies` in order, then with `then` forever."""

    def __init__(self, *replies: Reply | int, then: Reply | int = 200) -> None:
        self._lock = threading.Lock()
        self._replies = [_reply(r) for r in replies]
        self._then = _reply(then)

    def respond(self, handler: _Handler, request: Request) -> None:
        with self._lock:
            reply = self._replies.pop(0) if self._replies else self._then
        if reply.delay_s and handler.server.closing.wait(reply.delay_s):
            handler.close_connection = True
            return
        request.status = reply.status
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(_OK_BODY)))
        handler.end_headers()
        handler.wfile.write(_OK_BODY)


def _reply(value: Reply | int) -> Reply:
    return value if isinstance(value, Reply) else Reply(value)


@dataclass
class Stream:
    """What a trickle or a flood managed to send, and why it stopped."""

    sent: int = 0
    started: float = 0.0
    ended: float = 0.0
    reason: str = ""  # client_closed, stalled, complete, receiver_closed, limit
    done: threading.Event = field(default_factory=threading.Event)


class Trickle:
    """One byte every `interval_s`: after a complete header block (`head=False`), or from the status line on.

    Stops when the client hangs up, after `limit_s`, or when the receiver closes.
    """

    def __init__(self, *, head: bool, interval_s: float = 0.5, limit_s: float = 60.0) -> None:
        self.head = head
        self.interval_s = interval_s
        self.limit_s = limit_s
        self.streams: list[Stream] = []

    def respond(self, handler: _Handler, request: Request) -> None:
        stream = Stream(started=time.monotonic())
        self.streams.append(stream)
        handler.close_connection = True
        if self.head:
            data = b"HTTP/1.1 200 OK\r\nX-Trickle: " + b"a" * 1_000_000
        else:
            request.status = 200
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "1000000")
            handler.end_headers()
            data = b"[" + b" " * 999_999
        closing = handler.server.closing
        try:
            for index in range(len(data)):
                if time.monotonic() - stream.started > self.limit_s:
                    stream.reason = "limit"
                    break
                handler.wfile.write(data[index : index + 1])
                stream.sent += 1
                if closing.wait(self.interval_s):
                    stream.reason = "receiver_closed"
                    break
        except OSError:
            stream.reason = "client_closed"
        stream.ended = time.monotonic()
        stream.done.set()


class Flood:
    """200 with a `total_bytes` body generated lazily; counts what the kernel accepted before the client left.

    A client that stops reading without closing makes the send stall: after `stall_s` the flood gives up.
    """

    def __init__(self, total_bytes: int, *, chunk_bytes: int = 65_536, stall_s: float = 5.0) -> None:
        self.total_bytes = total_bytes
        self.chunk = b"x" * chunk_bytes
        self.stall_s = stall_s
        self.streams: list[Stream] = []

    def respond(self, handler: _Handler, request: Request) -> None:
        stream = Stream(started=time.monotonic())
        self.streams.append(stream)
        handler.close_connection = True
        request.status = 200
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(self.total_bytes))
        handler.end_headers()
        handler.connection.settimeout(self.stall_s)
        try:
            while stream.sent < self.total_bytes:
                if handler.server.closing.is_set():
                    stream.reason = "receiver_closed"
                    break
                piece = self.chunk[: self.total_bytes - stream.sent]
                handler.wfile.write(piece)
                stream.sent += len(piece)
            else:
                stream.reason = "complete"
        except TimeoutError:
            stream.reason = "stalled"
        except OSError:
            stream.reason = "client_closed"
        stream.ended = time.monotonic()
        stream.done.set()


# -- the server ----------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as hookd's connection pool expects
    timeout = 30  # an idle keep-alive connection is dropped eventually
    disable_nagle_algorithm = True  # else each keep-alive response waits ~40 ms for the delayed ACK

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-request: nothing was delivered
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        request = Request(path, self.headers, body, time.monotonic(), time.time())
        self.server.receiver.record(request)
        self.server.receiver.behaviour(path).respond(self, request)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        return None


class _Server(TrackingServer):
    request_queue_size = 128  # socketserver's 5 drops SYNs when 16 workers connect at once: 1 s connect stalls

    def __init__(self, receiver: FaultReceiver) -> None:
        self.receiver = receiver
        self.closing = threading.Event()  # ends every hang, trickle and flood at once
        super().__init__(_Handler)


class FaultReceiver:
    """A local HTTP endpoint on 127.0.0.1 recording every request; paths answer 200 unless told otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._behaviours: dict[str, Behaviour] = {}
        self._default = Script()
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-receiver", daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str, behaviour: B) -> B:
        """Answer requests to `path` with `behaviour`; returns it (floods and trickles keep statistics)."""
        with self._lock:
            self._behaviours[path] = behaviour
        return behaviour

    def behaviour(self, path: str) -> Behaviour:
        with self._lock:
            return self._behaviours.get(path, self._default)

    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def receipts(self) -> list[Receipt]:
        """Every accepted request, for the ledger."""
        return [Receipt(r.event_id, r.hook_id, r.delivery) for r in self.requests() if r.accepted]

    def accepted_deliveries(self, path_prefix: str = "") -> set[str]:
        """Distinct X-Hook-Delivery values answered 2xx (on paths starting with `path_prefix`)."""
        return {r.delivery or "" for r in self.requests() if r.accepted and r.path.startswith(path_prefix)}

    def close(self) -> None:
        """Stop serving, end every hang, trickle and flood, cut keep-alive connections, join threads."""
        self._server.closing.set()
        self._server.stop()
        self._thread.join(timeout=10)
