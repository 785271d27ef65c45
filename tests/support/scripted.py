"""A raw-socket HTTP receiver on loopback that answers exactly as a script says: for the client's
unit tests (tests/unit) and the hostile receivers of the interop suite (tests/interop).

Each accepted connection runs its script on a thread of its own; the script gets the socket and the
first request's bytes and may answer, read more requests, trickle, or close. Everything stops by
itself: sockets time out, and `close()` joins every thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

#: What a scripted receiver does with one connection: it gets the socket and the first request's bytes.
Script = Callable[[socket.socket, bytes], None]


class ScriptedReceiver:
    """A TCP server on 127.0.0.1 running a script per accepted connection, on a thread per connection."""

    def __init__(self, script: Script, *, timeout_s: float = 5.0) -> None:
        self.script = script
        self.accepted = 0
        self.closed = 0  # connections whose script ended, closed on the receiver's side
        self._closing = threading.Condition()
        self.requests: list[bytes] = []
        self._timeout_s = timeout_s
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)  # here, not in the thread: a test may close the receiver before it runs
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._serve, name="scripted-accept", daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._run, args=(conn,), name="scripted-conn", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(self._timeout_s)
        with conn:
            try:
                request = read_request(conn)
                if request:
                    self.requests.append(request)
                    self.script(conn, request)
            except OSError:
                pass
        with self._closing:
            self.closed += 1
            self._closing.notify_all()

    def wait_closed(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until `count` connections have been closed on the receiver's side (a test that needs
        the client to see a close waits for it, instead of sleeping)."""
        with self._closing:
            return self._closing.wait_for(lambda: self.closed >= count, timeout_s)

    def url(self, path: str = "/in", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


def read_request(conn: socket.socket) -> bytes:
    """One request: headers to the blank line, then Content-Length bytes of body (b"" at EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        rest += chunk
    return head + b"\r\n\r\n" + rest


def wait_for_hangup(conn: socket.socket) -> bool:
    """Read until the client closes the connection (True), or the socket's timeout passes (False)."""
    try:
        while conn.recv(65536):
            pass
    except OSError:
        return False
    return True
