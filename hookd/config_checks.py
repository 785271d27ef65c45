"""The checks of hookd.yaml's values: each returns what is wrong with a value, or None, and `Section`
reads one mapping of the file through them, recording every problem under its dotted key, so the
loader (`hookd.config`) reports all of them at once."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

#: The most broker nodes `broker.url` may list.
MAX_BROKER_NODES = 32


T = TypeVar("T")


class Section:
    """Reads one mapping of the config file, recording every problem with its dotted key."""

    def __init__(self, name: str, data: object, problems: list[str], known: frozenset[str]) -> None:
        self.name = name
        self.problems = problems
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(f"{name}: must be a mapping")
            data = {}
        self.data: dict[str, Any] = data
        problems.extend(f"{name}.{key}: unknown key" for key in data if key not in known)

    def get(self, key: str, default: T, check: Callable[[Any], str | None], *, echo: bool = True) -> T:
        """The value at `key`, or `default` (recording why) when it fails `check`.

        `echo=False` keeps the rejected value out of the message (it may hold a password).
        """
        if key not in self.data:
            return default
        value = self.data[key]
        why = check(value)
        if why is not None:
            shown = f" (got {value!r})" if echo else ""
            self.problems.append(f"{self.name}.{key}: {why}{shown}")
            return default
        return value  # type: ignore[no-any-return]


def number(minimum: float, maximum: float = math.inf, integer: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        kinds: tuple[type, ...] = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return "must be an integer" if integer else "must be a number"
        if not minimum <= cast(float, value) <= maximum:
            return f"must be between {minimum:g} and {maximum:g}"
        return None

    return check


def text(choices: tuple[str, ...] = ()) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string"
        if choices and value not in choices:
            return f"must be one of {', '.join(choices)}"
        return None

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def delays(value: Any) -> str | None:
    if not isinstance(value, list) or not value or len(value) > 50:
        return "must be a list of 1 to 50 delays in seconds"
    for delay in value:
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            return "every delay must be a number of seconds"
        if not 0.1 <= delay <= 7 * 86400 or abs(round(delay * 1000) - delay * 1000) > 1e-6:
            return "every delay must be 0.1 s to 7 days, in whole milliseconds"
    return None


def amqp_url_list(value: Any) -> str | None:
    """`broker.url`: one AMQP URL, or a list of 1 to 32 (one per node of a cluster)."""
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_BROKER_NODES:
        return f"must be an amqp:// URL or a list of 1 to {MAX_BROKER_NODES} of them (one per node)"
    for index, url in enumerate(urls):
        if (why := amqp_url(url)) is not None:
            return why if len(urls) == 1 else f"[{index}] {why}"
    return None


def amqp_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be an amqp:// or amqps:// URL"
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port out of range raises here
    except ValueError:
        return "must be an amqp:// or amqps:// URL with a valid port"
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        return "must be an amqp:// or amqps:// URL with a host"
    return None


def optional_path(value: Any) -> str | None:
    """A file path, or null (unset)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return "must be a file path (or null: no encryption)"
    return "must not contain a NUL character" if "\x00" in value else None


def paths(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of file paths"
    if any("\x00" in v for v in value):
        return "must not contain a NUL character"
    return None


def database_url(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return "must be sqlite:///PATH or postgresql://..."
    if "\x00" in value:
        return "must not contain a NUL character"
    return None


def networks(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of CIDR networks, e.g. [10.20.0.0/16, fd00::/8]"
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            return f"{item!r} is not a CIDR network"
    return None


def server_address(value: Any) -> str | None:
    """HOST:PORT that must be set (`api.listen`): `127.0.0.1:8780`, `[::1]:8780`."""
    if value == "":
        return "must be HOST:PORT, e.g. 127.0.0.1:8780"
    return listen(value)


def http_endpoint(value: Any) -> str | None:
    """An http(s) URL with a host, or "" (off): `tracing.otlp_endpoint`."""
    if value == "":
        return None
    if not isinstance(value, str):
        return "must be an http:// or https:// URL (empty: off)"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:4318 (empty: off)"
    return None


def listen(value: Any) -> str | None:
    if value == "":
        return None
    if not isinstance(value, str) or ":" not in value:
        return "must be HOST:PORT, e.g. 127.0.0.1:9187 (empty: off)"
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "must be HOST:PORT with a port from 1 to 65535"
    return None
