"""W3C Trace Context: what is accepted, what is refused, what hookd makes; and where it travels
(the targeted message's headers, each attempt's request, the tracer's choice)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd import urls
from hookd.delivery.sender import request_bytes
from hookd.errors import ConfigError
from hookd.messages import Delivery, delivery_headers, parse_delivery
from hookd.subscriptions.model import Hook
from hookd.tracecontext import (
    TraceContext,
    from_headers,
    new_trace,
    parse_traceparent,
    parse_tracestate,
)
from hookd.tracing import NoTracer, current_context, tracer_for, traces_url

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_specs_example_parses() -> None:
    """The W3C example gives its trace id, parent id and the sampled flag."""
    assert parse_traceparent(VALID) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1)
    assert parse_traceparent(VALID.encode()) == parse_traceparent(VALID)


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        42,
        VALID.upper(),  # hex must be lowercase
        VALID[:-1],  # too short
        VALID + "-",  # version 00 is exactly 55 characters
        "ff" + VALID[2:],  # version ff is forbidden
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    ],
)
def test_an_invalid_traceparent_is_refused(value: object) -> None:
    """Wrong case, length, version, separators, digits or all-zero ids: no context."""
    assert parse_traceparent(value) is None


def test_a_later_version_is_read_by_its_first_fields() -> None:
    """A reader of version 00 reads version 01 with extra fields, as the spec asks."""
    assert parse_traceparent("01" + VALID[2:] + "-what-comes-next") == parse_traceparent(VALID)
    assert parse_traceparent("01" + VALID[2:] + "x") is None


def test_tracestate_keeps_valid_members_and_drops_an_invalid_header_whole() -> None:
    """Blank members go, 32 members at most, a bad key or a duplicate drops the lot."""
    assert parse_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,") == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert parse_tracestate("tenant@vendor=x") == "tenant@vendor=x"
    assert parse_tracestate("Rojo=1") == ""
    assert parse_tracestate("a=1,a=2") == ""
    assert parse_tracestate("a=1\r\nX-Injected: 1") == ""
    assert parse_tracestate(",".join(f"k{i}=v" for i in range(33))) == ""


def test_from_headers_reads_an_amqp_or_http_header_mapping() -> None:
    """traceparent and tracestate together; an invalid traceparent means no context at all."""
    ctx = from_headers({"traceparent": VALID, "tracestate": "rojo=1"})
    assert ctx == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1, "rojo=1")
    assert from_headers({"traceparent": "bogus", "tracestate": "rojo=1"}) is None
    assert from_headers({}) is None


@given(st.integers(min_value=0, max_value=255))
def test_what_hookd_makes_parses_back(flags: int) -> None:
    """A new trace and its children are valid traceparents of one trace, each child naming its parent."""
    root = TraceContext(new_trace().trace_id, new_trace().span_id, flags)
    child = root.child()
    assert parse_traceparent(child.traceparent) == (root.trace_id, child.span_id, flags)
    assert child.parent_id == root.span_id and child.span_id != root.span_id


def test_a_targeted_message_carries_the_trace_and_gives_it_back() -> None:
    """Retries and dead letters keep the trace: the headers round-trip it; none without one."""
    ctx = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1, "rojo=1")
    delivery = Delivery("7", "job.failed", "evt-1", "acme", "d-1", b"{}", 1, 0, None, ctx)
    headers = delivery_headers(delivery)
    assert headers["traceparent"] == VALID and headers["tracestate"] == "rojo=1"
    assert parse_delivery(headers, "evt-1", b"{}").trace == ctx
    assert "traceparent" not in delivery_headers(Delivery("7", "job.failed", "evt-1", "acme", "d-1"))


def test_each_attempt_request_carries_its_traceparent() -> None:
    """The request's traceparent is the attempt's context, next to the signature headers."""
    ctx = new_trace().child()
    hook = Hook(id="7", account_id="acme", url="https://example.com/h", events=("job",), secret="s")
    delivery = Delivery("7", "job.failed", "evt-1", "acme", "d-1", b"{}", trace=ctx)
    request = request_bytes(hook, delivery, 1, urls.parse(hook.url)).decode("latin-1")
    assert f"\r\ntraceparent: {ctx.traceparent}\r\n" in request
    assert (
        "traceparent"
        not in request_bytes(hook, Delivery("7", "job.failed", "e", "acme", "d"), 1, urls.parse(hook.url)).decode()
    )


def test_no_endpoint_means_no_exporter_and_a_bad_one_is_a_config_error(tmp_path: Path) -> None:
    """Tracing off is the free NoTracer; the collector's URL gets the OTLP traces path once."""
    assert isinstance(tracer_for(""), NoTracer)
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces/") == "http://collector:4318/v1/traces"
    from hookd.config import load_settings

    path = tmp_path / "hookd.yaml"
    path.write_text("subscriptions: {source: yaml, path: hooks.yaml}\ntracing: {otlp_endpoint: 'ftp://x'}\n")
    (tmp_path / "hooks.yaml").write_text("hooks: []\n")
    with pytest.raises(ConfigError, match=r"tracing\.otlp_endpoint: must be an http"):
        load_settings(path)


def test_the_callers_current_opentelemetry_span_is_the_publishers_context() -> None:
    """An application inside an OpenTelemetry span publishes with that span as parent."""
    from opentelemetry.sdk.trace import TracerProvider

    assert current_context() is None
    tracer = TracerProvider().get_tracer("the scheduler")
    with tracer.start_as_current_span("schedule job") as span:
        found = current_context()
        context = span.get_span_context()
    assert found == TraceContext(f"{context.trace_id:032x}", f"{context.span_id:016x}", int(context.trace_flags))


def test_the_exporter_sends_sampled_spans_with_their_parent_and_flushes_on_close() -> None:
    """A finished span reaches an OTLP/HTTP collector (on loopback) with its ids, kind and attributes;
    an unsampled one does not; close() sends what was queued."""
    from support.otlp import OtlpReceiver

    collector = OtlpReceiver()
    try:
        tracer = tracer_for(collector.url, "unit")
        parent = new_trace()
        sampled, unsampled = parent.child(), TraceContext(new_trace().trace_id, new_trace().span_id, 0)
        tracer.span("attempt", sampled, 1_000, 2_000, {"hookd.hook_id": "7"}, kind="client", error=True)
        tracer.span("attempt", unsampled, 1_000, 2_000, {})
        tracer.close()
        (span,) = collector.spans
    finally:
        collector.close()
    assert (span.trace_id, span.span_id, span.parent_id) == (parent.trace_id, sampled.span_id, parent.span_id)
    assert span.attributes == {"hookd.hook_id": "7"} and span.service == "unit"
    assert span.kind == 3 and span.status_code == 2  # SPAN_KIND_CLIENT, STATUS_CODE_ERROR
