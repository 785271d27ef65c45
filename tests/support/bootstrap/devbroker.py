"""A private, throw-away RabbitMQ node for the tests, the demo and fault-injection tests.

Why a private node: the system broker is shared (other sessions, the test suite), cannot be
stopped or killed by a test without hurting everyone else, and may not exist at all on a fresh
machine. A private node listens on its own loopback port, keeps its state in its own directory,
and can be stopped, SIGKILLed and restarted mid-stream while keeping its durable queues.

How: run the package's `/usr/lib/rabbitmq/bin/rabbitmq-server` directly (the `/usr/sbin` wrapper
switches to the `rabbitmq` user), with every path RabbitMQ reads or writes pointed into our
directory so that nothing from `/etc/rabbitmq` or `/var/lib/rabbitmq` is used: no system config
(which pins the listener to 5672), no plugins (the management plugin would clash with the
system node's port), our own Erlang cookie in our own HOME.

This module deliberately does not import pika (hookd keeps it in `hookd.broker`): readiness is checked
with a raw AMQP protocol-header handshake, which is all we need to know the listener is up.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from . import BootstrapError, Started

#: The real server script from Debian's `rabbitmq-server` package (runs as the calling user).
SERVER_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
#: Where the same package keeps the CLI tools (`rabbitmqctl`, `rabbitmq-queues`, ...) under their real names.
CLI_DIR = SERVER_SCRIPT.parent
HOST = "127.0.0.1"
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_CONNECTION_START = b"\x00\x0a\x00\x0a"  # class 10 (connection), method 10 (start)
_NODENAME_FILE = "nodename"
_counter = itertools.count(1)


class DevBrokerError(BootstrapError):
    """The private node could not be started (the message carries the tail of its output)."""


def installed() -> bool:
    """True if the RabbitMQ server script and the Erlang runtime it needs are present."""
    return SERVER_SCRIPT.is_file() and os.access(SERVER_SCRIPT, os.X_OK) and shutil.which("erl") is not None


def reachable(host: str = HOST, port: int = 5672, timeout: float = 1.0) -> bool:
    """True if a TCP connection to host:port succeeds (something listens; not necessarily AMQP)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def speaks_amqp(host: str = HOST, port: int = 5672, timeout: float = 2.0) -> bool:
    """True if host:port answers the AMQP 0-9-1 protocol header with a Connection.Start frame.

    RabbitMQ opens its AMQP listener only at the end of boot, so this means "ready for clients",
    unlike a bare TCP connect, which also succeeds against any other program on the port.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_AMQP_HEADER)
            head = _read_exactly(sock, 11)  # frame type, channel, size, then class and method ids
    except OSError:
        return False
    return head is not None and head[0] == 1 and head[1:3] == b"\x00\x00" and head[7:11] == _CONNECTION_START


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now (the kernel's choice; another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateBroker(Started):
    """One RabbitMQ node of our own on 127.0.0.1, with guest/guest and the default vhost.

    `start()` boots it and waits until AMQP answers; `stop()` shuts it down gracefully and keeps its
    data, so a later `start()` brings back the same node (same name, port and durable queues);
    `kill()` SIGKILLs it to simulate a crash; `close()` stops it and deletes the directory if we
    created it. A caller-supplied `data_dir` is never deleted, and a node name remembered in it is
    reused, so a new `PrivateBroker` on the same directory also finds the old queues.

    The node runs in its own process group and session, so a Ctrl-C meant for the caller does not
    reach it and `stop()`/`kill()` can reap every process it started (except `epmd`, which Erlang
    starts as a shared daemon when none is running and which is harmless to leave).
    """

    def __init__(self, data_dir: Path | None = None, port: int | None = None, dist_port: int | None = None) -> None:
        """`dist_port` fixes the Erlang distribution port; by default a free one is picked at each start.

        A cluster fixes it so that nodes booting side by side cannot draw the same free port.
        """
        self._owns_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="hookd-rabbitmq-")) if data_dir is None else data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.dist_port = dist_port
        self.node = self._node_name()
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def _node_name(self) -> str:
        remembered = self.data_dir / _NODENAME_FILE
        if remembered.is_file() and (name := remembered.read_text().strip()):
            return name  # the mnesia directory is per node name: keep it to keep the data
        name = f"hookd-{os.getpid()}-{next(_counter)}@localhost"
        remembered.write_text(name + "\n")
        return name

    # -- properties ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The AMQP URL for clients (guest may only log in over loopback, which this is)."""
        return f"amqp://guest:guest@{HOST}:{self.port}/%2F"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The pid of the server script (leader of the node's process group), if started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def output_file(self) -> Path:
        """The server's stdout and stderr, appended across restarts (see also `log_dir`)."""
        return self.data_dir / "server.out"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def home(self) -> Path:
        """The node's HOME, where Erlang reads `.erlang.cookie` (write one here to share a cookie)."""
        return self.data_dir / "home"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> None:
        """Boot the node (or do nothing if it runs) and wait until it answers AMQP on `port`."""
        if self.running:
            return
        if not installed():
            raise DevBrokerError(f"RabbitMQ is not installed ({SERVER_SCRIPT} or erl missing)")
        if reachable(HOST, self.port, timeout=0.5):
            raise DevBrokerError(f"port {self.port} is already in use by another program")
        self._output = self.output_file.open("ab")
        self._proc = subprocess.Popen(
            [str(SERVER_SCRIPT)],
            env=self.environment(),
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                raise DevBrokerError(f"RabbitMQ node {self.node} exited with {code} while starting\n{self.tail()}")
            if speaks_amqp(HOST, self.port, timeout=1.0):
                return
            time.sleep(0.2)
        self.kill()
        raise DevBrokerError(
            f"RabbitMQ node {self.node} did not answer on port {self.port} in {timeout_s:g} s\n{self.tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Shut down gracefully (SIGTERM: the server script runs a clean stop), then kill leftovers.

        A clean stop lets quorum queues write their state, so the next start is quick; the data
        directory is kept.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the whole node at once, like a crash or an OOM kill; the data directory is kept.

        Caveat for tests (RabbitMQ 3.10 here): a quorum queue declared less than about a second
        before the kill can come back without a leader ("leader not known"; every operation on it
        times out), because the node had not yet persisted the queue's Raft registration. Let a
        few seconds pass after declaring, or `restart()` once, before killing.
        """
        if self._proc is not None:
            self._reap()

    def restart(self, timeout_s: float = 60.0) -> None:
        """Graceful stop, then start again: same node, port and durable queues."""
        self.stop()
        self.start(timeout_s)

    def close(self) -> None:
        """Stop the node and delete its directory if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _reap(self) -> None:
        """SIGKILL everything left in the node's process group and wait for the server script."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader while members remain
        proc.wait()
        # beam.smp is the script's child: give it a moment to disappear so its ports are free again.
        deadline = time.monotonic() + 5.0
        while reachable(HOST, self.port, timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._proc = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def tail(self, lines: int = 25) -> str:
        """The last lines of the server's output, for error messages."""
        try:
            text = self.output_file.read_text(errors="replace")
        except OSError:
            return "(no server output)"
        return "\n".join(text.splitlines()[-lines:])

    def cli(self, *args: str, tool: str = "rabbitmqctl", timeout_s: float = 60.0) -> str:
        """Run one of the package's CLI tools against this node and return what it printed.

        The tool gets the node's own environment, so it finds the node (`-n`) and its cookie (HOME)
        without touching root's. Each call costs about 2 s: the tool boots an Erlang VM of its own.
        """
        command = [str(CLI_DIR / tool), "-n", self.node, *args]
        try:
            done = subprocess.run(
                command,
                env=self.environment(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DevBrokerError(f"{tool} {' '.join(args)} on {self.node} took over {timeout_s:g} s") from None
        except OSError as exc:
            raise DevBrokerError(f"{tool} could not run: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
            raise DevBrokerError(
                f"{tool} {' '.join(args)} on {self.node} exited with {done.returncode}: " + " / ".join(detail)
            )
        return done.stdout

    def environment(self) -> dict[str, str]:
        """The server's environment: everything RabbitMQ reads or writes points into `data_dir`.

        The CLI tools need the same one (node name, HOME with the cookie), see `cli()`.
        """
        d = self.data_dir
        for sub in ("home", "mnesia", "log"):
            (d / sub).mkdir(exist_ok=True)
        empty = {"enabled_plugins": "", "rabbitmq.conf": "", "advanced.config": "[].\n", "rabbitmq-env.conf": ""}
        for name, content in empty.items():
            if not (d / name).exists():
                (d / name).write_text(content)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            {
                "HOME": str(d / "home"),  # the Erlang cookie goes here, not in root's or rabbitmq's HOME
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_IP_ADDRESS": HOST,
                "RABBITMQ_NODE_PORT": str(self.port),
                # Any free port will do for Erlang distribution (CLI tools); pick again per start.
                "RABBITMQ_DIST_PORT": str(self.dist_port or free_port()),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
                "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
                "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
                # Erlang writes erl_crash.dump into the current directory of the VM that died, and the
                # CLI tools run with this environment start wherever their caller is: pin the file
                # here, next to the node's logs, where `close()` removes it with the rest.
                "ERL_CRASH_DUMP": str(d / "erl_crash.dump"),
            }
        )
        return env
