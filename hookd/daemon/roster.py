"""The hooks this daemon delivers to right now, and the ones it disabled itself (main thread only).

One owner for both: the main thread swaps in a freshly loaded `HookSet` (the store watcher only
loads it) and records what settlement disabled, so nothing else mutates either. An automatic
disable is handed to the watcher's thread to be stored (`store_disable`): in the hook itself for a
database source (every worker and the admin see it), in the state database for a hooks file
(`hookd.state.disables`: kept across restarts until the hook's entry changes). The in-memory record
stands meanwhile, and after a failure to store it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from hookd.state.disables import fingerprint
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook

#: Stores an automatic disable off the main thread (`Watcher.deactivate`).
StoreDisable = Callable[[Hook, str], None]


class Roster:
    """The loaded hooks and the disabled ones; read and changed on the connection's thread only.

    `persisted`: the store keeps disables in the hooks themselves (a database); else they are judged
    by the fingerprint of the hook's entry. `kept`: hook id -> (fingerprint, reason) of the disables a
    file source's state database kept from earlier runs.
    """

    def __init__(
        self,
        hooks: HookSet,
        revision: int | None = None,
        *,
        persisted: bool,
        store_disable: StoreDisable = lambda _hook, _reason: None,
        kept: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self._persisted = persisted
        self._store_disable = store_disable
        self.hooks = HookSet()
        self.revision = revision  # the store revision `hooks` includes (None: a file, no revisions)
        self._disabled: dict[str, str] = {}  # hook id -> reason, until the store (or an edit) says otherwise
        self._written: dict[str, int] = {}  # database: hook id -> the store's revision once its disable was stored
        self._entries: dict[str, str] = {}  # file: hook id -> fingerprint of the entry it disabled
        self._unwritten: set[str] = set()  # file: disabled here, not yet kept in the state database
        self.replace(hooks, revision, kept)

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
        if not self._persisted:
            self._entries[hook.id] = fingerprint(hook)
            self._unwritten.add(hook.id)
        self._store_disable(hook, reason)
        return True

    def stored(self, written: Mapping[str, int]) -> None:
        """The watcher stored these disables (a database: at that revision)."""
        for hook_id, revision in written.items():
            if self._persisted:
                self._written[hook_id] = revision
            else:
                self._unwritten.discard(hook_id)

    def behind(self, revision: int | None) -> bool:
        """The store had reached `revision` (a ping's) and these hooks do not include it yet."""
        return revision is not None and self.revision is not None and revision > self.revision

    def replace(
        self, hooks: HookSet, revision: int | None = None, kept: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        """Swap in a fresh hook set, and say which disables still stand.

        Database: a hook disabled here stays disabled while the store still says active and the load
        predates the stored disable (the write may be on its way); once the store says inactive, or a
        load includes the write, the store governs (active again: its admin enabled it).
        File: a disable stands while the hook's entry is unchanged and the state database still keeps
        it (`kept`; None: there is no state database) or its write is on its way; an edited entry, or
        `hookd hooks enable`, ends it.
        """
        self.hooks = hooks
        self.revision = revision
        if self._persisted:
            self._replace_persisted(hooks, revision)
        else:
            self._replace_file(hooks, kept)

    def _replace_persisted(self, hooks: HookSet, revision: int | None) -> None:
        for hook_id in list(self._disabled):
            hook = hooks.get(hook_id)
            written = self._written.get(hook_id)
            includes_write = written is not None and revision is not None and revision >= written
            if hook is None or not hook.active or includes_write:
                del self._disabled[hook_id]
                self._written.pop(hook_id, None)

    def _replace_file(self, hooks: HookSet, kept: Mapping[str, tuple[str, str]] | None) -> None:
        if kept is not None:  # disables kept by earlier runs (or other workers) join the ones made here
            for hook_id, (digest, reason) in kept.items():
                self._entries.setdefault(hook_id, digest)
                self._disabled.setdefault(hook_id, reason)
        for hook_id in list(self._disabled):
            hook = hooks.get(hook_id)
            standing = kept is None or hook_id in kept or hook_id in self._unwritten
            if hook is None or not hook.active or not standing or fingerprint(hook) != self._entries.get(hook_id):
                del self._disabled[hook_id]
                self._entries.pop(hook_id, None)
                self._unwritten.discard(hook_id)
