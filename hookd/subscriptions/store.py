"""The subscription store protocol: every source (YAML file, SQL database) yields a `HookSet`."""

from __future__ import annotations

from typing import Protocol

from hookd.subscriptions.matching import HookSet


class SubscriptionStore(Protocol):
    """A source of hooks. `load` raises `ConfigError` or `StoreError` and never returns half a set."""

    def load(self) -> HookSet: ...

    def describe(self) -> str:
        """A short human description for logs, e.g. `yaml:/etc/hookd/hooks.yaml`."""
        ...


class StaticStore:
    """An in-memory store for tests and embedding: returns the hooks it was given."""

    def __init__(self, hooks: HookSet) -> None:
        self.hooks = hooks

    def load(self) -> HookSet:
        return self.hooks

    def describe(self) -> str:
        return f"memory:{len(self.hooks)} hooks"
