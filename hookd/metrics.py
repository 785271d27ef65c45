"""Prometheus metrics: what `hookd run` records, and its rendering for `/metrics` (hookd.endpoint
serves it). The only module importing prometheus_client.

Why a class over a private registry instead of module-level metrics on the global registry: a
process (or a test) may build several daemons, and each must count on its own; the global
registry would refuse the second set of names. `NoMetrics` has the same methods and does nothing,
so the daemon calls them unconditionally and `metrics.listen: ""` (the default) costs nothing.

Label cardinality stays bounded: `event` and `outcome` come from fixed catalogues, `queue` from the
topology, `reason` from the dead-letter reasons, and `hook_id` from the configured hooks only
(`hookd_hook_disabled`: the hooks the state database holds disabled); `hooks_loaded()` drops the
series of hooks that disappeared on a reload.

Threads: the recording methods are called from the engine's event loop and the main thread
(prometheus_client's metrics are thread-safe; `_PerHook`, the per-hook windows and series, takes its
lock); `render` runs on the endpoint's request threads. Counts kept elsewhere (history records and
log lines dropped) are read at scrape time through `observe_counter`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hookd import __version__
from hookd.outcomes import Circuit, Verdict

#: `hookd_hook_breaker_state` values: alert on `> 0`.
BREAKER_STATES: Mapping[Circuit, int] = {Circuit.CLOSED: 0, Circuit.HALF_OPEN: 1, Circuit.OPEN: 2}
#: The success ratio of a hook is taken over its last this many attempts.
SUCCESS_WINDOW = 100
#: Attempt durations: from a fast local receiver to delivery.timeout_s's upper range.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DELIVERED = Verdict.DELIVERED.value


class MetricsRecorder(Protocol):
    """What the daemon records; `Metrics` and `NoMetrics` implement it."""

    def attempt(self, event: str, hook_id: str, outcome: str, duration_s: float) -> None: ...
    def delivered(self, event: str) -> None: ...
    def retry_scheduled(self, event: str) -> None: ...
    def dead_lettered(self, event: str, reason: str) -> None: ...
    def parked(self, event: str, reason: str) -> None: ...
    def in_flight(self, delta: int) -> None: ...
    def breaker(self, hook_id: str, state: Circuit) -> None: ...
    def consumer_lag(self, queue: str, messages: int) -> None: ...
    def partition_lag(self, messages: Mapping[str, int]) -> None: ...
    def queue_messages(self, queue: str, messages: int) -> None: ...
    def hooks_disabled(self, hook_ids: Iterable[str]) -> None: ...
    def broker_connected(self, up: bool, node: str | None = None) -> None: ...
    def hooks_loaded(self, hook_ids: Iterable[str]) -> None: ...
    def observe_counter(self, name: str, documentation: str, read: Callable[[], float]) -> None: ...
    def ordering(self, waiting: Mapping[str, int], partitions: int) -> None: ...


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

    def breaker(self, hook_id: str, state: Circuit) -> None:
        return None

    def consumer_lag(self, queue: str, messages: int) -> None:
        return None

    def partition_lag(self, messages: Mapping[str, int]) -> None:
        return None

    def queue_messages(self, queue: str, messages: int) -> None:
        return None

    def hooks_disabled(self, hook_ids: Iterable[str]) -> None:
        return None

    def broker_connected(self, up: bool, node: str | None = None) -> None:
        return None

    def hooks_loaded(self, hook_ids: Iterable[str]) -> None:
        return None

    def observe_counter(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        return None

    def ordering(self, waiting: Mapping[str, int], partitions: int) -> None:
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
        self._lag = Gauge(
            "hookd_consumer_lag_messages",
            "Messages ready in a queue hookd consumes, not yet taken",
            ["queue"],
            registry=r,
        )
        self._queue_messages = Gauge(
            "hookd_queue_messages",
            "Messages waiting in a queue hookd does not consume from: each retry delay, dead, invalid",
            ["queue"],
            registry=r,
        )
        self._disabled = Gauge(
            "hookd_hook_disabled",
            "1 for each hook hookd disabled (410, or failing too long), by the state database",
            ["hook_id"],
            registry=r,
        )
        self._connected = Gauge("hookd_broker_connected", "1 while connected to the broker and consuming", registry=r)
        self._node = Gauge(
            "hookd_broker_node",
            "1 for the broker node (host:port) this process is connected to, 0 for one it left",
            ["node"],
            registry=r,
        )
        self._nodes: set[str] = set()  # the main thread's (broker_connected)
        self._lag_partitions: set[str] = set()  # the main thread's (partition_lag)
        self._hooks = Gauge("hookd_hooks", "Hooks currently configured", registry=r)
        self._partitions = Gauge(
            "hookd_partitions_active", "Ordering partitions this worker owns and consumes", registry=r
        )
        self._per_hook = _PerHook(r)
        # (metric, labels) -> its child: `labels()` validates and locks on every call (1-2 us, measured);
        # these labels come from fixed catalogues, so the cache is bounded and never needs emptying.
        self._children: dict[tuple[object, ...], Any] = {}
        self._observed = _Observed()
        r.register(self._observed)
        self._disabled_lock = threading.Lock()  # hooks_disabled: the heartbeat thread's, a scrape may read
        self._disabled_hooks: set[str] = set()

    # -- recording -------------------------------------------------------------------------------
    def attempt(self, event: str, hook_id: str, outcome: str, duration_s: float) -> None:
        """One HTTP attempt (the canonical `delivery.attempt` log line), from the engine's loop."""
        _child(self._attempts, self._children, event, outcome).inc()
        _child(self._duration, self._children, outcome).observe(max(duration_s, 0.0))
        self._per_hook.attempt(hook_id, outcome)

    def delivered(self, event: str) -> None:
        """A delivery succeeded (settled, its message acknowledged)."""
        _child(self._deliveries, self._children, event, _DELIVERED).inc()

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
        """+1 when the engine starts a delivery, -1 when it hands the result back."""
        self._in_flight.inc(delta)

    def breaker(self, hook_id: str, state: Circuit) -> None:
        """A hook's circuit changed state."""
        self._per_hook.breaker(hook_id, Circuit(state))

    def consumer_lag(self, queue: str, messages: int) -> None:
        """Messages ready (not yet delivered to any consumer) in `queue`, as last measured."""
        self._lag.labels(queue).set(messages)

    def partition_lag(self, messages: Mapping[str, int]) -> None:
        """Ready messages in each ordering partition this worker owns now (its owner reports it, so a
        partition shows once across the workers); a partition it gave up loses its series here."""
        for queue in self._lag_partitions - messages.keys():
            _remove(self._lag, queue)
        for queue, count in messages.items():
            self._lag.labels(queue).set(count)
        self._lag_partitions = set(messages)

    def queue_messages(self, queue: str, messages: int) -> None:
        """Messages in `queue` (a retry delay, `.dead`, `.invalid`), as last measured."""
        self._queue_messages.labels(queue).set(messages)

    def hooks_disabled(self, hook_ids: Iterable[str]) -> None:
        """The hooks disabled now, as the state database says (every worker's disables): a series
        of 1 for each, and none for the others (the heartbeat thread calls it every few seconds)."""
        current = set(hook_ids)
        with self._disabled_lock:
            gone, self._disabled_hooks = self._disabled_hooks - current, current
        for hook in current:
            self._disabled.labels(hook).set(1)
        for hook in gone:
            _remove(self._disabled, hook)

    def broker_connected(self, up: bool, node: str | None = None) -> None:
        """The main thread connected (True, to `node`) or lost the connection (False)."""
        self._connected.set(1 if up else 0)
        if up and node is not None:
            for known in self._nodes - {node}:
                self._node.labels(known).set(0)
            self._nodes.add(node)
            self._node.labels(node).set(1)

    def hooks_loaded(self, hook_ids: Iterable[str]) -> None:
        """The hook set was (re)loaded: count it, show a closed breaker for hooks not seen before
        (so every hook has a breaker series), and forget the series of hooks no longer there."""
        current = set(hook_ids)
        self._hooks.set(len(current))
        self._per_hook.loaded(current)

    def ordering(self, waiting: Mapping[str, int], partitions: int) -> None:
        """Ordered delivery, as the main thread last measured it: deliveries waiting per hook, and the
        partitions owned."""
        self._per_hook.waiting(waiting)
        self._partitions.set(partitions)

    def observe_counter(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Expose a count kept elsewhere (e.g. history records dropped) as the counter `name`, read at
        each scrape; `read` must be safe to call from the endpoint's threads."""
        self._observed.add(name, documentation, read)

    # -- exposition ------------------------------------------------------------------------------
    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Every metric in the format the `Accept` header asks for (OpenMetrics or the Prometheus text
        format, prometheus_client's own choice), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def _child(metric: Counter | Gauge | Histogram, cache: dict[tuple[object, ...], Any], *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered (a race only looks the same child up twice)."""
    key = (metric, *labels)
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(*labels)
    return child


@dataclass(slots=True)
class _Window:
    """A hook's last attempts (delivered or not) and their running count of deliveries, with the
    children of its per-hook series, so an attempt costs no `labels()` lookup and no sum."""

    ratio: Any
    attempts: dict[str, Any] = field(default_factory=dict)
    results: deque[bool] = field(default_factory=lambda: deque(maxlen=SUCCESS_WINDOW))
    delivered: int = 0


class _PerHook:
    """The per-hook series: attempts by outcome, the success ratio over a window, the breaker state;
    and their cleanup when hooks disappear. One lock, because the loop records attempts while the
    main thread reloads hooks and records breaker changes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._breaker = Gauge(
            "hookd_hook_breaker_state",
            "Circuit breaker per hook: 0 closed, 1 half-open, 2 open",
            ["hook_id"],
            registry=registry,
        )
        self._attempts = Counter(
            "hookd_hook_attempts_total",
            "Delivery attempts per hook and outcome",
            ["hook_id", "outcome"],
            registry=registry,
        )
        self._ratio = Gauge(
            "hookd_hook_success_ratio",
            f"Share of a hook's last {SUCCESS_WINDOW} attempts that were delivered (0 to 1)",
            ["hook_id"],
            registry=registry,
        )
        self._waiting = Gauge(
            "hookd_ordered_waiting",
            "Deliveries waiting for an earlier delivery of the same entity to end, per hook (this worker's partitions)",
            ["hook_id"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self._waited: set[str] = set()  # hooks with a waiting series
        self._windows: dict[str, _Window] = {}
        self._breaker_hooks: set[str] = set()

    def attempt(self, hook_id: str, outcome: str) -> None:
        ok = outcome == _DELIVERED
        with self._lock:
            window = self._windows.get(hook_id)
            if window is None:
                window = self._windows[hook_id] = _Window(self._ratio.labels(hook_id))
            counter = window.attempts.get(outcome)
            if counter is None:
                counter = window.attempts[outcome] = self._attempts.labels(hook_id, outcome)
            results = window.results
            if len(results) == SUCCESS_WINDOW:
                window.delivered -= results[0]
            results.append(ok)
            window.delivered += ok
            ratio = window.delivered / len(results)
        counter.inc()
        window.ratio.set(ratio)

    def breaker(self, hook_id: str, state: Circuit) -> None:
        with self._lock:  # with loaded(): a reload cannot reset a state set meanwhile
            self._breaker_hooks.add(hook_id)
            self._breaker.labels(hook_id).set(BREAKER_STATES[state])

    def waiting(self, counts: Mapping[str, int]) -> None:
        with self._lock:  # with loaded(): a hook removed meanwhile keeps no series
            for hook_id in self._waited - counts.keys():
                self._waiting.labels(hook_id).set(0)
            for hook_id, count in counts.items():
                self._waiting.labels(hook_id).set(count)
            self._waited |= counts.keys()

    def loaded(self, current: set[str]) -> None:
        with self._lock:
            gone = (set(self._windows) | self._breaker_hooks | self._waited) - current
            waited = gone & self._waited
            self._waited -= gone
            windows = {hook: self._windows.pop(hook, None) for hook in gone}
            breakers = gone & self._breaker_hooks
            self._breaker_hooks -= gone
            for hook in current - self._breaker_hooks:
                self._breaker_hooks.add(hook)
                self._breaker.labels(hook).set(BREAKER_STATES[Circuit.CLOSED])
        for hook in gone:
            window = windows[hook]
            for outcome in window.attempts if window is not None else ():
                _remove(self._attempts, hook, outcome)
            _remove(self._ratio, hook)
            if hook in breakers:
                _remove(self._breaker, hook)
            if hook in waited:
                _remove(self._waiting, hook)


class _Observed(Collector):
    """Counters whose values live elsewhere, read at scrape time."""

    def __init__(self) -> None:
        self._read: dict[str, tuple[str, Callable[[], float]]] = {}

    def add(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._read = {**self._read, name: (documentation, read)}  # replaced whole: scrapes never see it half-built

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, (documentation, read) in self._read.items():
            yield CounterMetricFamily(name.removesuffix("_total"), documentation, value=read())


def _remove(metric: Counter | Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return


def recorder_for(listen: str) -> Metrics | NoMetrics:
    """`Metrics` when `metrics.listen` is set, else the free `NoMetrics`."""
    return Metrics() if listen else NoMetrics()
