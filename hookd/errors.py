"""The exception tree: every error hookd raises on purpose derives from `HookdError`.

    HookdError
    ├── ConfigError            a config or hooks file (or a hook) is invalid: every problem at once
    │   ├── UrlError           (urls) a hook URL the RFC 3986 rules refuse; `problem` says why
    │   ├── UndecryptableSecrets  stored secrets the configured keys do not open (missing or wrong
    │   │                         key, altered value): refused with exit 2, never read as plaintext
    │   └── TopologyMismatch   a queue exists with other arguments than this hookd declares
    ├── UsageError             a bad command-line argument: exit code 2, nothing changed
    ├── EventError             a consumed message breaks the contract (`reason`: outcomes.Invalid)
    ├── DeliveryError
    │   ├── BlockedDestination the network policy refuses the hook's address (SSRF guard)
    │   └── ProtocolError      (delivery.http) the receiver broke HTTP/1.1; an attempt's outcome
    ├── KeyFileError           (cipher) a secrets key file that cannot be used; the loader reports it
    ├── UndecryptableError     (cipher, internal) one value that did not open; batched into
    │                          UndecryptableSecrets
    ├── BrokerError
    │   ├── ConnectionLost     the connection or channel is gone; unacked messages come back
    │   └── PublishFailed      the broker refused or could not route a message we needed kept
    ├── StoreError             a database could not be read or written
    │   └── HookNotFound       no hook has this id (also a KeyError)
    ├── MetricsServerError     the metrics endpoint could not listen
    └── ApiServerError         `hookd serve` could not listen

Library exceptions (pika, httptools, ssl and socket errors, yaml, sqlite3, psycopg, cryptography)
are translated at the adapter boundary so the rest of the code reasons about hookd's own types only.
"""

from __future__ import annotations

from collections.abc import Iterable


class HookdError(Exception):
    """Root of every error hookd raises deliberately."""


class ConfigError(HookdError):
    """A configuration or hooks file is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[str], source: str | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}{len(self.problems)} problem(s):\n{lines}")


class UndecryptableSecrets(ConfigError):
    """The database holds encrypted secrets that no configured key opens (no key, a wrong key, an
    altered or moved value). A `ConfigError` because the fix is in the configuration (`secrets.*`):
    every command refuses with exit 2 and changes nothing. `key_ids`: the unknown keys found."""

    def __init__(self, problems: Iterable[str], source: str | None = None, *, key_ids: tuple[str, ...] = ()) -> None:
        self.key_ids = key_ids
        super().__init__(problems, source)


class TopologyMismatch(ConfigError):
    """The broker has a queue with other arguments than this hookd declares (an older version's, or
    another `broker.*` configuration): no reconnection can fix it, so `hookd run` exits with code 2."""


class UsageError(HookdError):
    """A bad argument or a request the configuration forbids: exit code 2, nothing changed."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class EventError(HookdError):
    """An incoming message breaks the event contract; `reason` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class DeliveryError(HookdError):
    """A delivery could not be made."""


class BlockedDestination(DeliveryError):
    """The hook's host resolves to an address the network policy refuses (SSRF guard)."""


class BrokerError(HookdError):
    """Talking to RabbitMQ failed."""


class ConnectionLost(BrokerError):
    """The broker connection or channel is gone; in-flight unacked messages will be redelivered."""


class PublishFailed(BrokerError):
    """The broker refused or could not route a message we needed it to keep (no confirm)."""


class StoreError(HookdError):
    """The subscription store could not be read or written."""


class HookNotFound(StoreError, KeyError):
    """No hook has this id. Also a `KeyError`, so mapping-style callers can catch the usual error."""

    def __init__(self, hook_id: str) -> None:
        self.hook_id = hook_id
        super().__init__(f"no hook with id {hook_id!r}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class MetricsServerError(HookdError):
    """The metrics endpoint could not listen (address in use, not an address of this host...)."""


class ApiServerError(HookdError):
    """`hookd serve` could not listen on `api.listen` (address in use, not an address of this host...)."""


def yaml_problem(exc: Exception) -> str:
    """Describe a YAML syntax error by position only: PyYAML's own message quotes the offending line,
    which may hold a secret, and this text reaches logs and stderr."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    if mark is not None:
        return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"not valid YAML: {problem}"
