"""Trace context end to end, against a real broker, a real `hookd run`, a real receiver and a real
OTLP/HTTP collector in the test (decoding with opentelemetry-proto): the receiver gets the published
trace id with the attempt's span as parent, and the spans arrive with their attributes; an event
published without a trace gets one of hookd's, the same on every attempt; `EventPublisher` and
`hookd publish` take the caller's current OpenTelemetry span; an endpoint without the SDK is exit 2."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.helpers import Amqp, HookdProcess, Names, Receiver, Recorded, hook_entry, run_cli, subprocess_env
from support.otlp import OtlpReceiver, Span

from hookd.messages import delivery_id
from hookd.publisher import EventPublisher
from hookd.tracecontext import TraceContext, new_span_id, new_trace_id, parse_traceparent

from .conftest import Cli, OpsConfig


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
    export_to(ops_config, collector.url)
    # export every 100 ms instead of the SDK's 5 s, so the test waits on spans, not on a timer
    process = HookdProcess(ops_config.path, tmp_path, env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
    ops_config.names.before_delete.append(process.stop)
    process.wait_log("broker.connected")
    return process


def export_to(config: OpsConfig, endpoint: str) -> None:
    """Add `tracing.otlp_endpoint` (service name hookd-test) to the config `ops_config.write` wrote."""
    doc = yaml.safe_load(config.path.read_text(encoding="utf-8"))
    doc["tracing"] = {"otlp_endpoint": endpoint, "service_name": "hookd-test"}
    config.path.write_text(yaml.safe_dump(doc), encoding="utf-8")


@pytest.fixture
def plain_hookd(ops_config: OpsConfig, receiver: Receiver, tmp_path: Path) -> HookdProcess:
    """hookd with tracing off (no OTLP endpoint). Hook 1 takes job.failed at /flaky, which answers 500
    twice (the inline retry fails too, a durable retry follows) and then 200; hook 2 takes
    job.completed at /ok."""
    receiver.program("/flaky", 500, 500, then=200)
    hooks = [
        hook_entry("1", receiver.url("/flaky"), events=["job.failed"]),
        hook_entry("2", receiver.url("/ok"), events=["job.completed"]),
    ]
    ops_config.write(hooks, delivery={"inline_attempts": 2, "retry_delays_s": [1]})
    process = HookdProcess(ops_config.path, tmp_path)
    ops_config.names.before_delete.append(process.stop)
    process.wait_log("broker.connected")
    return process


def trace_of(request: Recorded) -> tuple[str, str, int]:
    """(trace id, parent id, flags) of the request's traceparent, which must be valid (not all zeros)."""
    parsed = parse_traceparent(request.header("traceparent"))
    assert parsed is not None, f"no valid traceparent: {request.header('traceparent')!r}"
    return parsed


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


def test_an_event_published_without_a_trace_gets_one_trace_of_its_own_on_every_attempt(
    plain_hookd: HookdProcess, ops_config: OpsConfig, receiver: Receiver, amqp: Amqp
) -> None:
    """No traceparent published: hookd starts a sampled trace per event; each attempt of a delivery
    (500, 500 inline, then 200 after a durable retry) carries that trace id with a parent of its own,
    and two other events get two other traces."""
    names = ops_config.names
    failed = amqp.publish_event(names, "job.failed")
    first = amqp.publish_event(names, "job.completed")
    second = amqp.publish_event(names, "job.completed")
    attempts = sorted(receiver.wait_for(3, "/flaky"), key=lambda r: r.attempt)
    assert [(r.attempt, r.delivery) for r in attempts] == [(n, delivery_id(failed, "1")) for n in (1, 2, 3)]
    traces = [trace_of(r) for r in attempts]
    assert {trace_id for trace_id, _, _ in traces} == {traces[0][0]}
    assert len({parent_id for _, parent_id, _ in traces}) == 3
    assert {flags for _, _, flags in traces} == {1}

    completed = {r.delivery: trace_of(r)[0] for r in receiver.wait_for(2, "/ok")}
    others = [completed[delivery_id(first, "2")], completed[delivery_id(second, "2")]]
    assert len({traces[0][0], *others}) == 3


def test_hookd_starts_the_trace_of_an_event_published_without_one_and_its_spans_carry_it(
    traced_hookd: HookdProcess, ops_config: OpsConfig, receiver: Receiver, collector: OtlpReceiver, amqp: Amqp
) -> None:
    """With OTLP on and no traceparent published, the trace the receivers get is the one hookd's spans
    are in: its root is the event's consume span, and each attempt span is a receiver's parent."""
    event_id = amqp.publish_event(ops_config.names, "job.failed")
    (ok,) = receiver.wait_for(1, "/ok")
    trace_id, parent_id, _ = trace_of(ok)
    down = receiver.wait_for(2, "/down")  # hook 2: the inline attempt, then the durable retry's
    assert {trace_of(r)[0] for r in down} == {trace_id}

    names = ("consume", "consume", "attempt", "attempt", "attempt", "retry scheduled", "dead-lettered")
    spans = collector.wait_for(trace_id, *names)
    (root,) = [s for s in spans if not s.parent_id]
    assert root.name == "consume" and root.attributes["hookd.event_id"] == event_id
    assert {s.span_id for s in spans if s.name == "attempt"} == {parent_id, *(trace_of(r)[1] for r in down)}


def test_event_publisher_takes_the_trace_of_the_callers_current_opentelemetry_span(
    plain_hookd: HookdProcess, ops_config: OpsConfig, receiver: Receiver, broker_url: str
) -> None:
    """Inside an application's OpenTelemetry span, an event published without `trace=` is in that
    span's trace; an explicit `trace=` wins; outside the span hookd starts a trace of its own."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("the scheduler")
    explicit = TraceContext(new_trace_id(), new_span_id())
    with EventPublisher(broker_url, ops_config.names.exchange) as publisher:
        with tracer.start_as_current_span("schedule job") as span:
            current = publisher.publish("job.completed", "acme", {"id": 1})
            chosen = publisher.publish("job.completed", "acme", {"id": 2}, trace=explicit)
        outside = publisher.publish("job.completed", "acme", {"id": 3})
    span_trace = f"{span.get_span_context().trace_id:032x}"
    got = {r.delivery: trace_of(r)[0] for r in receiver.wait_for(3, "/ok")}
    assert got[delivery_id(current, "2")] == span_trace
    assert got[delivery_id(chosen, "2")] == explicit.trace_id
    assert got[delivery_id(outside, "2")] not in (span_trace, explicit.trace_id)


@pytest.mark.usefixtures("plain_hookd")
def test_hookd_publish_takes_the_trace_of_the_callers_current_opentelemetry_span(
    ops_config: OpsConfig, receiver: Receiver, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hookd publish` run in process inside an application's span, without TRACEPARENT, publishes the
    event in that span's trace."""
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.delenv("TRACEPARENT", raising=False)
    monkeypatch.delenv("TRACESTATE", raising=False)
    body = tmp_path / "job.json"
    body.write_text('{"id": 1}', encoding="utf-8")
    tracer = TracerProvider().get_tracer("a cron job")
    args = ("publish", "job.completed", "--account", "acme", "--id", "evt-in-span", "--config", str(ops_config.path))
    with tracer.start_as_current_span("nightly run") as span:
        result = cli(*args, str(body))
    assert result.code == 0, result.err
    (request,) = receiver.wait_for(1, "/ok")
    assert request.delivery == delivery_id("evt-in-span", "2")
    assert trace_of(request)[0] == f"{span.get_span_context().trace_id:032x}"


#: `python -c` as `hookd`, with every `opentelemetry` import refused: an installation without the extra.
WITHOUT_OPENTELEMETRY = """
import sys
from importlib.abc import MetaPathFinder


class NoOpenTelemetry(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoOpenTelemetry())
from hookd.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_hookd_run_with_an_otlp_endpoint_and_no_opentelemetry_sdk_exits_2_saying_what_to_install(
    ops_config: OpsConfig, tmp_path: Path
) -> None:
    """`tracing.otlp_endpoint` set while the SDK cannot be imported: `hookd run` exits 2, without a
    traceback, with one line naming the setting, the missing module and `pip install 'hookd[otel]'`."""
    ops_config.write([hook_entry("1", "http://127.0.0.1:9/in", events=["job"])])
    export_to(ops_config, "http://127.0.0.1:4318")
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENTELEMETRY, "run", "--config", str(ops_config.path)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "pip install 'hookd[otel]'" in line]
    assert "tracing.otlp_endpoint" in line and "(opentelemetry" in line
