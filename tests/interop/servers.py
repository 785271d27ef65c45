"""The interop suite's real servers, written by others: started once per module, stopped by pid.

| server | from | short keep-alive limits | shapes it cannot make |
| --- | --- | --- | --- |
| nginx, nginx-tls | Debian `nginx` (before http.server) | `keepalive_timeout 1s`, `keepalive_requests 3` | 1.0, 1xx |
| node | Node's `http` (node on PATH) | `keepAliveTimeout` 1 s, `maxRequestsPerSocket` 3 | HTTP/1.0 |
| uvicorn-h11, uvicorn-httptools | PyPI `uvicorn` | `--timeout-keep-alive 1` | close, 1.0, 1xx |
| hypercorn | PyPI `hypercorn` | `keep_alive_timeout` 1 s, `keep_alive_max_requests` 3 | close, 1.0, 1xx |
| gunicorn | PyPI `gunicorn` (gthread workers) | `--keep-alive 1` | close, 1.0, 1xx |
| waitress | PyPI `waitress` | `--channel-timeout=1` | close, 1.0, 1xx |
| http.server | Python's own | (none: keeps connections open) | 1xx |

("close": a body delimited by closing the connection; their ASGI/WSGI interfaces frame every body;
the hostile raw-socket server of test_hostile.py makes every shape these cannot.)

Every server runs a receiver of `interop/apps` (the same answers per path, `apps/spec.py`) and
records what it received into a file of its own. nginx is installed with apt-get when missing and we
are root (through the test tree's installer, support.bootstrap.services), else the
module fails (CI=true) or skips with one line naming the package; the same for node and the PyPI
servers (`make install` brings them: setup.cfg's dev extras). nginx-tls presents a certificate for
`localhost` signed by a CA this module makes with openssl; hookd trusts it through SSL_CERT_FILE.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import services as session_services
from support.bootstrap import services as bootstrap
from support.helpers import free_port

TESTS = Path(__file__).resolve().parents[1]
APPS = Path(__file__).resolve().parent / "apps"
NGINX = Path("/usr/sbin/nginx")
COMMON = frozenset({"/200", "/204", "/500", "/429", "/410", "/chunked", "/ka"})
START_TIMEOUT_S = 30.0


@dataclass
class Server:
    """One running server: where it listens, what it records, which processes are its own."""

    name: str
    base_url: str
    record: Path
    supports: frozenset[str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    ca: Path | None = None  # the CA that signed its certificate (https servers)

    def url(self, path: str) -> str:
        return self.base_url + path

    def received(self) -> list[dict[str, Any]]:
        """Every request recorded so far: path, headers (lower-case names), body (bytes)."""
        if not self.record.exists():
            return []
        found = []
        for line in self.record.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            entry["body"] = base64.b64decode(entry["body"])
            found.append(entry)
        return found

    def received_for(self, delivery_id: str) -> list[dict[str, Any]]:
        return [r for r in self.received() if r["headers"].get("x-hook-delivery") == delivery_id]

    def output(self) -> str:
        return "".join(path.read_text(errors="replace")[-2000:] for path in self.logs if path.exists())

    def close(self) -> None:
        """Stop this server's own processes (SIGTERM, then SIGKILL after 5 s), by pid."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def start_all(workdir: Path, names: Sequence[str]) -> dict[str, Server]:
    """Start the named servers (nginx brings nginx-tls); fail or skip in one line when one cannot be had."""
    started: dict[str, Server] = {}
    try:
        for name in names:
            if name in started:
                continue
            if name in ("nginx", "nginx-tls"):
                started.update(_nginx(workdir))
            else:
                started[name] = _STARTERS[name](workdir / name)
        for server in started.values():
            _wait_listening(server)
    except BaseException:
        for server in started.values():
            server.close()
        raise
    return started


# -- one server each -----------------------------------------------------------------------------------------
def _python_server(name: str, module: str, argv: Callable[[int], list[str]]) -> Callable[[Path], Server]:
    def start(directory: Path) -> Server:
        if importlib.util.find_spec(module) is None:
            session_services.unavailable(
                f"{module} is not installed (a dev extra of setup.cfg): run make install, or pip install {module}"
            )
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        server = Server(name, f"http://127.0.0.1:{port}", directory / "record.jsonl", COMMON)
        server.processes.append(_spawn([sys.executable, "-m", module, *argv(port)], directory, server))
        return server

    return start


def _stdlib(directory: Path, port: int | None = None, name: str = "http.server") -> Server:
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    server = Server(name, f"http://127.0.0.1:{port}", directory / "record.jsonl", COMMON | {"/close", "/http10"})
    server.processes.append(_spawn([sys.executable, "-m", "interop.apps.stdlib", str(port)], directory, server))
    return server


def _node(directory: Path) -> Server:
    node = shutil.which("node")
    if node is None:
        session_services.unavailable("node is needed for the interop suite's Node http server: install nodejs")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Server("node", f"http://127.0.0.1:{port}", directory / "record.jsonl", COMMON | {"/close", "/1xx"})
    command = [str(node), str(APPS / "receiver.js"), str(port), str(server.record)]
    server.processes.append(_spawn(command, directory, server))
    return server


def _hypercorn(directory: Path) -> Server:
    """hypercorn, with the keep-alive limits of the table in a config file (the command line has no max)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "hypercorn.toml"
    config.write_text("keep_alive_timeout = 1\nkeep_alive_max_requests = 3\n", encoding="utf-8")
    argv = lambda p: ["interop.apps.asgi:app", "--bind", f"127.0.0.1:{p}", "--config", str(config)]  # noqa: E731
    return _python_server("hypercorn", "hypercorn", argv)(directory)


_UVICORN = ["interop.apps.asgi:app", "--host", "127.0.0.1", "--timeout-keep-alive", "1", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip
_GUNICORN = ["interop.apps.wsgi:app", "-k", "gthread", "--threads", "4", "--workers", "1", "--keep-alive", "1",
             "--log-level", "warning"]  # fmt: skip
_WAITRESS = ["--host=127.0.0.1", "--channel-timeout=1", "--cleanup-interval=1", "interop.apps.wsgi:app"]
_STARTERS: dict[str, Callable[[Path], Server]] = {
    "node": _node,
    "uvicorn-h11": _python_server("uvicorn-h11", "uvicorn", lambda p: [*_UVICORN, "--port", str(p), "--http", "h11"]),
    "uvicorn-httptools": _python_server(
        "uvicorn-httptools", "uvicorn", lambda p: [*_UVICORN, "--port", str(p), "--http", "httptools"]
    ),
    "hypercorn": _hypercorn,
    "gunicorn": _python_server("gunicorn", "gunicorn", lambda p: [*_GUNICORN, "-b", f"127.0.0.1:{p}"]),
    "waitress": _python_server("waitress", "waitress", lambda p: [f"--port={p}", *_WAITRESS]),
    "http.server": _stdlib,
}


# -- nginx ---------------------------------------------------------------------------------------------------------
def _nginx(workdir: Path) -> dict[str, Server]:
    session_services.need(
        # the one apt installer of the suite (it moves to the test tree with hookd.testing)
        lambda: bootstrap._ensure_packages(
            lambda: os.access(NGINX, os.X_OK), ["nginx"], "nginx is needed for the interop suite and"
        )
    )
    directory = workdir / "nginx"
    for sub in ("logs", "temp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    upstream = _stdlib(directory / "upstream", name="nginx-upstream")
    ca, cert, key = make_ca_and_certificate(directory / "tls")
    plain, tls = free_port(), free_port()
    conf = directory / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(
        user="user root;" if os.geteuid() == 0 else "", dir=directory, upstream=upstream.base_url.removeprefix("http://"),
        plain=plain, tls=tls, cert=cert, key=key,
    ), encoding="utf-8")  # fmt: skip
    nginx = Server("nginx", f"http://127.0.0.1:{plain}", upstream.record, COMMON | {"/close"})
    command = [str(NGINX), "-p", str(directory), "-c", str(conf), "-e", "stderr"]
    nginx.processes = [*upstream.processes, _spawn(command, directory, nginx)]
    nginx.logs += upstream.logs
    secure = Server("nginx-tls", f"https://localhost:{tls}", upstream.record, COMMON | {"/close"}, ca=ca)
    secure.logs = nginx.logs  # its processes are nginx's: closing nginx closes it
    return {"nginx": nginx, "nginx-tls": secure}


_NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    keepalive_timeout 1s;
    keepalive_requests 3;
    upstream recorder {{ server {upstream}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{plain};
        listen 127.0.0.1:{tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        location / {{ proxy_pass http://recorder; }}
        location /close {{ chunked_transfer_encoding off; proxy_pass http://recorder; }}
    }}
}}
"""


def make_ca_and_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA of this run, and a certificate it signed for `localhost` and 127.0.0.1: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        encoding="utf-8",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=hookd interop test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
         "-extfile", ext],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=30)
    return ca, cert, key


# -- processes -------------------------------------------------------------------------------------------------------
def _spawn(command: list[str], directory: Path, server: Server) -> subprocess.Popen[bytes]:
    log = directory / f"{Path(command[0]).name}-{len(server.logs)}.log"
    server.logs.append(log)
    env = {**os.environ, "HOOKD_INTEROP_RECORD": str(server.record), "PYTHONPATH": str(TESTS)}
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _wait_listening(server: Server) -> None:
    """Until the server accepts connections; fail with its output if a process died or time ran out."""
    host_port = server.base_url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        dead = [p for p in server.processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{server.name} exited with {dead[0].returncode}:\n{server.output()}")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not listen within {START_TIMEOUT_S:g} s:\n{server.output()}")
        time.sleep(0.05)


@contextlib.contextmanager
def running(workdir: Path, names: Sequence[str]) -> Iterator[dict[str, Server]]:
    """The named servers, running for the block's duration, then stopped."""
    started = start_all(workdir, names)
    try:
        yield started
    finally:
        for server in started.values():
            server.close()
