"""The configured hooks as the admin commands see them: readable from either source, writable from a database.

The YAML file is the source of truth when `subscriptions.source` is `yaml`: write commands refuse
(exit 2) instead of writing somewhere the daemon never reads.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from hookd.config import Settings
from hookd.events import normalize_account
from hookd.state.db import Database
from hookd.subscriptions.model import Hook
from hookd.subscriptions.sql_store import HookNotFound, SqlStore
from hookd.subscriptions.yaml_store import YamlStore

from .common import UsageError, open_database
from .output import timestamp

#: Per hook id: (created_at, updated_at). Only a database keeps them.
Times = dict[str, tuple[datetime | None, datetime | None]]


class Hooks:
    """Read access to the configured hooks; `store` is the writable `SqlStore` (None for YAML)."""

    def __init__(self, *, store: SqlStore | None = None, yaml: YamlStore | None = None) -> None:
        self.store = store
        self._yaml = yaml

    def list(self, account_id: str | None = None) -> builtins.list[Hook]:
        """Hooks ordered by id (numerically where the id is a number), of one account if given."""
        account = None if account_id is None else normalize_account(account_id)
        if self.store is not None:
            hooks = self.store.list(account)
        elif self._yaml is not None:
            hooks = [h for h in self._yaml.load() if account is None or h.account_id == account]
        else:  # a database file that does not exist yet holds no hooks
            hooks = []
        return sorted(hooks, key=lambda h: id_order(h.id))

    def get(self, hook_id: str) -> Hook:
        """The hook with this id; `HookNotFound` (exit 2 in the commands) when there is none."""
        hook: Hook | None = None
        if self.store is not None:
            hook = self.store.get(hook_id)
        elif self._yaml is not None:
            hook = self._yaml.load().get(hook_id)
        if hook is None:
            raise HookNotFound(hook_id)
        return hook

    def times(self, hook_id: str | None = None) -> Times:
        """created_at and updated_at per hook (all hooks, or one); empty for the YAML source."""
        if self.store is None:
            return {}
        sql = "SELECT id, created_at, updated_at FROM hookd_hooks"
        with self.store.db.transaction() as tx:
            rows = tx.fetchall(sql) if hook_id is None else tx.fetchall(sql + " WHERE id = ?", (hook_id,))
        return {str(row[0]): (timestamp(row[1]), timestamp(row[2])) for row in rows}


@contextmanager
def open_hooks(settings: Settings, *, write: bool = False) -> Iterator[Hooks]:
    """The configured hooks; with `write=True` a YAML source is refused with a `UsageError`."""
    subs = settings.subscriptions
    if subs.source != "db":
        assert subs.path is not None
        if write:
            raise UsageError(
                f"hooks come from the YAML file {subs.path} (subscriptions.source: yaml), "
                "so this command cannot change them; edit that file (then `kill -HUP` hookd), "
                "or set subscriptions.source: db to manage hooks from the command line"
            )
        yield Hooks(yaml=YamlStore(subs.path))
        return
    assert subs.url is not None
    with open_database(subs.url, create=write) as db:
        yield Hooks(store=None if db is None else SqlStore(db))


@contextmanager
def open_state(settings: Settings) -> Iterator[Database | None]:
    """The state database (delivery status and history) for reading; None when it was never created."""
    with open_database(settings.state.url, create=False) as db:
        yield db


def id_order(hook_id: str) -> tuple[int, int, str]:
    """Numeric ids first, in numeric order (2 before 10), then the others as text."""
    if hook_id.isascii() and hook_id.isdigit() and len(hook_id) <= 18:
        return (0, int(hook_id), hook_id)
    return (1, 0, hook_id)
