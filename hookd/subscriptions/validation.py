"""Field rules shared by every subscription source and the CLI (pure): one message per problem."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from hookd.events import SUBSCRIBABLE


def url_problem(url: object) -> str | None:
    """Why `url` is not an acceptable hook URL, or None: http or https, with a host, no userinfo."""
    if not isinstance(url, str) or not url.strip():
        return "must be a non-empty http or https URL"
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a malformed port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    del port
    if parts.scheme not in ("http", "https"):
        return f"must use http or https, not {parts.scheme or 'no scheme'!r}"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (use basic_auth instead)"
    return None


def events_problems(events: object) -> list[str]:
    """Problems with an `events` list: non-empty, each a known event name or group."""
    if not isinstance(events, Sequence) or isinstance(events, str | bytes) or not events:
        return ["must be a non-empty list of event names or groups (job, cluster)"]
    problems = []
    for name in events:
        if not isinstance(name, str) or name not in SUBSCRIBABLE:
            known = ", ".join(sorted(SUBSCRIBABLE))
            problems.append(f"unknown event {name!r} (known: {known})")
    return problems
