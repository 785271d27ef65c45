"""An immutable snapshot of every hook, indexed for the per-event lookup on the hot path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from hookd.subscriptions.model import Hook


class HookSet:
    """Every hook of a source, by id and by account; which of them get an event is `hookd.dispatch`'s."""

    __slots__ = ("_by_account", "_by_id")

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        by_id: dict[str, Hook] = {}
        by_account: dict[str, list[Hook]] = {}
        for hook in hooks:
            by_id[hook.id] = hook
            by_account.setdefault(hook.account_id, []).append(hook)
        self._by_id: Mapping[str, Hook] = MappingProxyType(by_id)
        self._by_account: Mapping[str, tuple[Hook, ...]] = MappingProxyType(
            {account: tuple(hs) for account, hs in by_account.items()}
        )

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self._by_id.values())

    def get(self, hook_id: str) -> Hook | None:
        return self._by_id.get(hook_id)

    def for_account(self, account_id: str) -> tuple[Hook, ...]:
        """The account's hooks, in a stable order."""
        return self._by_account.get(account_id, ())
