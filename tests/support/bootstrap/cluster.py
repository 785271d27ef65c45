"""A private RabbitMQ cluster on 127.0.0.1, for tests of quorum queues, failover and rolling restarts.

Why a private cluster: the machine's broker is one node, shared, and cannot be stopped by a test;
what hookd must survive in production (the node it consumes from going away, a rolling upgrade)
needs several nodes that a test can stop, kill and restart at will.

How: `size` `PrivateBroker` nodes, each with its own data directory, AMQP port and Erlang
distribution port (all drawn at once, so they are distinct), named `hookd-<pid>-<n>@localhost`
(`localhost` resolves everywhere, also in a network namespace with only loopback). They share one
Erlang cookie, written to each node's HOME before its first start: nodes and CLI tools only talk
to peers holding the same cookie. Nodes boot side by side, then nodes 2..n join node 1 one at a time
with `rabbitmqctl stop_app; join_cluster; start_app`, the documented manual procedure (a join
changes the cluster's schema: one at a time, no two joins race).

Measured here (2 cores shared with other work, RabbitMQ 3.10.8, Erlang 25): one node boots in
7-10 s (14 s when the machine is busy), three side by side in 17-20 s; a CLI call costs 1-2 s (it
boots an Erlang VM); building a 3-node cluster takes 23-33 s (68 s once, at a load average of 50):
the parallel boot, then two joins of three CLI calls each (about 5 s per join). `rolling_restart()`
takes 29-34 s, killing and restarting one node about 10 s, `close()` under a second.

RabbitMQ 3.10 facts this relies on: a quorum queue declared on a cluster gets a member on every node
and stays available while a majority of its members run; a node stopped or killed keeps its
membership and rejoins by itself when started again while a peer runs (no `forget_cluster_node`
needed); a cluster whose nodes are *all* stopped must get its last-stopped node back first, the
others wait up to 5 minutes for it, so restart nodes while at least one peer runs.

Like `PrivateBroker`, this module does not import pika; the tests drive the nodes through their URLs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import BootstrapError, Started
from .devbroker import HOST, DevBrokerError, PrivateBroker

_COOKIE_FILE = ".erlang.cookie"


class ClusterError(BootstrapError):
    """The private cluster could not be built, or a node did not come back into it in time."""


def _distinct_free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on: all sockets are held open until every port is drawn."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


class RabbitCluster(Started):
    """`size` private RabbitMQ nodes on 127.0.0.1 joined into one cluster; node indexes start at 0.

    `start()` builds it (boot, join, check that every node runs); `stop_node(i)`, `kill_node(i)`
    and `start_node(i)` act on one node and keep its data, so it rejoins as the same member;
    `rolling_restart()` restarts every node gracefully, one at a time; `close()` kills every node
    and deletes the cluster's directory. guest/guest works on every node (loopback clients only).
    """

    def __init__(self, size: int = 3) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = Path(tempfile.mkdtemp(prefix="hookd-rabbitcluster-"))
        ports = _distinct_free_ports(2 * size)
        self.nodes: tuple[PrivateBroker, ...] = tuple(
            PrivateBroker(self.base_dir / f"node{i + 1}", port=ports[2 * i], dist_port=ports[2 * i + 1])
            for i in range(size)
        )
        cookie = secrets.token_hex(16).upper()
        for node in self.nodes:
            _write_cookie(node.home, cookie)

    # -- properties ------------------------------------------------------------------------------
    @property
    def urls(self) -> list[str]:
        """One AMQP URL per node, in node order."""
        return [node.url for node in self.nodes]

    @property
    def names(self) -> list[str]:
        """The Erlang node names (`hookd-<pid>-<n>@localhost`), in node order."""
        return [node.node for node in self.nodes]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout_s: float = 180.0) -> None:
        """Boot every node side by side, join nodes 2..n to node 1, and wait until all run together.

        On failure every node is killed (the directory stays for a look at the logs until `close()`).
        """
        deadline = time.monotonic() + timeout_s
        first = self.nodes[0]
        try:
            with _as_cluster_error():
                _in_parallel([functools.partial(node.start, timeout_s) for node in self.nodes])
                for node in self.nodes[1:]:
                    node.cli("stop_app", timeout_s=_left(deadline))
                    node.cli("join_cluster", first.node, timeout_s=_left(deadline))
                    node.cli("start_app", timeout_s=_left(deadline))
            self.wait_running(self.names, first, _left(deadline))
        except BaseException:
            for node in self.nodes:
                node.kill()
            raise

    def stop_node(self, index: int, timeout_s: float = 30.0) -> None:
        """Stop one node gracefully (its data and cluster membership are kept)."""
        self.nodes[index].stop(timeout_s)

    def kill_node(self, index: int) -> None:
        """SIGKILL one node, like a crash (see `PrivateBroker.kill` about queues declared just before)."""
        self.nodes[index].kill()

    def start_node(self, index: int, timeout_s: float = 90.0) -> None:
        """Start a stopped or killed node and wait until the cluster lists it among its running nodes.

        At least one peer must run, or the node waits for the last-stopped one (see the module doc).
        """
        deadline = time.monotonic() + timeout_s
        node = self.nodes[index]
        with _as_cluster_error():
            node.start(timeout_s)
        self.wait_running(self.names_running(), node, _left(deadline))

    def make_whole(self, timeout_s: float = 90.0) -> None:
        """Start every node that is not running (a test stopped or killed it), one at a time."""
        for index, node in enumerate(self.nodes):
            if not node.running:
                self.start_node(index, timeout_s)

    def rolling_restart(self, timeout_s: float = 300.0) -> None:
        """Restart every node gracefully, one at a time, each back in the cluster before the next stops.

        Quorum queues stay available throughout: at most one member of each is down at any moment.
        """
        deadline = time.monotonic() + timeout_s
        for index in range(len(self.nodes)):
            self.stop_node(index, timeout_s=min(30.0, _left(deadline)))
            self.start_node(index, timeout_s=_left(deadline))

    def close(self) -> None:
        """Kill every node and delete the cluster's directory.

        A kill, not a graceful stop: the data is deleted anyway, and the last nodes of a cluster
        stopping gracefully wait for each other's quorum queues for seconds.
        """
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- status ----------------------------------------------------------------------------------
    def names_running(self) -> list[str]:
        """The names of the nodes whose process runs (ours; whether they are in the cluster is another matter)."""
        return [node.node for node in self.nodes if node.running]

    def cluster_status(self, timeout_s: float = 30.0) -> list[str]:
        """The running nodes' names, from `rabbitmqctl cluster_status` asked of our first running node."""
        for node in self.nodes:
            if node.running:
                with _as_cluster_error():
                    return _running_nodes(node, timeout_s)
        return []

    def wait_running(self, names: Sequence[str], ask: PrivateBroker, timeout_s: float = 60.0) -> None:
        """Wait until node `ask` reports every one of `names` as a running member of its cluster."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                missing = sorted(set(names) - set(_running_nodes(ask, _left(deadline))))
            except DevBrokerError as exc:
                problem = str(exc)
            else:
                if not missing:
                    return
                problem = f"{ask.node} does not list {', '.join(missing)} as running"
            if time.monotonic() >= deadline:
                raise ClusterError(f"cluster incomplete after {timeout_s:g} s: {problem}")
            time.sleep(0.5)


def _write_cookie(home: Path, cookie: str) -> None:
    """Write the shared cookie where Erlang looks for it, with the 0400 mode Erlang insists on."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / _COOKIE_FILE
    if path.exists():
        path.chmod(0o600)
    path.write_text(cookie)
    path.chmod(0o400)


def _running_nodes(node: PrivateBroker, timeout_s: float) -> list[str]:
    """`running_nodes` from `rabbitmqctl cluster_status --formatter json`, asked of `node`."""
    text = node.cli("cluster_status", "--formatter", "json", timeout_s=timeout_s)
    try:
        status = json.loads(text)
        running = status["running_nodes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"unexpected cluster_status output from {node.node}: {text[:200]!r}") from exc
    return [str(name) for name in running]


def _left(deadline: float) -> float:
    """Seconds left until `deadline`, at least 1 so that a late step still gets a short try."""
    return max(1.0, deadline - time.monotonic())


@contextlib.contextmanager
def _as_cluster_error() -> Iterator[None]:
    """Translate a node's failure into `ClusterError` (the node's message carries the detail)."""
    try:
        yield
    except DevBrokerError as exc:
        raise ClusterError(str(exc)) from exc


def _in_parallel(steps: Sequence[Callable[[], object]]) -> None:
    """Run the steps on threads and wait for all of them; then raise the first failure, if any."""
    with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="rabbitcluster") as pool:
        futures = [pool.submit(step) for step in steps]
    for future in futures:
        future.result()
