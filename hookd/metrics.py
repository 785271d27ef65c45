"""Prometheus metrics and the `/metrics` + `/healthz` endpoint: the only module importing prometheus_client.

Why a class over a private registry instead of module-level metrics on the global registry: a
process (or a test) may build several daemons, and each must count on its own; the global
registry would refuse the second set of names. `NoMetrics` has the same methods and does nothing,
so the daemon calls them unconditionally and `metrics.listen: ""` (the default) costs nothing.

Label cardinality stays bounded: `event` and `outcome` come from fixed catalogues, `queue` from the
topology, `reason` from the dead-letter reasons, and `hook_id` from the configured hooks only;
`hooks_loaded()` drops the series of hooks that disappeared on a reload.

Threads: the recording methods are called from delivery threads and the main thread
(prometheus_client's metrics are thread-safe; the success-ratio windows take a lock). The HTTP
server runs in its own daemon thread and never touches the broker connection: the health check it
calls reads flags the main thread sets.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder, gzip_accepted

from hookd import __version__
from hookd.errors import MetricsServerError
from hookd.subscriptions.store import SubscriptionStore

#: /metrics' body for an `Accept` header, and its content type.
Render = Callable[[str], tuple[bytes, str]]
#: /healthz's answer: healthy or not, and a JSON-ready explanation.
HealthCheck = Callable[[], tuple[bool, dict[str, object]]]
#: `hookd_hook_breaker_state` values: alert on `> 0`.
BREAKER_STATES: Mapping[str, int] = {"closed": 0, "half_open": 1, "open": 2}
#: The success ratio of a hook is taken over its last this many attempts.
SUCCESS_WINDOW = 100
#: Attempt durations: from a fast local receiver to delivery.timeout_s's upper range.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DELIVERED = "delivered"


class MetricsRecorder(Protocol):
    """What the daemon records; `Metrics` and `NoMetrics` implement it."""

    def attempt(self, event: str, hook_id: str, outcome: str, duration_s: float) -> None: ...
    def delivered(self, event: str) -> None: ...
    def retry_scheduled(self, event: str) -> None: ...
    def dead_lettered(self, event: str, reason: str) -> None: ...
    def parked(self, event: str, reason: str) -> None: ...
    def in_flight(self, delta: int) -> None: ...
    def breaker(self, hook_id: str, state: str) -> None: ...
    def consumer_lag(self, queue: str, messages: int) -> None: ...
    def broker_connected(self, up: bool, node: str | None = None) -> None: ...
    def hooks_loaded(self, hook_ids: Iterable[str]) -> None: ...


class NoMetrics:
    """The null recorder for `metrics.listen: ""`: every method is a no-op."""

    def attempt(self, event: str, hook_id: str, outcome: str, duration_s: float) -> None:
        return None

    def delivered(self, event: str) -> None:
        return None

    def retry_scheduled(self, event: str) -> None:
        return None

    def dead_lettered(self, event: str, reason: str) -> None:
        return None

    def parked(self, event: str, reason: str) -> None:
        return None

    def in_flight(self, delta: int) -> None:
        return None

    def breaker(self, hook_id: str, state: str) -> None:
        return None

    def consumer_lag(self, queue: str, messages: int) -> None:
        return None

    def broker_connected(self, up: bool, node: str | None = None) -> None:
        return None

    def hooks_loaded(self, hook_ids: Iterable[str]) -> None:
        return None


class Metrics:
    """hookd's metrics on a registry of their own (see the module docstring for why)."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `*_created` series only double the output
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # the standard `process_*` series that stock dashboards read
        Info("hookd_build", "hookd version", registry=r).info({"version": __version__})
        self._attempts = Counter(
            "hookd_delivery_attempts_total",
            "HTTP delivery attempts by outcome: delivered, retryable, permanent, blocked",
            ["event", "outcome"],
            registry=r,
        )
        self._duration = Histogram(
            "hookd_attempt_duration_seconds",
            "Duration of one delivery attempt, by outcome",
            ["outcome"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self._deliveries = Counter(
            "hookd_deliveries_total",
            "Deliveries settled, by event and outcome: delivered, retry_scheduled, parked, dead_lettered",
            ["event", "outcome"],
            registry=r,
        )
        self._retries = Counter(
            "hookd_retries_scheduled_total", "Deliveries handed to a durable retry queue", ["event"], registry=r
        )
        self._dead = Counter(
            "hookd_dead_lettered_total",
            "Deliveries dead-lettered, by event and reason",
            ["event", "reason"],
            registry=r,
        )
        self._parked = Counter(
            "hookd_parked_total",
            "Deliveries held on the retry path without an attempt (breaker_open, backlog...)",
            ["event", "reason"],
            registry=r,
        )
        self._in_flight = Gauge("hookd_deliveries_in_flight", "Deliveries being attempted right now", registry=r)
        self._breaker = Gauge(
            "hookd_hook_breaker_state",
            "Circuit breaker per hook: 0 closed, 1 half-open, 2 open",
            ["hook_id"],
            registry=r,
        )
        self._lag = Gauge(
            "hookd_consumer_lag_messages",
            "Messages ready in a queue hookd consumes, not yet taken",
            ["queue"],
            registry=r,
        )
        self._connected = Gauge("hookd_broker_connected", "1 while connected to the broker and consuming", registry=r)
        self._node = Gauge(
            "hookd_broker_node",
            "1 for the broker node (host:port) this process is connected to, 0 for one it left",
            ["node"],
            registry=r,
        )
        self._hooks = Gauge("hookd_hooks", "Hooks currently configured", registry=r)
        self._hook_attempts = Counter(
            "hookd_hook_attempts_total", "Delivery attempts per hook and outcome", ["hook_id", "outcome"], registry=r
        )
        self._ratio = Gauge(
            "hookd_hook_success_ratio",
            f"Share of a hook's last {SUCCESS_WINDOW} attempts that were delivered (0 to 1)",
            ["hook_id"],
            registry=r,
        )
        self._lock = threading.Lock()
        self._windows: dict[str, deque[bool]] = {}
        self._hook_outcomes: dict[str, set[str]] = {}
        self._breaker_hooks: set[str] = set()
        self._nodes: set[str] = set()
        self._up = False

    # -- recording -------------------------------------------------------------------------------
    def attempt(self, event: str, hook_id: str, outcome: str, duration_s: float) -> None:
        """One HTTP attempt (the canonical `delivery.attempt` log line), from a delivery thread."""
        self._attempts.labels(event, outcome).inc()
        self._duration.labels(outcome).observe(max(duration_s, 0.0))
        self._hook_attempts.labels(hook_id, outcome).inc()
        with self._lock:
            self._hook_outcomes.setdefault(hook_id, set()).add(outcome)
            window = self._windows.setdefault(hook_id, deque(maxlen=SUCCESS_WINDOW))
            window.append(outcome == _DELIVERED)
            ratio = sum(window) / len(window)
        self._ratio.labels(hook_id).set(ratio)

    def delivered(self, event: str) -> None:
        """A delivery succeeded (settled, its message acknowledged)."""
        self._deliveries.labels(event, _DELIVERED).inc()

    def retry_scheduled(self, event: str) -> None:
        """A delivery was handed to `<prefix>.retry.<delay>`."""
        self._deliveries.labels(event, "retry_scheduled").inc()
        self._retries.labels(event).inc()

    def dead_lettered(self, event: str, reason: str) -> None:
        """A delivery was published to `<prefix>.dead` with this reason."""
        self._deliveries.labels(event, "dead_lettered").inc()
        self._dead.labels(event, reason).inc()

    def parked(self, event: str, reason: str) -> None:
        """A delivery was held on the retry path without an attempt (open circuit, full backlog)."""
        self._deliveries.labels(event, "parked").inc()
        self._parked.labels(event, reason).inc()

    def in_flight(self, delta: int) -> None:
        """+1 when a delivery thread starts a job, -1 when it hands the result back."""
        self._in_flight.inc(delta)

    def breaker(self, hook_id: str, state: str) -> None:
        """A hook's circuit changed state: `closed`, `half_open` or `open`."""
        if state not in BREAKER_STATES:
            raise ValueError(f"unknown breaker state {state!r}; expected one of {', '.join(BREAKER_STATES)}")
        with self._lock:  # with hooks_loaded(): a reload cannot reset a state set meanwhile
            self._breaker_hooks.add(hook_id)
            self._breaker.labels(hook_id).set(BREAKER_STATES[state])

    def consumer_lag(self, queue: str, messages: int) -> None:
        """Messages ready (not yet delivered to any consumer) in `queue`, as last measured."""
        self._lag.labels(queue).set(messages)

    def broker_connected(self, up: bool, node: str | None = None) -> None:
        """The main thread connected (True, to `node`) or lost the connection (False); /healthz reads it."""
        self._up = up
        self._connected.set(1 if up else 0)
        if up and node is not None:
            with self._lock:
                for known in self._nodes - {node}:
                    self._node.labels(known).set(0)
                self._nodes.add(node)
            self._node.labels(node).set(1)

    @property
    def is_broker_connected(self) -> bool:
        return self._up

    def hooks_loaded(self, hook_ids: Iterable[str]) -> None:
        """The hook set was (re)loaded: count it, show a closed breaker for hooks not seen before
        (so every hook has a breaker series), and forget the series of hooks no longer there."""
        current = set(hook_ids)
        self._hooks.set(len(current))
        with self._lock:
            gone = (set(self._windows) | set(self._hook_outcomes) | self._breaker_hooks) - current
            outcomes = {hook: self._hook_outcomes.pop(hook, set()) for hook in gone}
            breakers = gone & self._breaker_hooks
            for hook in gone:
                self._windows.pop(hook, None)
            self._breaker_hooks -= gone
            for hook in current - self._breaker_hooks:
                self._breaker_hooks.add(hook)
                self._breaker.labels(hook).set(BREAKER_STATES["closed"])
        for hook in gone:
            for outcome in outcomes[hook]:
                _remove(self._hook_attempts, hook, outcome)
            _remove(self._ratio, hook)
            if hook in breakers:
                _remove(self._breaker, hook)

    # -- exposition ------------------------------------------------------------------------------
    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Every metric in the format the `Accept` header asks for (OpenMetrics or the Prometheus text
        format, prometheus_client's own choice), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def start_server(self, listen: str, health: HealthCheck | None = None) -> MetricsServer:
        """Serve `/metrics` and `/healthz` on `listen` (`HOST:PORT`, `[v6]:PORT`; port 0 picks one).

        Without `health`, /healthz reports only the broker connection flag. Raises
        `MetricsServerError` when the address cannot be bound.
        """
        check = health or health_of({"broker": self.broker_check})
        return MetricsServer(listen, self.render, check)

    def broker_check(self) -> None:
        """A /healthz check: raises while the daemon is not connected to the broker."""
        if not self._up:
            raise RuntimeError("not connected to the broker")


def _remove(metric: Counter | Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return


def recorder_for(listen: str) -> Metrics | NoMetrics:
    """`Metrics` when `metrics.listen` is set, else the free `NoMetrics`."""
    return Metrics() if listen else NoMetrics()


# -- health --------------------------------------------------------------------------------------------
def health_of(checks: Mapping[str, Callable[[], object]]) -> HealthCheck:
    """A `HealthCheck` from named checks: each passes unless it raises; healthy when all pass.

    The answer is `{"status": "ok"|"unhealthy", "checks": {name: "ok" | "error: ..."}}`.
    """

    def run() -> tuple[bool, dict[str, object]]:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
            except Exception as exc:
                results[name] = f"error: {' '.join(str(exc).split()) or type(exc).__name__}"[:500]
            else:
                results[name] = "ok"
        healthy = all(value == "ok" for value in results.values())
        return healthy, {"status": "ok" if healthy else "unhealthy", "checks": results}

    return run


def daemon_health(metrics: Metrics, store: SubscriptionStore) -> HealthCheck:
    """The daemon's /healthz: broker connected (the flag `broker_connected()` sets) and the store
    readable now (`SubscriptionStore.check`: a database's revision, a file re-read and validated)."""
    return health_of({"broker": metrics.broker_check, "store": store.check})


# -- the HTTP endpoint ---------------------------------------------------------------------------------
def parse_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:9187`, `[::1]:9187` or `0.0.0.0:9187` as (host, port)."""
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise MetricsServerError(f"metrics.listen must be HOST:PORT, got {listen!r}")
    return host, int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
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

    def __init__(self, address: tuple[str, int], render: Render, health: HealthCheck) -> None:
        self.render = render
        self.health = health
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class MetricsServer:
    """The running endpoint: a ThreadingHTTPServer in a daemon thread; `close()` stops it."""

    def __init__(self, listen: str, render: Render, health: HealthCheck) -> None:
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

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
