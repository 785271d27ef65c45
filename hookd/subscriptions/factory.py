"""Open the subscription store the settings name (YAML file or SQL database)."""

from __future__ import annotations

from hookd.config import Settings
from hookd.state.db import Database
from hookd.subscriptions.sql_store import SqlStore
from hookd.subscriptions.store import SubscriptionStore
from hookd.subscriptions.yaml_store import YamlStore


def open_store(settings: Settings, *, migrate: bool = True) -> SubscriptionStore:
    """The configured source; a database is migrated to the current schema first (idempotent)."""
    subs = settings.subscriptions
    if subs.source == "db":
        assert subs.url is not None
        store = SqlStore(Database.from_url(subs.url))
        if migrate:
            store.db.migrate()
        return store
    assert subs.path is not None
    return YamlStore(subs.path)
