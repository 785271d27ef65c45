"""The one structlog configuration: JSON lines on stdout (journald keeps them), console on a TTY.

Log lines carry the message under `msg`, so `event` is free for the hook event name, as operators
search for it. Call sites pass the event name as `_event=`; `EventRenamer` moves it into place.
A redaction processor masks secret-looking keys wherever they appear, as a last line of defence:
the code never passes secrets or bodies to a logger in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

_SENSITIVE = ("secret", "password", "authorization", "basic_auth", "token", "body")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _mask(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: ("***" if _is_sensitive(k) else _mask(v)) for k, v in value.items()}
    return value


def _is_sensitive(key: object) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in _SENSITIVE)


def redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values whose key names a secret, password, token, auth header or body, at any depth."""
    for key in list(event_dict):
        if _is_sensitive(key):
            event_dict[key] = "***"
        elif isinstance(event_dict[key], Mapping):
            event_dict[key] = _mask(event_dict[key])
    return event_dict


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog once for the process (CLI entry points call this first)."""
    stream = stream or sys.stdout
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(event_key="msg", timestamp_key="ts")
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            redact,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg", replace_by="_event"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A lazy logger carrying the module name under `component`; configuration applies on first use."""
    return structlog.get_logger(component=name)
