"""Building blocks of the security tests: listeners that count connections, a TLS receiver, a DNS stand-in.

Nothing here talks to any address outside this machine: "internal" listeners are loopback addresses
(127.0.0.1, 127.0.0.2, ::1), and in-process tests install `ConnectGuard`, which refuses (and records)
every connection to anything else before the operating system sees it.
"""

from __future__ import annotations

import errno
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_LOOPBACK = ("127.", "::1", "::ffff:127.")


def host_in_url(host: str) -> str:
    """`host` as it goes between `//` and `:port` in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


class Tripwire:
    """TCP listeners on internal addresses, all on one port, that count every connection they accept.

    Nothing is answered: a connection is accepted, counted and closed. A test that expects the SSRF
    guard to hold asserts `accepted == 0`. Hosts this machine cannot bind (no IPv6) are left out and
    listed in `missing`.
    """

    def __init__(self, hosts: Sequence[str] = ("127.0.0.1", "127.0.0.2", "::1"), port: int = 0) -> None:
        self._lock = threading.Lock()
        self._accepted: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self.hosts: list[str] = []
        self.missing: list[str] = []
        self.port = port
        for attempt in range(20):
            try:
                self._bind_all(hosts)
                break
            except OSError as exc:  # the port taken on another address: start over with a new one
                self._close_sockets()
                if exc.errno != errno.EADDRINUSE or port or attempt == 19:
                    raise
                self.port = 0
        self._threads = [
            threading.Thread(target=self._serve, args=(sock, host), name=f"tripwire {host}", daemon=True)
            for sock, host in zip(self._sockets, self.hosts, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def _bind_all(self, hosts: Sequence[str]) -> None:
        self.hosts, self.missing = [], []
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.bind((host, self.port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise
                self.missing.append(host)  # e.g. no IPv6 on this machine
                continue
            sock.listen(16)
            sock.settimeout(0.05)
            self.port = int(sock.getsockname()[1])
            self._sockets.append(sock)
            self.hosts.append(host)

    def _serve(self, sock: socket.socket, host: str) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted.append((host, str(peer[0])))
            conn.close()

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._accepted)

    def url(self, host: str, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://{host_in_url(host)}:{self.port}{path}"

    def has(self, host: str) -> bool:
        return host in self.hosts

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def close(self) -> None:
        self._stop.set()
        for thread in getattr(self, "_threads", []):
            thread.join(timeout=5)
        self._close_sockets()


@dataclass
class ConnectGuard:
    """Replaces `socket.socket.connect` in this process: lets loopback through and refuses everything
    else with ECONNREFUSED before any packet leaves, from any thread. It records the destinations the
    test's own thread connects to, and every refused one (other threads, such as the clean-up of an
    earlier test talking to the broker, may use loopback unrecorded)."""

    original: Callable[..., Any]
    attempts: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: int = field(default_factory=threading.get_ident)

    def connect(self, sock: socket.socket, address: Any) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            self.original(sock, address)
            return
        host, port = str(address[0]), int(address[1])
        outside = not host.startswith(_LOOPBACK)
        if outside or threading.get_ident() == self.owner:
            with self.lock:
                self.attempts.append((host, port))
        if outside:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"refused by the test's connect guard: {host}")
        self.original(sock, address)

    def outside(self) -> list[tuple[str, int]]:
        """Attempted connections to non-loopback addresses (each refused)."""
        with self.lock:
            return [a for a in self.attempts if not a[0].startswith(_LOOPBACK)]


class FakeDns:
    """A name server under the test's control: each name answers from its list of answers in turn
    (the last one repeats). Serves as hookd's resolver and, when installed, as `socket.getaddrinfo`
    for those names, so any second lookup sees what an attacker's DNS would answer by then."""

    def __init__(self, answers: dict[str, Iterable[Sequence[str]]]) -> None:
        self._answers = {name.lower(): [list(a) for a in seq] for name, seq in answers.items()}
        self.queries: list[str] = []
        self._lock = threading.Lock()

    def knows(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._answers

    def __call__(self, host: str, port: int) -> list[str]:
        name = host.lower().rstrip(".")
        with self._lock:
            self.queries.append(name)
            answers = self._answers.get(name)
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, f"{host}: unknown to the test's DNS")
            return list(answers.pop(0) if len(answers) > 1 else answers[0])

    def getaddrinfo(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """A `socket.getaddrinfo` that answers this DNS's names and passes every other one through."""

        def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and self.knows(host):
                return [
                    info for address in self(host, int(port or 0)) for info in original(address, port, *args, **kwargs)
                ]
            return original(host, port, *args, **kwargs)

        return lookup


# -- TLS ---------------------------------------------------------------------------------------------------
def make_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for DNS name `name` (its own trust anchor) and its key, made with openssl."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}", "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


class _TlsHandler(BaseHTTPRequestHandler):
    server: TlsReceiver
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each keep-alive response waits ~40 ms for the delayed ACK

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with self.server.lock:
            self.server.hosts.append(str(self.headers.get("Host")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        return None


class TlsReceiver(ThreadingHTTPServer):
    """An HTTPS endpoint on 127.0.0.1 presenting `cert`; records the Host header of each request."""

    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _TlsHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.port = int(self.server_address[1])
        self.hosts: list[str] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client refusing our certificate is what some tests expect

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
