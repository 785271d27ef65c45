"""The operator's HTTP endpoint of `hookd run`: `/metrics` (Prometheus) and `/healthz`, on `metrics.listen`.

A ThreadingHTTPServer in a thread of its own (`metrics-http`); it never touches the broker
connection: `/healthz` runs a `HealthCheck` (hookd.health), `/metrics` renders what `hookd.metrics`
recorded (prometheus_client stays in that module).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hookd.errors import MetricsServerError
from hookd.health import HealthCheck

#: /metrics' body for the `Accept` header, and its content type.
Render = Callable[[str], tuple[bytes, str]]


def parse_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:9187`, `[::1]:9187` or `0.0.0.0:9187` as (host, port)."""
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise MetricsServerError(f"metrics.listen must be HOST:PORT, got {listen!r}")
    return host, int(port)


def gzip_accepted(accept_encoding: str) -> bool:
    """The client takes gzip (`Accept-Encoding: gzip`, with or without a quality)."""
    return any(part.split(";", 1)[0].strip().lower() == "gzip" for part in accept_encoding.split(","))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics" and self.server.render is not None:
            body, content_type = self.server.render(self.headers.get("Accept", ""))
            gzipped = gzip_accepted(self.headers.get("Accept-Encoding", ""))
            self._send(200, content_type, gzip.compress(body) if gzipped else body, gzipped=gzipped)
        elif path == "/healthz":
            try:
                healthy, detail = self.server.health()
            except Exception as exc:  # a broken check must still answer, and answer "unhealthy"
                healthy, detail = False, {"status": "unhealthy", "error": repr(exc)[:500]}
            body = json.dumps(detail, sort_keys=True, default=str).encode() + b"\n"
            self._send(200 if healthy else 503, "application/json", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

    def _send(self, status: int, content_type: str, body: bytes, *, gzipped: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        return None  # scrapes every few seconds would drown the canonical delivery lines


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], render: Render | None, health: HealthCheck) -> None:
        self.render = render
        self.health = health
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class Endpoint:
    """The running endpoint; `close()` stops it. Without `render`, only /healthz answers."""

    def __init__(self, listen: str, health: HealthCheck, render: Render | None = None) -> None:
        host, port = parse_listen(listen)
        try:
            self._httpd = _Server((host, port), render, health)
        except OSError as exc:
            raise MetricsServerError(f"metrics endpoint cannot listen on {listen}: {exc.strerror or exc}") from exc
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
