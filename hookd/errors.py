"""The exception tree: every error hookd raises on purpose derives from `HookdError`.

Library exceptions (pika, requests, yaml, psycopg) are translated at the adapter boundary so the
rest of the code reasons about hookd's own types only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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


def yaml_problem(exc: Exception) -> str:
    """Describe a YAML syntax error by position only: PyYAML's own message quotes the offending line,
    which may hold a secret, and this text reaches logs and stderr."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    if mark is not None:
        return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"not valid YAML: {problem}"


def join_problems(problems: Sequence[str]) -> str:
    """Render a list of problems as an indented block for CLI output."""
    return "\n".join(f"  - {p}" for p in problems)
