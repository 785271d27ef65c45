"""Where hooks come from (store protocol and sources) and which of them an event goes to."""

from hookd.subscriptions.matching import HookSet, matches, subscribes
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.store import StaticStore, SubscriptionStore

__all__ = ["BasicAuth", "Hook", "HookSet", "StaticStore", "SubscriptionStore", "matches", "subscribes"]
