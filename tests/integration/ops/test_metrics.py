"""Metrics and health, unit level: what each recording call shows on /metrics, and the HTTP endpoint."""

from __future__ import annotations

import gzip
import inspect
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookd import metrics as metrics_module
from hookd.endpoint import Endpoint, parse_listen
from hookd.errors import MetricsServerError, StoreError
from hookd.health import Health, health_of
from hookd.metrics import SUCCESS_WINDOW, Metrics, NoMetrics, recorder_for
from hookd.outcomes import Circuit
from hookd.subscriptions.store import MemoryStore


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(m.render()[0].decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def m() -> Metrics:
    return Metrics()


@pytest.fixture
def health() -> Health:
    return Health(MemoryStore())


@pytest.fixture
def server(m: Metrics, health: Health) -> Iterator[Endpoint]:
    srv = Endpoint("127.0.0.1:0", health.check, m.render)
    yield srv
    srv.close()


def get(url: str) -> tuple[int, str, str]:
    """Status, content type and body of a GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metric_names_are_hookd_s_own_or_the_standard_process_series(m: Metrics) -> None:
    """hookd's metrics live under hookd_; the process collector keeps the standard process_* names that
    stock dashboards read."""
    m.attempt("job.failed", "1", "delivered", 0.2)
    names = {s.name for f in text_string_to_metric_families(m.render()[0].decode()) for s in f.samples}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= names
    assert all(name.startswith(("hookd_", "process_")) for name in names), sorted(names)


def test_attempt_counts_by_event_and_outcome_and_observes_duration(m: Metrics) -> None:
    """One attempt: the attempts counter, the duration histogram and the hook's own counter move."""
    m.attempt("job.failed", "42", "delivered", 0.03)
    m.attempt("job.failed", "42", "retryable", 2.0)
    assert value(m, "hookd_delivery_attempts_total", event="job.failed", outcome="delivered") == 1
    assert value(m, "hookd_delivery_attempts_total", event="job.failed", outcome="retryable") == 1
    assert value(m, "hookd_attempt_duration_seconds_count", outcome="delivered") == 1
    assert value(m, "hookd_attempt_duration_seconds_bucket", outcome="delivered", le="0.05") == 1
    assert value(m, "hookd_attempt_duration_seconds_bucket", outcome="retryable", le="1.0") == 0
    assert value(m, "hookd_hook_attempts_total", hook_id="42", outcome="retryable") == 1


def test_success_ratio_is_over_the_hooks_recent_attempts(m: Metrics) -> None:
    """The ratio is delivered / attempts over the last SUCCESS_WINDOW attempts of that hook only."""
    for _ in range(3):
        m.attempt("job.failed", "1", "delivered", 0.01)
    m.attempt("job.failed", "1", "permanent", 0.01)
    m.attempt("job.failed", "2", "retryable", 0.01)
    assert value(m, "hookd_hook_success_ratio", hook_id="1") == 0.75
    assert value(m, "hookd_hook_success_ratio", hook_id="2") == 0.0
    for _ in range(SUCCESS_WINDOW):
        m.attempt("job.failed", "2", "delivered", 0.01)
    assert value(m, "hookd_hook_success_ratio", hook_id="2") == 1.0


def test_settlements_count_delivered_retries_and_dead_letters(m: Metrics) -> None:
    """deliveries_total by outcome, plus the dedicated retry and dead-letter counters."""
    m.delivered("job.completed")
    m.retry_scheduled("job.completed")
    m.dead_lettered("job.completed", "permanent_failure")
    assert value(m, "hookd_deliveries_total", event="job.completed", outcome="delivered") == 1
    assert value(m, "hookd_deliveries_total", event="job.completed", outcome="retry_scheduled") == 1
    assert value(m, "hookd_deliveries_total", event="job.completed", outcome="dead_lettered") == 1
    assert value(m, "hookd_retries_scheduled_total", event="job.completed") == 1
    assert value(m, "hookd_dead_lettered_total", event="job.completed", reason="permanent_failure") == 1


def test_in_flight_lag_and_connection_gauges(m: Metrics) -> None:
    """Gauges show the last value set."""
    m.in_flight(+1)
    m.in_flight(+1)
    m.in_flight(-1)
    m.consumer_lag("hookd.events", 17)
    m.broker_connected(True)
    assert value(m, "hookd_deliveries_in_flight") == 1
    assert value(m, "hookd_consumer_lag_messages", queue="hookd.events") == 17
    assert value(m, "hookd_broker_connected") == 1


def test_breaker_state_per_hook(m: Metrics) -> None:
    """0 closed, 1 half-open, 2 open; an unknown state is a programming error."""
    m.breaker("7", Circuit.OPEN)
    assert value(m, "hookd_hook_breaker_state", hook_id="7") == 2
    m.breaker("7", Circuit.HALF_OPEN)
    assert value(m, "hookd_hook_breaker_state", hook_id="7") == 1
    with pytest.raises(ValueError, match="not a valid Circuit"):
        m.breaker("7", "ajar")  # type: ignore[arg-type]


def test_hooks_loaded_shows_new_hooks_closed_and_forgets_removed_ones(m: Metrics) -> None:
    """Per-hook series exist for configured hooks only, so hook ids cannot grow cardinality forever."""
    m.hooks_loaded(["1", "2"])
    m.attempt("job.failed", "2", "delivered", 0.01)
    m.breaker("2", Circuit.OPEN)
    assert value(m, "hookd_hooks") == 2
    assert value(m, "hookd_hook_breaker_state", hook_id="1") == 0
    m.hooks_loaded(["1", "3"])
    remaining = {labels for (name, labels) in samples(m) if name.startswith("hookd_hook_")}
    assert (("hook_id", "2"),) not in remaining
    assert all(dict(labels).get("hook_id") != "2" for labels in remaining)
    assert value(m, "hookd_hook_breaker_state", hook_id="3") == 0
    assert value(m, "hookd_hook_breaker_state", hook_id="2") is None


def test_queue_messages_per_waiting_queue(m: Metrics) -> None:
    """Each retry delay, dead and invalid queue gets its own depth series, the last measure winning."""
    m.queue_messages("hookd.retry.5s", 3)
    m.queue_messages("hookd.dead", 2)
    m.queue_messages("hookd.retry.5s", 1)
    assert value(m, "hookd_queue_messages", queue="hookd.retry.5s") == 1
    assert value(m, "hookd_queue_messages", queue="hookd.dead") == 2


def test_hooks_disabled_shows_exactly_the_hooks_the_database_holds_disabled(m: Metrics) -> None:
    """A hook no longer disabled loses its series: alerts on it resolve instead of firing forever."""
    m.hooks_disabled(["4", "5"])
    assert value(m, "hookd_hook_disabled", hook_id="4") == 1
    m.hooks_disabled(["5"])
    assert value(m, "hookd_hook_disabled", hook_id="4") is None
    assert value(m, "hookd_hook_disabled", hook_id="5") == 1


def test_two_recorders_count_independently() -> None:
    """Each Metrics has its own registry: a second daemon in one process does not collide."""
    first, second = Metrics(), Metrics()
    first.delivered("ping")
    assert value(first, "hookd_deliveries_total", event="ping", outcome="delivered") == 1
    assert value(second, "hookd_deliveries_total", event="ping", outcome="delivered") is None


def test_no_metrics_has_every_recording_method_as_a_no_op() -> None:
    """NoMetrics can stand in for Metrics wherever the daemon records something."""
    recording = [
        name
        for name, fn in inspect.getmembers(metrics_module.MetricsRecorder, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert recording
    for name in recording:
        assert inspect.signature(getattr(NoMetrics, name)) == inspect.signature(getattr(Metrics, name)), name
    assert isinstance(recorder_for(""), NoMetrics)
    assert isinstance(recorder_for("127.0.0.1:9187"), Metrics)


def test_metrics_endpoint_serves_the_prometheus_exposition(m: Metrics, server: Endpoint) -> None:
    """GET /metrics answers 200 in the Prometheus text format."""
    m.delivered("job.failed")
    status, content_type, body = get(server.url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    assert 'hookd_deliveries_total{event="job.failed",outcome="delivered"} 1.0' in body


def test_metrics_endpoint_negotiates_openmetrics_and_gzip(m: Metrics, server: Endpoint) -> None:
    """An OpenMetrics Accept header gets OpenMetrics (ending in # EOF), and gzip when it is accepted."""
    m.delivered("job.failed")
    request = urllib.request.Request(
        server.url + "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.headers["Content-Encoding"] == "gzip"
        text = gzip.decompress(response.read()).decode()
    assert text.rstrip().endswith("# EOF")
    assert 'hookd_deliveries_total{event="job.failed",outcome="delivered"} 1.0' in text


def test_healthz_follows_the_broker_connection(health: Health, server: Endpoint) -> None:
    """The daemon's /healthz is 503 until connected, 200 while connected, 503 after."""
    status, _, body = get(server.url + "/healthz")
    assert status == 503
    assert json.loads(body)["checks"]["broker"].startswith("error: not connected")
    health.broker_connected(True)
    status, content_type, body = get(server.url + "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"status": "ok", "checks": {"broker": "ok", "store": "ok"}}
    health.broker_connected(False)
    assert get(server.url + "/healthz")[0] == 503


def test_healthz_stands_without_metrics(health: Health) -> None:
    """/healthz answers from the health checks alone: an endpoint without metrics serves it (and 404s
    /metrics)."""
    health.broker_connected(True)
    with Endpoint("127.0.0.1:0", health.check) as srv:
        assert get(srv.url + "/healthz")[0] == 200
        assert get(srv.url + "/metrics")[0] == 404


def test_healthz_reports_each_failing_check_by_name() -> None:
    """A check that raises makes the answer 503 and names what failed."""

    def broken_store() -> None:
        raise OSError("database is locked")

    with Endpoint("127.0.0.1:0", health_of({"broker": lambda: None, "store": broken_store})) as srv:
        status, _, body = get(srv.url + "/healthz")
    assert status == 503
    assert json.loads(body) == {
        "status": "unhealthy",
        "checks": {"broker": "ok", "store": "error: database is locked"},
    }


def test_unknown_paths_answer_404(server: Endpoint) -> None:
    """Only /metrics and /healthz exist."""
    assert get(server.url + "/admin")[0] == 404


def test_close_releases_the_port(health: Health) -> None:
    """After close() the address can be bound again (a restarted daemon reuses it)."""
    srv = Endpoint("127.0.0.1:0", health.check)
    port = srv.port
    srv.close()
    srv.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_taken_port_is_a_clear_error(health: Health, server: Endpoint) -> None:
    """Binding an address in use raises MetricsServerError naming it."""
    with pytest.raises(MetricsServerError, match=f"127.0.0.1:{server.port}"):
        Endpoint(f"127.0.0.1:{server.port}", health.check)


def test_parse_listen_accepts_ipv4_ipv6_and_rejects_junk() -> None:
    """HOST:PORT with IPv6 in brackets; anything else is refused."""
    assert parse_listen("127.0.0.1:9187") == ("127.0.0.1", 9187)
    assert parse_listen("[::1]:9187") == ("::1", 9187)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    for bad in ("9187", ":9187", "host:port", "h:70000"):
        with pytest.raises(MetricsServerError):
            parse_listen(bad)


def test_daemon_health_reports_a_store_that_cannot_be_read() -> None:
    """/healthz asks the store's own check(); its failure makes the daemon unhealthy, with the reason."""

    class BrokenStore(MemoryStore):
        def check(self) -> None:
            raise StoreError("database is down")

    health = Health(BrokenStore())
    health.broker_connected(True)
    healthy, detail = health.check()
    assert not healthy
    assert detail["checks"] == {"broker": "ok", "store": "error: database is down"}


def test_daemon_health_combines_broker_and_store(health: Health) -> None:
    """The daemon's /healthz: healthy only when connected and the store reads."""
    assert health.check()[0] is False
    health.broker_connected(True)
    assert health.check() == (True, {"status": "ok", "checks": {"broker": "ok", "store": "ok"}})


def test_counts_kept_elsewhere_are_read_at_each_scrape(m: Metrics) -> None:
    """`observe_counter` exposes a count another component keeps (history drops) as a counter."""
    dropped = [0]
    m.observe_counter("hookd_history_dropped_total", "records dropped", lambda: dropped[0])
    assert value(m, "hookd_history_dropped_total") == 0
    dropped[0] = 7
    assert value(m, "hookd_history_dropped_total") == 7


def test_partition_lag_shows_the_owned_partitions_only(m: Metrics) -> None:
    """Each worker reports the partitions it owns; one it gave up loses its series."""
    m.partition_lag({"hookd.partition.0": 5, "hookd.partition.3": 0})
    assert value(m, "hookd_consumer_lag_messages", queue="hookd.partition.0") == 5
    m.partition_lag({"hookd.partition.3": 7})
    assert value(m, "hookd_consumer_lag_messages", queue="hookd.partition.0") is None
    assert value(m, "hookd_consumer_lag_messages", queue="hookd.partition.3") == 7
