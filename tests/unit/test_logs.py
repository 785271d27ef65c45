"""logs: JSON lines with the message under `msg`, the hook event under `event`, secrets masked."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from hookd.logs import configure, get_logger, redact


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    """Configure hookd's JSON logging into a buffer; restore structlog's defaults afterwards."""
    stream = io.StringIO()
    configure(fmt="json", stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _plain() -> Any:
    """structlog's own logger, so configure() is tested independently of hookd's get_logger."""
    return structlog.get_logger()


def test_hookd_logger_renders_msg_event_and_masks_secret(json_stream: io.StringIO) -> None:
    """hookd's logger writes msg and event, and a secret passed to it never reaches the output."""
    get_logger("x").info("delivery.attempt", _event="job.failed", secret="s3cr3t", hook_id="1")
    (line,) = _lines(json_stream)
    assert (line["msg"], line["event"], line["hook_id"]) == ("delivery.attempt", "job.failed", "1")
    assert "s3cr3t" not in json_stream.getvalue()


def test_hookd_logger_carries_its_name(json_stream: io.StringIO) -> None:
    """get_logger(name) puts the module name under `component` on every line."""
    get_logger("hookd.worker").warning("broker.reconnecting")
    assert _lines(json_stream)[0]["component"] == "hookd.worker"


def test_json_line_has_msg_and_event(json_stream: io.StringIO) -> None:
    """The message goes under `msg` and the `_event=` keyword becomes `event`."""
    _plain().info("delivery.attempt", _event="job.failed", hook_id="1")
    (line,) = _lines(json_stream)
    assert line["msg"] == "delivery.attempt"
    assert line["event"] == "job.failed"
    assert line["hook_id"] == "1"
    assert "_event" not in line


def test_json_line_masks_secret(json_stream: io.StringIO) -> None:
    """A secret passed to a logger never reaches the output."""
    _plain().info("delivery.attempt", _event="job.failed", secret="s3cr3t", hook_id="1")
    assert "s3cr3t" not in json_stream.getvalue()
    assert _lines(json_stream)[0]["secret"] == "***"


def test_json_line_has_level_and_utc_timestamp(json_stream: io.StringIO) -> None:
    """Each line carries the level and a UTC ISO timestamp under `ts`."""
    _plain().warning("broker.reconnecting")
    (line,) = _lines(json_stream)
    assert line["level"] == "warning"
    assert line["ts"].endswith("Z")


def test_event_is_absent_without_event_keyword(json_stream: io.StringIO) -> None:
    """A log call without `_event=` has no `event` key."""
    _plain().info("daemon.started")
    (line,) = _lines(json_stream)
    assert line["msg"] == "daemon.started"
    assert "event" not in line


def test_level_filters_debug(json_stream: io.StringIO) -> None:
    """At the default info level, debug lines are dropped."""
    _plain().debug("noise")
    assert json_stream.getvalue() == ""


def test_debug_level_keeps_debug() -> None:
    """With level=debug, debug lines are written."""
    stream = io.StringIO()
    configure(fmt="json", level="debug", stream=stream)
    try:
        _plain().debug("noise")
    finally:
        structlog.reset_defaults()
    assert json.loads(stream.getvalue())["msg"] == "noise"


def test_context_variables_are_merged(json_stream: io.StringIO) -> None:
    """Bound context variables appear on every line, and are masked when sensitive."""
    structlog.contextvars.bind_contextvars(delivery_id="d-1", token="t0k3n")
    _plain().info("delivery.attempt")
    assert "t0k3n" not in json_stream.getvalue()
    assert _lines(json_stream)[0]["delivery_id"] == "d-1"


def test_auto_format_on_a_non_tty_is_json(json_stream: io.StringIO) -> None:
    """fmt=auto on a stream that is not a terminal writes JSON lines."""
    stream = io.StringIO()
    configure(fmt="auto", stream=stream)
    _plain().info("hello")
    assert json.loads(stream.getvalue())["msg"] == "hello"


def test_console_format_is_not_json() -> None:
    """fmt=console renders a human line containing the message."""
    stream = io.StringIO()
    configure(fmt="console", stream=stream)
    try:
        _plain().info("hello.console", _event="job.failed")
    finally:
        structlog.reset_defaults()
    assert "hello.console" in stream.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(stream.getvalue())


@pytest.mark.parametrize(
    "key", ["secret", "password", "Authorization", "basic_auth", "token", "body", "hook_secret", "X-Api-Token"]
)
def test_redact_masks_sensitive_keys(key: str) -> None:
    """Keys naming a secret, password, auth header, token or body are masked whatever their case."""
    assert redact(None, "info", {key: "value"})[key] == "***"


def test_redact_keeps_ordinary_keys() -> None:
    """Other keys are left untouched."""
    event = {"event": "delivery.attempt", "hook_id": "1", "status": 503}
    assert redact(None, "info", dict(event)) == event


def test_redact_masks_nested_mappings() -> None:
    """Sensitive keys are masked at any depth of nested mappings."""
    event = {"request": {"headers": {"Authorization": "Basic abc", "Accept": "*/*"}, "url": "https://x"}}
    redacted = redact(None, "info", event)
    assert redacted["request"] == {"headers": {"Authorization": "***", "Accept": "*/*"}, "url": "https://x"}


def test_redact_does_not_mutate_nested_input() -> None:
    """Masking a nested mapping does not modify the caller's object."""
    headers = {"Authorization": "Basic abc"}
    redact(None, "info", {"headers": headers})
    assert headers == {"Authorization": "Basic abc"}


def test_threaded_writer_keeps_every_line_from_every_thread_in_order_per_thread() -> None:
    """`hookd run` writes log lines from a writer thread: none is lost, each thread's stay in order,
    and closing writes out what is still queued."""
    import threading

    from hookd import logs

    stream = io.StringIO()
    configure(fmt="json", stream=stream, threaded=True)
    try:

        def emit(thread: int) -> None:
            for seq in range(500):
                get_logger("x").info("delivery.attempt", thread=thread, seq=seq)

        threads = [threading.Thread(target=emit, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logs.flush()
        lines = _lines(stream)
        assert len(lines) == 8 * 500
        for n in range(8):
            assert [line["seq"] for line in lines if line["thread"] == n] == list(range(500))
    finally:
        structlog.reset_defaults()


def test_threaded_writer_never_holds_a_caller_back_when_its_stream_is_stuck() -> None:
    """A stalled stdout (journald stuck) never makes a caller wait, the event loop included: past the
    bound, lines are dropped and counted, and the writer says how many once the output moves again."""
    import threading

    from hookd.logs import LineWriter

    release = threading.Event()

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            release.wait(10)
            return super().write(text)

    stream = Stuck()
    writer = LineWriter(stream, max_queued=5)
    done = threading.Event()

    def emit() -> None:
        for n in range(50):
            writer.msg(f"line {n}")
        done.set()

    threading.Thread(target=emit, daemon=True).start()
    assert done.wait(10), "a caller was held back by the stuck output"
    assert writer.dropped > 0
    release.set()
    writer.close()
    lines = stream.getvalue().splitlines()
    kept = [line for line in lines if line.startswith("line ")]
    assert kept == sorted(kept, key=lambda line: int(line.split()[1]))  # in order, some missing
    assert len(kept) + writer.dropped == 50
    [report] = [json.loads(line) for line in lines if "log.dropped" in line]
    assert report["msg"] == "log.dropped" and report["lines"] == writer.dropped


def test_the_canonical_line_written_directly_is_the_line_structlog_writes() -> None:
    """`canonical` with the daemon's JSON writer produces the same fields and values as the same call
    through structlog (but the time), masks a registered secret in `error`, and honours the level."""
    from hookd.logs import canonical, clear_secrets, flush, register_secrets

    fields = {
        "_event": "job.failed",
        "event_id": "evt-1",
        "account_id": "acme",
        "hook_id": "7",
        "delivery_id": "d-1",
        "attempt": 2,
        "status": 503,
        "duration_ms": 4.5,
        "outcome": "retryable",
        "error": "HTTP 503 (token s3cr3t-value-xyz)",
    }
    register_secrets(["s3cr3t-value-xyz"])
    try:
        lines = []
        for threaded in (False, True):
            stream = io.StringIO()
            configure(fmt="json", level="warning", stream=stream, threaded=threaded)
            canonical("hookd.worker", "warning", "delivery.attempt", dict(fields))
            canonical("hookd.worker", "info", "delivery.attempt", dict(fields))  # below the level: nothing
            flush()
            [line] = _lines(stream)
            assert line.pop("ts").endswith("Z")
            lines.append(line)
    finally:
        clear_secrets()
        structlog.reset_defaults()
    assert lines[0] == lines[1]
    assert lines[1]["event"] == "job.failed" and lines[1]["msg"] == "delivery.attempt"
    assert lines[1]["error"] == "HTTP 503 (token ***)"
