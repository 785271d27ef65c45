"""Open the subscription store the settings name (YAML file or SQL database)."""

from __future__ import annotations

from hookd.cipher import Keyring
from hookd.config import Settings
from hookd.state.db import Database, sqlite_file_missing
from hookd.state.migrations import LATEST_VERSION
from hookd.subscriptions.sql_store import SqlStore
from hookd.subscriptions.store import MemoryStore, SubscriptionStore
from hookd.subscriptions.yaml_store import YamlStore


def open_store(settings: Settings, *, create: bool = True, migrate: bool = True) -> SubscriptionStore:
    """The configured source. A database is brought to the current schema first (idempotent).

    `create=False` (read-only commands): a SQLite file that does not exist yet is not created; it
    reads as an empty store, because nothing was recorded there yet. `migrate=False` reads a database
    as it is (`hookd check-config`). A database store seals and opens credentials with the keys of
    `secrets.*` (`keyring_for`).
    """
    subs = settings.subscriptions
    if subs.source != "db":
        assert subs.path is not None
        return YamlStore(subs.path)
    assert subs.url is not None
    if not create and sqlite_file_missing(subs.url):
        return MemoryStore(revisioned=False)
    keyring = keyring_for(settings)
    return open_sql_store(subs.url, keyring) if migrate else SqlStore(Database.from_url(subs.url), keyring)


def keyring_for(settings: Settings) -> Keyring:
    """The keys of `secrets.key_file` and `secrets.old_key_files` (none when unset)."""
    return Keyring.from_files(settings.secrets.key_file, settings.secrets.old_key_files)


def open_sql_store(url: str, keyring: Keyring) -> SqlStore:
    """The SQL store at `url`, migrated to the current schema when it is behind (a schema newer than
    this hookd knows raises `StoreError`). `keyring` is required: a caller that forgot the configured
    key would write secrets in plaintext."""
    db = Database.from_url(url)
    if db.version() != LATEST_VERSION:
        db.migrate()
    return SqlStore(db, keyring)
