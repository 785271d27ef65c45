"""The hooks this daemon delivers to right now, and the ones it disabled itself (main thread only).

One owner for both: the main thread swaps in a freshly loaded `HookSet` (the watcher thread only
loads it) and records what settlement disabled, so nothing else mutates either. An automatic
disable is also handed to the store (`deactivate`) on a thread of its own, so every worker and the
admin see it; the in-memory record stands meanwhile, and after a failure to store it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from hookd import logs
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import SubscriptionStore

log = logs.get_logger("hookd.worker")


class Roster:
    """The loaded hooks and the disabled ones; read and changed on the connection's thread only."""

    def __init__(self, store: SubscriptionStore, hooks: HookSet, revision: int | None = None) -> None:
        self._store = store
        self._persisted = store.revision() is not None  # a database keeps what hookd disables
        self.hooks = hooks
        self.revision = revision  # the store revision `hooks` includes (None: a file, no revisions)
        self._disabled: dict[str, str] = {}  # hook id -> reason, until the store says inactive
        self._written: dict[str, int] = {}  # hook id -> the store's revision once its disable was stored

    @property
    def disabled(self) -> Mapping[str, str]:
        """Hook id -> why hookd disabled it (outcomes.Disabled)."""
        return MappingProxyType(self._disabled)

    def get(self, hook_id: str) -> Hook | None:
        return self.hooks.get(hook_id)

    def disable(self, hook: Hook, reason: str) -> bool:
        """Stop delivering to `hook`; True the first time (the caller logs and records it once)."""
        if hook.id in self._disabled:
            return False
        self._disabled[hook.id] = reason
        if self._persisted:
            threading.Thread(target=self._deactivate, args=(hook.id,), name="hook-deactivate", daemon=True).start()
        return True

    def behind(self, revision: int | None) -> bool:
        """The store had reached `revision` (a ping's) and these hooks do not include it yet."""
        return revision is not None and self.revision is not None and revision > self.revision

    def replace(self, hooks: HookSet, revision: int | None = None) -> None:
        """Swap in a fresh hook set. A hook disabled here stays disabled while a database still says
        active and the load predates the stored disable (the write may be on its way); once the
        store says inactive, or a load includes the write, the store governs (active again: its
        admin enabled it). A file's reload is its operator deciding again, so disables end there."""
        self.hooks = hooks
        self.revision = revision
        for hook_id in list(self._disabled):
            hook = hooks.get(hook_id)
            written = self._written.get(hook_id)
            includes_write = written is not None and revision is not None and revision >= written
            if hook is None or not hook.active or not self._persisted or includes_write:
                del self._disabled[hook_id]
                self._written.pop(hook_id, None)

    def _deactivate(self, hook_id: str) -> None:
        try:
            self._store.deactivate(hook_id)
            self._written[hook_id] = self._store.revision() or 0  # one item set: atomic for the main thread
        except Exception as exc:  # the in-memory disable stands; say why it was not stored
            log.error("hook.disable_not_stored", hook_id=hook_id, error=str(exc))
