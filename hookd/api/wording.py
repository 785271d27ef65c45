"""The console's words for times and delivery outcomes (pure: values in, text out).

Admins read "3 min ago" and "connection refused", not ISO strings and Python exception reprs. The
exact value stays one step away: the UTC time in `<time datetime>` and its title, the raw error in
a `<details>` beside the plain words (the templates do that). The attempt errors come from
`delivery.sender` (`gaierror: [Errno -2] Name or service not known`, `HTTP 503`, `timeout: deadline
of 10 s exceeded`...); anything not recognised is shown as "the request failed" with the raw text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIMEOUT_S = re.compile(r"deadline of ([0-9.]+) s")
_HTTP = re.compile(r"HTTP ([0-9]{3})")
#: (substrings of a raw error, lower case) -> the plain words; the first that matches wins.
_KNOWN: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("name or service not known", "nodename nor servname", "no address associated", "name does not resolve"),
        "host name does not resolve",
    ),
    (("temporary failure in name resolution",), "host name could not be resolved (DNS did not answer)"),
    (("connection refused",), "connection refused"),
    (("hostname mismatch", "doesn't match", "not valid for"), "TLS certificate not valid for this host"),
    (("certificate has expired",), "TLS certificate has expired"),
    (("self-signed", "self signed", "unable to get local issuer"), "TLS certificate not trusted"),
    (("certificate verify failed", "certificate_verify_failed"), "TLS certificate not valid"),
    (("ssl", "tls"), "TLS handshake failed"),
    (("connection reset", "broken pipe", "connection aborted"), "connection dropped by the receiver"),
    (("network is unreachable", "no route to host"), "network unreachable"),
    (("ssrf guard", "not allowed", "is not a public address"), "address not allowed by the network policy"),
    (("resolves to no address",), "host name resolves to no address"),
)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`moment` relative to `now`: "just now", "3 min ago", "5 h ago", "2 days ago" (or "in 4 min")."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now" if not ahead else "in a few seconds"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 36 * 3600:
        text = f"{round(seconds / 3600)} h"
    else:
        days = round(seconds / 86400)
        text = f"{days} day{'' if days == 1 else 's'}"
    return f"in {text}" if ahead else f"{text} ago"


def exact(moment: datetime | None) -> str:
    """The exact time for a title: `2026-11-29 02:54:25 UTC`."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def plain_error(error: str | None, status: int | None = None) -> str:
    """An attempt's failure in plain words: "connection refused", "timed out after 10 s", "HTTP 503"."""
    raw = (error or "").strip()
    lowered = raw.lower()
    if "timeout" in lowered or "timed out" in lowered:
        found = _TIMEOUT_S.search(raw)
        seconds = f" after {float(found[1]):g} s" if found else ""
        reading = " while reading the response" if "response body" in lowered else ""
        return f"timed out{seconds}{reading}"
    for needles, words in _KNOWN:
        if any(needle in lowered for needle in needles):
            return words
    found = _HTTP.search(raw)
    if found is not None:
        return f"HTTP {found[1]}"
    if status is not None and not 200 <= status < 300:
        return f"HTTP {status}"
    return "the request failed" if raw else ""


def outcome(state: str) -> str:
    """A delivery's state for people."""
    return {"delivered": "Delivered", "failed": "Failed", "retrying": "Retrying"}.get(state, state.capitalize())
