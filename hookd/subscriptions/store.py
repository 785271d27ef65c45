"""The subscription store protocol, and an in-memory store for tests and embedding.

Every source (YAML file, SQL database, memory) implements the whole protocol, so mypy checks that a
caller's capability exists: a source without a change counter answers `revision()` with None (its
hooks are reloaded on SIGHUP), one that cannot persist an automatic disable answers `deactivate()`
with False. Writes (create, update, delete...) are the SQL store's own: only it can take them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook


class SubscriptionStore(Protocol):
    """A source of hooks. `load` raises `ConfigError` or `StoreError` and never returns half a set."""

    def describe(self) -> str:
        """A short human description for logs, e.g. `yaml:/etc/hookd/hooks.yaml`."""
        ...

    def load(self) -> HookSet:
        """Every hook, validated."""
        ...

    def revision(self) -> int | None:
        """A counter that grows with every change (poll it, reload when it moves); None: the source
        has none, and is reloaded on SIGHUP instead."""
        ...

    def check(self) -> None:
        """Raise `StoreError` or `ConfigError` when the source cannot be read now (for /healthz)."""
        ...

    def list(self, account_id: str | None = None) -> list[Hook]:
        """Hooks (of one account, if given) ordered by id, numerically where the id is a number."""
        ...

    def get(self, hook_id: str) -> Hook | None: ...

    def deactivate(self, hook_id: str) -> bool:
        """Persist that hookd disabled the hook (every worker and the admin see it); False when this
        source cannot store it (a file: the operator decides by editing it)."""
        ...


#: Ids of up to this many digits are numbers (sorted as such, allocated by the SQL store); longer ones
#: would overflow a BIGINT and are text.
MAX_NUMERIC_DIGITS = 18


def is_numeric_id(hook_id: str) -> bool:
    """The id is a number in hookd's sense (ASCII digits, at most `MAX_NUMERIC_DIGITS`)."""
    return hook_id.isascii() and hook_id.isdigit() and len(hook_id) <= MAX_NUMERIC_DIGITS


def id_order(hook_id: str) -> tuple[int, int, str]:
    """Numeric ids first, in numeric order (2 before 10), then the others as text."""
    if is_numeric_id(hook_id):
        return (0, int(hook_id), hook_id)
    return (1, 0, hook_id)


def ordered(hooks: Iterable[Hook], account_id: str | None = None) -> list[Hook]:
    """`hooks` of `account_id` (all if None), in `id_order`."""
    return sorted((h for h in hooks if account_id is None or h.account_id == account_id), key=lambda h: id_order(h.id))


class MemoryStore:
    """An in-memory store for tests and embedding: holds a `HookSet`; `replace` moves the revision."""

    def __init__(self, hooks: Iterable[Hook] = (), *, revisioned: bool = True) -> None:
        self._hooks = hooks if isinstance(hooks, HookSet) else HookSet(hooks)
        self._revision: int | None = 0 if revisioned else None

    def describe(self) -> str:
        return f"memory:{len(self._hooks)} hooks"

    def load(self) -> HookSet:
        return self._hooks

    def revision(self) -> int | None:
        return self._revision

    def check(self) -> None:
        return None

    def list(self, account_id: str | None = None) -> list[Hook]:
        return ordered(self._hooks, account_id)

    def get(self, hook_id: str) -> Hook | None:
        return self._hooks.get(hook_id)

    def deactivate(self, hook_id: str) -> bool:
        if self._hooks.get(hook_id) is None:
            return False
        self.replace(dataclasses.replace(h, active=False) if h.id == hook_id else h for h in self._hooks)
        return True

    def replace(self, hooks: Iterable[Hook]) -> None:
        """Swap in new hooks, as an edit of the source would (a running daemon reloads them)."""
        self._hooks = HookSet(hooks)
        if self._revision is not None:
            self._revision += 1
