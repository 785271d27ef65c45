"""A hostile receiver: raw-socket answers that break HTTP/1.1 on purpose, one per path.

What a hook owner (an account admin) can make hookd talk to: endless headers, too many headers, two
responses in one write, bodies cut short, folded headers, smuggling shapes (Content-Length with
Transfer-Encoding, two Content-Lengths), a head trickled slower than the deadline. Every loop is
bounded (bytes or seconds) and stops when hookd hangs up, so the server stops by itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from support.scripted import ScriptedReceiver

ENDLESS_LIMIT = 256 * 1024 * 1024  # what an endless answer offers at most: hookd must stop long before
TRICKLE_LIMIT_S = 60.0  # a trickle stops by itself after this (hookd's deadline ends it much sooner)


@dataclass
class Hostile:
    """The server, and what its endless and trickling answers saw: bytes sent, when hookd hung up."""

    receiver: ScriptedReceiver
    sent: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before hookd hung up
    started: dict[str, float] = field(default_factory=dict)  # path -> time.monotonic() of its first byte
    ended: dict[str, float] = field(default_factory=dict)  # path -> time.monotonic() when hookd hung up
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.receiver.url(path)

    def requests_to(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        """(headers with lower-case names, body) of every request to `path`."""
        found = []
        for raw in list(self.receiver.requests):
            head, _, body = raw.partition(b"\r\n\r\n")
            line, *fields = head.decode("latin-1").split("\r\n")
            if line.split(" ")[1] == path:
                headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
                found.append((headers, body))
        return found

    def close(self) -> None:
        self.receiver.close()


def _once(answer: bytes) -> Callable[[Hostile, socket.socket], None]:
    def script(_hostile: Hostile, conn: socket.socket) -> None:
        conn.sendall(answer)

    return script


def _endless(path: str, head: bytes, piece: bytes) -> Callable[[Hostile, socket.socket], None]:
    def script(hostile: Hostile, conn: socket.socket) -> None:
        sent = 0
        hostile.started[path] = time.monotonic()
        try:
            conn.sendall(head)
            sent = len(head)
            while sent < ENDLESS_LIMIT:
                conn.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # hookd hung up: what we want
        finally:
            with hostile.lock:
                hostile.sent[path] = sent
                hostile.ended[path] = time.monotonic()

    return script


def _trickle(path: str, head: bytes) -> Callable[[Hostile, socket.socket], None]:
    """A head one byte at a time, 20 a second, that never ends: only hookd's deadline stops it."""

    def script(hostile: Hostile, conn: socket.socket) -> None:
        hostile.started[path] = time.monotonic()
        limit = hostile.started[path] + TRICKLE_LIMIT_S
        try:
            for byte in head:
                conn.sendall(bytes([byte]))
                time.sleep(0.05)
            while time.monotonic() < limit:
                conn.sendall(b"a")
                time.sleep(0.05)  # the trickle's pace is the behaviour under test
        except OSError:
            pass
        finally:
            with hostile.lock:
                hostile.ended[path] = time.monotonic()

    return script


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
SCRIPTS: dict[str, Callable[[Hostile, socket.socket], None]] = {
    "/endless-header": _endless("/endless-header", b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536),
    "/endless-headers": _endless("/endless-headers", b"HTTP/1.1 200 OK\r\n", b"X-Many: 1\r\n" * 4096),
    "/endless-1xx": _endless("/endless-1xx", b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 2048),
    "/many-headers": _once(b"HTTP/1.1 200 OK\r\n" + b"X-H: 1\r\n" * 150 + b"Content-Length: 2\r\n\r\nok"),
    "/200-then-500": _once(OK_HEAD + b"ok" + b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"),
    "/503-then-200": _once(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n" + OK_HEAD + b"ok"),
    "/cut-keep-alive": _once(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10),
    "/cut-close": _once(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10),
    "/cut-chunked": _once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
    "/obs-fold": _once(b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 2\r\n\r\nok"),
    "/cl-te": _once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    "/duplicate-cl": _once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nok"),
    "/1xx-then-http10": _once(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nclose-delimited"),
    "/trickle-head": _trickle("/trickle-head", b"HTTP/1.1 200 OK\r\nX-Slow: "),
}


def start() -> Hostile:
    """The hostile server on 127.0.0.1, answering each path of `SCRIPTS` as it says."""
    holder: list[Hostile] = []

    def dispatch(conn: socket.socket, request: bytes) -> None:
        path = request.split(b" ", 2)[1].decode("latin-1")
        SCRIPTS[path](holder[0], conn)

    holder.append(Hostile(ScriptedReceiver(dispatch, timeout_s=TRICKLE_LIMIT_S)))
    return holder[0]
