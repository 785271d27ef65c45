"""Trace context end to end, against a real broker, a real `hookd run`, a real receiver and a real
OTLP/HTTP collector in the test (decoding with opentelemetry-proto): the receiver gets the published
trace id with the attempt's span as parent, and the spans arrive with their attributes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.helpers import HookdProcess, Names, Receiver, hook_entry, run_cli
from support.otlp import OtlpReceiver, Span

from hookd.publisher import EventPublisher
from hookd.tracecontext import TraceContext, new_span_id, new_trace_id, parse_traceparent

from .conftest import OpsConfig


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP trace collector on a free port of 127.0.0.1."""
    found = OtlpReceiver()
    yield found
    found.close()


@pytest.fixture
def traced_hookd(ops_config: OpsConfig, receiver: Receiver, collector: OtlpReceiver, tmp_path: Path) -> HookdProcess:
    """hookd exporting to the collector; hook 1 answers 200, hook 2 always 503 (one durable retry, then dead)."""
    receiver.program("/down", then=503)
    hooks = [
        hook_entry("1", receiver.url("/ok"), events=["job"]),
        hook_entry("2", receiver.url("/down"), events=["job"]),
    ]
    ops_config.write(hooks, delivery={"inline_attempts": 1, "retry_delays_s": [1]})
    doc = yaml.safe_load(ops_config.path.read_text(encoding="utf-8"))
    doc["tracing"] = {"otlp_endpoint": collector.url, "service_name": "hookd-test"}
    ops_config.path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    # export every 100 ms instead of the SDK's 5 s, so the test waits on spans, not on a timer
    process = HookdProcess(ops_config.path, tmp_path, env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
    ops_config.names.before_delete.append(process.stop)
    process.wait_log("broker.connected")
    return process


def attempts_of(spans: list[Span], hook_id: str) -> list[Span]:
    return [s for s in spans if s.name == "attempt" and s.attributes["hookd.hook_id"] == hook_id]


def test_a_published_trace_reaches_the_receiver_and_hookds_spans_reach_the_collector(
    traced_hookd: HookdProcess, ops_config: OpsConfig, receiver: Receiver, collector: OtlpReceiver, broker_url: str
) -> None:
    """The receiver's traceparent has the published trace id and the attempt span as parent; consume,
    attempt (hook, status, outcome, attempt number), retry scheduled and dead-lettered spans arrive."""
    names: Names = ops_config.names
    published = TraceContext(new_trace_id(), new_span_id(), state="vendor=abc")
    with EventPublisher(broker_url, names.exchange) as publisher:
        publisher.publish("job.failed", "acme", {"id": 7}, trace=published)
    (request,) = receiver.wait_for(1, "/ok")
    parsed = parse_traceparent(request.header("traceparent"))
    assert parsed is not None
    trace_id, parent_id, flags = parsed
    assert trace_id == published.trace_id and parent_id != published.span_id and flags == 1
    assert request.header("tracestate") == "vendor=abc"

    spans = collector.wait_for(trace_id, "consume", "attempt", "attempt", "attempt", "retry scheduled", "dead-lettered")
    assert {s.service for s in spans} == {"hookd-test"}
    (consume,) = [s for s in spans if s.name == "consume" and s.parent_id == published.span_id]
    assert consume.attributes["hookd.event"] == "job.failed" and consume.attributes["hookd.hooks"] == 2
    (delivered,) = attempts_of(spans, "1")
    assert delivered.span_id == parent_id and delivered.parent_id == consume.span_id
    assert delivered.attributes["http.response.status_code"] == 200
    assert delivered.attributes["hookd.outcome"] == "delivered" and delivered.attributes["hookd.attempt"] == 1
    failed = sorted(attempts_of(spans, "2"), key=lambda s: s.attributes["hookd.attempt"])
    assert [s.attributes["hookd.attempt"] for s in failed] == [1, 2]
    assert all(s.attributes["http.response.status_code"] == 503 and s.status_code == 2 for s in failed)
    assert [s.attributes["hookd.outcome"] for s in failed] == ["retryable", "retryable"]
    assert {(r.header("traceparent") or "")[3:35] for r in receiver.requests("/down")} == {trace_id}
    (dead,) = [s for s in spans if s.name == "dead-lettered"]
    assert dead.attributes["hookd.hook_id"] == "2"


def test_hookd_publish_takes_the_trace_from_the_environment(
    traced_hookd: HookdProcess, ops_config: OpsConfig, receiver: Receiver, tmp_path: Path
) -> None:
    """`TRACEPARENT` in hookd publish's environment is the trace the receiver gets."""
    trace_id = new_trace_id()
    body = tmp_path / "job.json"
    body.write_text('{"id": 1}', encoding="utf-8")
    env = {"TRACEPARENT": f"00-{trace_id}-{new_span_id()}-01"}
    args = ("publish", "job.completed", "--account", "acme", "--config", str(ops_config.path), str(body))
    result = run_cli(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"trace={trace_id}" in result.stdout
    (request,) = receiver.wait_for(1, "/ok")
    assert (request.header("traceparent") or "")[3:35] == trace_id
