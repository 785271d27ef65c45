"""Which hooks receive an event (pure): active, same account, subscribed to the event or its group."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from hookd.events import GROUPS, PING
from hookd.subscriptions.model import Hook


def subscribes(hook: Hook, event_name: str) -> bool:
    """True when `hook` lists `event_name` itself or the group it belongs to; every hook gets pings."""
    if event_name == PING:
        return True
    if event_name in hook.events:
        return True
    group = event_name.split(".", 1)[0]
    return group in GROUPS and group in hook.events


def matches(hook: Hook, event_name: str, account_id: str) -> bool:
    """The full rule: active, the event's account, and subscribed."""
    return hook.active and hook.account_id == account_id and subscribes(hook, event_name)


class HookSet:
    """An immutable snapshot of every hook, indexed for the per-event lookup on the hot path."""

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

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_id.values())

    def get(self, hook_id: str) -> Hook | None:
        return self._by_id.get(hook_id)

    def for_account(self, account_id: str) -> tuple[Hook, ...]:
        return self._by_account.get(account_id, ())

    def match(self, event_name: str, account_id: str) -> list[Hook]:
        """Every hook that must receive this event, in a stable order."""
        return [h for h in self.for_account(account_id) if matches(h, event_name, account_id)]
