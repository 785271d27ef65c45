"""The one structlog configuration: JSON lines on stdout (journald keeps them), console on a TTY.

Log lines carry the message under `msg`, so `event` is free for the hook event name, as operators
search for it. Call sites pass the event name as `_event=`; `EventRenamer` moves it into place.

The code never passes secrets or bodies to a logger in the first place. `redact`, the last processor
before rendering, is the line of defence behind that rule, for what slips through anyway (an
exception message, a library's error text):
- by key: values under keys naming a secret, password, token, auth header, salt or body are masked
  at any depth;
- by value: any string containing a registered secret (`register_secrets`: the daemon registers
  every hook's secrets, their `whsec_` forms and basic-auth data), an `Authorization` header value,
  `Basic <base64 user:pass>`, a `Bearer` token or a URL's `user:password@` is masked where it appears.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import functools
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

from hookd.handoff import Handoff

MASK = "***"
#: Registered values shorter than this are ignored: masking "ab" everywhere would wreck the logs.
MIN_SECRET_CHARS = 4
_SENSITIVE = (
    "secret",
    "password",
    "passwd",
    "authorization",
    "basic_auth",
    "token",
    "body",
    "salt",
    "credential",
    "cookie",
    "api_key",
    "apikey",
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_MAX_DEPTH = 8
# Up to this many registered values, `value in text` per value (C speed) beats the window index.
_DIRECT_SCAN_MAX = 64
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,;}]+")
_BASIC = re.compile(r"(?i)\b(basic\s+)([A-Za-z0-9+/]{4,}={0,2})")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@'\"]*):[^\s/@'\"]*@")
_TRIGGERS = ("authorization", "basic", "bearer", "://")  # a cheap test before the patterns above
_PLAIN = frozenset({str, int, float, bool, type(None)})  # common leaf types, told apart without ABC checks
#: Fields whose values hookd makes itself or takes from an event's headers: identifiers, names,
#: numbers, enums and times. No credential is ever in them, so the value scan passes them by (the
#: canonical attempt line then scans its message and `error` only: a third of its cost was the scan).
_IDENTIFIERS = frozenset(
    {
        "level",
        "ts",
        "component",
        "event",
        "event_id",
        "account_id",
        "hook_id",
        "delivery_id",
        "attempt",
        "attempts",
        "status",
        "last_status",
        "duration_ms",
        "outcome",
        "retry",
        "delay_s",
        "reason",
        "partition",
        "workers",
        "owned",
        "chains",
        "hooks",
        "running",
        "timeout_s",
        "retry_in_s",
        "failures",
        "max_in_flight",
    }
)


@dataclass(frozen=True)
class _Secrets:
    """An immutable snapshot of the registered values, swapped whole, so readers never lock."""

    values: frozenset[str] = frozenset()
    by_prefix: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    shortest: int = MIN_SECRET_CHARS  # strings shorter than every registered value cannot hold one

    def found_in(self, text: str) -> list[str]:
        """The registered values occurring in `text`."""
        if len(text) < self.shortest:
            return []
        if len(self.values) <= _DIRECT_SCAN_MAX:
            return [v for v in self.values if v in text]
        # Every window of the prefix length, intersected with the known prefixes (set operations run
        # in C), then a check of the few candidates: linear in the text, whatever the registry's size.
        width = MIN_SECRET_CHARS
        windows = {text[i : i + width] for i in range(len(text) - width + 1)}
        index = self.by_prefix
        return [v for prefix in windows & index.keys() for v in index[prefix] if v in text]


_secrets = _Secrets()
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values wherever they appear in a log line from now on (thread-safe, add-only).

    Pass everything at once (e.g. `h.sensitive_values()` of every hook on each load): registering
    values already known costs a set difference, nothing more.
    """
    global _secrets  # noqa: PLW0603 (one process-wide registry, swapped atomically)
    fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS}
    with _secrets_lock:
        if fresh <= _secrets.values:
            return
        merged = _secrets.values | fresh
        index: dict[str, list[str]] = {}
        for value in merged:
            index.setdefault(value[:MIN_SECRET_CHARS], []).append(value)
        _secrets = _Secrets(merged, {k: tuple(v) for k, v in index.items()}, min(map(len, merged)))


def clear_secrets() -> None:
    """Forget every registered value (tests)."""
    global _secrets  # noqa: PLW0603
    with _secrets_lock:
        _secrets = _Secrets()


def scrub(text: str) -> str:
    """`text` with registered secrets and credential patterns masked."""
    return _scrub(text, _secrets.found_in(text), _has_trigger(text))


def _has_trigger(text: str) -> bool:
    lowered = text.lower()
    return any(trigger in lowered for trigger in _TRIGGERS)


def _scrub(text: str, found: list[str], patterns: bool) -> str:
    if len(text) < MIN_SECRET_CHARS:
        return text
    for value in sorted(found, key=len, reverse=True):
        text = text.replace(value, MASK)
    if patterns:
        text = _AUTH_HEADER.sub(lambda m: m[1] + MASK, text)
        text = _BASIC.sub(_mask_basic, text)
        text = _BEARER.sub(lambda m: m[1] + MASK, text)
        text = _USERINFO.sub(lambda m: m[1] + ":" + MASK + "@", text)
    return text


def _mask_basic(match: re.Match[str]) -> str:
    """`Basic <token>` is masked when the token is base64 of `user:password`, not in prose ("basic auth")."""
    try:
        decoded = base64.b64decode(match[2], validate=True)
    except (binascii.Error, ValueError):
        return match[0]
    return match[1] + MASK if b":" in decoded else match[0]


@functools.lru_cache(maxsize=4096)
def _is_sensitive(key: object) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in _SENSITIVE)


def _strings(value: Any, out: list[str], depth: int = 0) -> None:
    """Collect every string in `value`, at any depth, to scan them all in one pass."""
    kind = type(value)
    if kind in _PLAIN:
        if kind is str:
            out.append(value)
    elif isinstance(value, str):
        out.append(value)
    elif depth < _MAX_DEPTH and isinstance(value, Mapping):
        for item in value.values():
            _strings(item, out, depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, list | tuple):
        for item in value:
            _strings(item, out, depth + 1)


def _mask(value: Any, found: list[str], patterns: bool, depth: int = 0) -> Any:
    """A copy of `value` with sensitive keys and secret-bearing strings masked (inputs are not mutated)."""
    if isinstance(value, str):
        return _scrub(value, found, patterns) if found or patterns else value
    if depth >= _MAX_DEPTH:
        return value if isinstance(value, int | float | bool) or value is None else MASK
    if isinstance(value, Mapping):
        return {k: (MASK if _is_sensitive(k) else _mask(v, found, patterns, depth + 1)) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_mask(v, found, patterns, depth + 1) for v in value)
    return value


def redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values whose key names a secret, password, token, auth header or body, at any depth, and
    every registered secret or credential pattern inside any string value.

    The strings of the whole line are scanned once, but for the plain values of `_IDENTIFIERS`; a
    line with nothing to mask (the usual case) is left as it is after that one scan.
    """
    texts: list[str] = []
    nested = False
    for key, value in event_dict.items():
        if _is_sensitive(key) or (key in _IDENTIFIERS and type(value) in _PLAIN):
            continue
        _strings(value, texts)
        nested = nested or (type(value) not in _PLAIN and isinstance(value, Mapping | list | tuple))
    joined = "\x00".join(texts)
    registry = _secrets
    found = registry.found_in("\x00".join(t for t in texts if len(t) >= registry.shortest)) if registry.values else []
    patterns = _has_trigger(joined)
    for key in list(event_dict):
        if _is_sensitive(key):
            event_dict[key] = MASK
        elif found or patterns or nested:
            event_dict[key] = _mask(event_dict[key], found, patterns)
    return event_dict


class LineWriter:
    """A structlog logger that hands rendered lines to one writer thread (`hookd run` only).

    With one line per delivery attempt, writing in the caller meant a lock and a write(2) plus flush
    per line: at 1,300 attempts/s that was a sixth of the process's CPU. Here a caller only hands the
    line over (`hookd.handoff`: an append, no wake-up while the writer is busy); the writer thread
    writes whatever gathered (within `_LINGER_S`) in one call and flushes. Lines keep their order.
    `close()` (at exit, and before a forced exit) writes what is still queued; a SIGKILL loses at
    most the last few tens of milliseconds of lines.

    A caller never waits: the event loop logs every attempt, and a stalled output (journald stuck)
    must not freeze every delivery in flight. Past `max_queued` waiting lines, lines are dropped and
    counted (`dropped`, exposed as `hookd_log_lines_dropped_total`); once the output moves again the
    writer says how many it lost (`log.dropped`).
    """

    _MAX_BATCH = 1000
    _MAX_QUEUED = 50_000
    _LINGER_S = 0.02

    def __init__(self, stream: TextIO, *, max_queued: int = _MAX_QUEUED) -> None:
        self._stream = stream
        self._lines: Handoff[str] = Handoff(limit=max_queued, batch=self._MAX_BATCH, linger_s=self._LINGER_S)
        self._reported = 0  # the writer thread's: drops already reported
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def msg(self, message: str) -> None:
        self._lines.put(message)

    log = debug = info = warn = warning = error = err = critical = fatal = exception = failure = msg

    @property
    def alive(self) -> bool:
        """The writer thread runs (it ends with `close`)."""
        return self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Lines dropped so far because the output could not keep up."""
        return self._lines.dropped

    def close(self, timeout_s: float = 5.0) -> None:
        """Write everything queued so far, then stop (idempotent)."""
        if self._thread.is_alive():
            self._lines.close()
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            batch = self._lines.take()
            dropped = self._lines.dropped
            if dropped != self._reported:
                batch.append(_dropped_line(dropped - self._reported, dropped))
                self._reported = dropped
            if batch:
                with contextlib.suppress(OSError, ValueError):  # a closed stdout must not kill the writer
                    self._stream.write("\n".join(batch) + "\n")
                    self._stream.flush()
            elif self._lines.closed:
                return


def _dropped_line(lost: int, total: int) -> str:
    """The writer's own line about lines it lost (rendered here: logging it would queue it behind them)."""
    now = datetime.now(UTC).isoformat()
    fields = {"lines": lost, "total": total, "component": "hookd.logs", "level": "warning", "ts": now}
    return json.dumps({**fields, "msg": "log.dropped"})


_writer: LineWriter | None = None


def flush() -> None:
    """Write out queued log lines now (before a forced exit)."""
    if _writer is not None:
        _writer.close()


def dropped_lines() -> int:
    """Log lines the daemon's writer dropped so far (0 when lines are written by the caller)."""
    return _writer.dropped if _writer is not None else 0


@dataclass(frozen=True)
class _Direct:
    """Where `canonical` writes when the pipeline is the daemon's JSON one: the writer and the level."""

    writer: LineWriter
    level: int


_direct: _Direct | None = None


def canonical(component: str, level: str, msg: str, fields: dict[str, Any]) -> None:
    """Log the one line of a delivery attempt (or another line as hot), exactly as `get_logger(component)`
    would: the same fields, level filter, time stamp, `_event` renaming and redaction, the same JSON.

    With the daemon's JSON writer it skips structlog's processor chain, which was most of the line's
    cost (a dict copy and a call per processor); anywhere else (console output, tests capturing
    structlog) it goes through structlog. `fields` is consumed.
    """
    direct = _direct
    if direct is None or not direct.writer.alive:  # not the daemon's writer, or closed (a forced exit)
        getattr(get_logger(component), level)(msg, **fields)
        return
    if _LEVELS[level] < direct.level:
        return
    if "_event" in fields:
        fields["event"] = fields.pop("_event")
    fields["component"] = component
    fields["level"] = level
    fields["ts"] = datetime.now(UTC).isoformat()[:-6] + "Z"
    fields["msg"] = msg
    direct.writer.msg(_json(redact(None, level, fields)))


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None, *, threaded: bool = False) -> None:
    """Configure structlog once for the process (CLI entry points call this first).

    `threaded`: lines are written by a writer thread (`LineWriter`), for the daemon's hot path.
    """
    global _direct  # noqa: PLW0603 (the one configuration of the process, swapped whole)
    stream = stream or sys.stdout
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(event_key="msg", timestamp_key="ts")
        if console
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg", replace_by="_event"),
            redact,  # last: it also sees the rendered traceback and the message
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=_writer_factory(stream) if threaded else structlog.WriteLoggerFactory(file=stream),
        # The daemon configures once: its loggers may keep their first binding (no rebinding per line).
        cache_logger_on_first_use=threaded,
    )
    _direct = _Direct(_writer, _LEVELS.get(level, logging.INFO)) if threaded and not console and _writer else None


def _json(value: Any, **options: Any) -> str:
    """One log line as JSON, by orjson: a tenth of the standard library's time per line (measured,
    0.34 against 3.8 us), on the event loop's hot path. Values orjson does not know go through
    structlog's fallback (`default`), as with `json.dumps`."""
    rendered: bytes = orjson.dumps(value, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS)
    return rendered.decode()


def _writer_factory(stream: TextIO) -> Any:
    global _writer  # noqa: PLW0603
    if _writer is not None:
        _writer.close()
    writer = _writer = LineWriter(stream)
    return lambda *_args: writer


def get_logger(name: str) -> Any:
    """A lazy logger carrying the module name under `component`; configuration applies on first use."""
    return structlog.get_logger(component=name)
