"""Exporting hookd's spans over OTLP/HTTP: the only module importing the OpenTelemetry SDK.

Off by default (`tracing.otlp_endpoint: ""`): `NoTracer` does nothing and the SDK is never imported,
so it need not be installed (`pip install 'hookd[otel]'` brings it). Trace *context* is hookd's own
either way (`tracecontext`): every attempt sends a `traceparent`, exported or not.

Why spans are handed over finished instead of through the SDK's tracer: each attempt's span id must
be known before the attempt (it is the `traceparent` the receiver gets) and the engine's event loop
must not carry a context object through tenacity and the HTTP client. So hookd makes the ids, times
the work itself, and gives the SDK a finished `ReadableSpan`; the SDK's `BatchSpanProcessor` queues
it (a lock and a deque append: the caller never waits on the network; a full queue drops spans) and
its own thread, `OtelBatchSpanProcessor`, sends batches to the OTLP exporter. `close()` flushes and
stops that thread. An unsampled context (flag 0 from the publisher) is never exported.

`current_context()` is the caller's OpenTelemetry context, when the application publishing events
uses the OpenTelemetry API (imported only if installed): `EventPublisher` makes its event's context a
child of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from hookd import __version__
from hookd.errors import ConfigError
from hookd.tracecontext import TraceContext

Kind = Literal["internal", "consumer", "client", "producer"]
Attributes = Mapping[str, str | int | float | bool]
#: The OTLP/HTTP path of traces, added to an endpoint that names only the collector.
TRACES_PATH = "/v1/traces"


class Tracer(Protocol):
    """Where finished spans go."""

    def span(
        self,
        name: str,
        ctx: TraceContext,
        start_ns: int,
        end_ns: int,
        attributes: Attributes,
        *,
        kind: Kind = "internal",
        error: bool = False,
    ) -> None: ...

    def close(self) -> None: ...


class NoTracer:
    """`tracing.otlp_endpoint: ""`: spans go nowhere, for free."""

    def span(
        self,
        name: str,
        ctx: TraceContext,
        start_ns: int,
        end_ns: int,
        attributes: Attributes,
        *,
        kind: Kind = "internal",
        error: bool = False,
    ) -> None:
        return None

    def close(self) -> None:
        return None


def traces_url(endpoint: str) -> str:
    """`http://collector:4318` or `.../v1/traces` as the URL spans are POSTed to."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def tracer_for(endpoint: str, service_name: str = "hookd") -> Tracer:
    """`NoTracer` without an endpoint, else an OTLP exporter (`ConfigError` when the SDK is missing)."""
    if not endpoint:
        return NoTracer()
    try:
        return _OtlpTracer(traces_url(endpoint), service_name)
    except ImportError as exc:
        missing = f"tracing.otlp_endpoint is set but the OpenTelemetry SDK is missing ({exc.name})"
        raise ConfigError([f"{missing}: pip install 'hookd[otel]'"], "tracing") from None


class _OtlpTracer:
    """Finished spans to an OTLP/HTTP collector through the SDK's batch processor (module docstring)."""

    def __init__(self, url: str, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import ReadableSpan  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: PLC0415
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState  # noqa: PLC0415
        from opentelemetry.trace.status import Status, StatusCode  # noqa: PLC0415

        self._span_type = ReadableSpan
        self._context = SpanContext
        self._flags = TraceFlags
        self._state = TraceState
        self._kinds = {
            "internal": SpanKind.INTERNAL,
            "consumer": SpanKind.CONSUMER,
            "client": SpanKind.CLIENT,
            "producer": SpanKind.PRODUCER,
        }
        self._ok, self._error = Status(StatusCode.UNSET), Status(StatusCode.ERROR)
        self._resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self._scope = InstrumentationScope("hookd", __version__)
        self._processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=10))

    def span(
        self,
        name: str,
        ctx: TraceContext,
        start_ns: int,
        end_ns: int,
        attributes: Attributes,
        *,
        kind: Kind = "internal",
        error: bool = False,
    ) -> None:
        if not ctx.sampled:
            return
        trace_id, flags = int(ctx.trace_id, 16), self._flags(ctx.flags)
        state = self._state.from_header([ctx.state]) if ctx.state else None
        own = self._context(trace_id, int(ctx.span_id, 16), is_remote=False, trace_flags=flags, trace_state=state)
        parent: Any = None
        if ctx.parent_id is not None:
            parent = self._context(trace_id, int(ctx.parent_id, 16), is_remote=True, trace_flags=flags)
        span = self._span_type(
            name=name,
            context=own,
            parent=parent,
            resource=self._resource,
            attributes=dict(attributes),
            kind=self._kinds[kind],
            status=self._error if error else self._ok,
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self._scope,
        )
        self._processor.on_end(span)

    def close(self) -> None:
        """Send what is queued (the processor's own timeout bounds it) and stop its thread."""
        self._processor.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


def current_context() -> TraceContext | None:
    """The calling application's current OpenTelemetry span as a context, when it has one (the
    OpenTelemetry API installed and a valid span current); else None."""
    try:
        from opentelemetry import trace  # noqa: PLC0415 (optional: only if the application uses it)
    except ImportError:
        return None
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    state = found.trace_state.to_header() if found.trace_state else ""
    return TraceContext(f"{found.trace_id:032x}", f"{found.span_id:016x}", int(found.trace_flags), state)
