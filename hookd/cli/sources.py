"""What the commands open: the hooks (the configured store), the state database, a broker connection
(`hookd.targeted.broker_connection`, shared with the admin API).

Each is a context manager that closes what it opened. Reading never creates or migrates a database:
a SQLite file that does not exist yet, or a database never migrated, reads as "nothing recorded", and
a schema this hookd does not know (older or newer) is refused in one line (`Database.require_schema`):
a newer CLI must not upgrade a database that older workers share. The YAML file is the source of truth when
`subscriptions.source` is `yaml`: write commands refuse (exit 2) instead of writing somewhere the
daemon never reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hookd.config import Settings
from hookd.errors import UsageError
from hookd.state.db import Database, sqlite_file_missing
from hookd.subscriptions.factory import keyring_for, open_sql_store, open_store
from hookd.subscriptions.sql_store import SqlStore
from hookd.subscriptions.store import MemoryStore, SubscriptionStore
from hookd.targeted import broker_connection

__all__ = ["broker_connection", "open_hooks", "open_state", "open_writable"]


@contextmanager
def open_hooks(settings: Settings) -> Iterator[SubscriptionStore]:
    """The configured hooks, for reading (never migrated)."""
    store = open_store(settings, create=False, migrate=False)
    try:
        if isinstance(store, SqlStore) and not store.db.require_schema():
            store.db.close()
            store = MemoryStore(revisioned=False)
        yield store
    finally:
        if isinstance(store, SqlStore):
            store.db.close()


@contextmanager
def open_writable(settings: Settings) -> Iterator[SqlStore]:
    """The hooks database, for writing (created and migrated if needed); a YAML source is refused."""
    subs = settings.subscriptions
    if subs.source != "db" or subs.url is None:
        raise UsageError(
            f"hooks come from the YAML file {subs.path} (subscriptions.source: yaml), "
            "so this command cannot change them; edit that file (then `kill -HUP` hookd), "
            "or set subscriptions.source: db to manage hooks from the command line"
        )
    store = open_sql_store(subs.url, keyring_for(settings))
    try:
        yield store
    finally:
        store.db.close()


@contextmanager
def open_state(settings: Settings) -> Iterator[Database | None]:
    """The state database (delivery status and history) for reading; None when it was never created."""
    url = settings.state.url
    if sqlite_file_missing(url):
        yield None
        return
    with Database.from_url(url) as db:
        yield db if db.require_schema() else None
