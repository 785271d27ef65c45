"""SqlStore: secret rotation with an overlap, and the operator-only allow_private, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookd.errors import ConfigError, HookNotFound
from hookd.state.migrations import LATEST_VERSION
from hookd.subscriptions.model import Hook
from hookd.subscriptions.sql_store import SqlStore

URL = "https://hooks.example.com/in"


def _create(store: SqlStore, **fields: object) -> Hook:
    return store.create(account_id="acme", url=URL, events=["job"], **fields)  # type: ignore[arg-type]


def _set_expiry(store: SqlStore, hook_id: str, moment: datetime) -> None:
    with store.db.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_hooks SET previous_secret_expires_at = ? WHERE id = ?", (moment, hook_id))


def test_reset_with_overlap_keeps_the_old_secret_valid(store: SqlStore) -> None:
    """reset_secret(overlap) returns a new secret and the replaced one as an old secret until the overlap ends."""
    hook = _create(store)
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # SQLite keeps milliseconds
    rotated = store.reset_secret(hook.id, overlap=timedelta(hours=24))
    assert rotated.secret != hook.secret and rotated.old_secrets == (hook.secret,)
    assert rotated.old_secrets_expire_at is not None
    assert before + timedelta(hours=24) <= rotated.old_secrets_expire_at <= datetime.now(UTC) + timedelta(hours=24)


def test_load_fills_old_secrets_while_the_overlap_lasts(store: SqlStore) -> None:
    """Hooks loaded during the overlap sign with the new secret first, then the old one."""
    hook = _create(store)
    rotated = store.reset_secret(hook.id, overlap=timedelta(minutes=30))
    loaded = store.load().get(hook.id)
    assert loaded is not None and loaded.signing_secrets() == (rotated.secret, hook.secret)


def test_load_ignores_an_expired_previous_secret(store: SqlStore) -> None:
    """Once the overlap has ended, load() gives the new secret alone."""
    hook = _create(store)
    store.reset_secret(hook.id, overlap=timedelta(minutes=30))
    _set_expiry(store, hook.id, datetime.now(UTC) - timedelta(seconds=1))
    loaded = store.load().get(hook.id)
    assert loaded is not None and loaded.old_secrets == ()


def test_reset_without_overlap_ends_any_overlap(store: SqlStore) -> None:
    """A reset without overlap leaves only the new secret valid, even during an earlier overlap."""
    hook = _create(store)
    store.reset_secret(hook.id, overlap=timedelta(hours=1))
    final = store.reset_secret(hook.id)
    assert final.old_secrets == () and store.get(hook.id) == final


def test_second_reset_during_an_overlap_keeps_only_the_secret_just_replaced(store: SqlStore) -> None:
    """Two resets in a row: the first secret is gone, the second is the old one, the third is current."""
    hook = _create(store)
    second = store.reset_secret(hook.id, overlap=timedelta(hours=1))
    third = store.reset_secret(hook.id, overlap=timedelta(hours=1))
    assert third.old_secrets == (second.secret,) and hook.secret not in third.signing_secrets()


def test_zero_overlap_is_no_overlap(store: SqlStore) -> None:
    """An overlap of zero behaves like no overlap."""
    hook = _create(store)
    assert store.reset_secret(hook.id, overlap=timedelta(0)).old_secrets == ()


def test_reset_with_overlap_unknown_id_raises_hook_not_found(store: SqlStore) -> None:
    """Rotating a hook that does not exist raises HookNotFound and changes nothing."""
    with pytest.raises(HookNotFound):
        store.reset_secret("404", overlap=timedelta(hours=1))


def test_update_keeps_the_overlap(store: SqlStore) -> None:
    """Changing other fields during an overlap keeps the old secret valid."""
    hook = _create(store)
    store.reset_secret(hook.id, overlap=timedelta(hours=1))
    updated = store.update(hook.id, name="renamed")
    assert updated.old_secrets == (hook.secret,)


def test_import_with_another_secret_ends_the_overlap(store: SqlStore) -> None:
    """Importing a hook with a different secret drops the old one: it belonged to another rotation."""
    hook = _create(store)
    store.reset_secret(hook.id, overlap=timedelta(hours=1))
    store.import_hooks([Hook(id=hook.id, account_id="acme", url=URL, events=("job",), secret="imported")])
    loaded = store.get(hook.id)
    assert loaded is not None and loaded.signing_secrets() == ("imported",)


def test_import_with_the_same_secret_keeps_the_overlap(store: SqlStore) -> None:
    """Re-importing a hook unchanged (export then import) keeps its overlap."""
    hook = _create(store)
    rotated = store.reset_secret(hook.id, overlap=timedelta(hours=1))
    store.import_hooks([Hook(id=hook.id, account_id="acme", url=URL, events=("job",), secret=rotated.secret)])
    loaded = store.get(hook.id)
    assert loaded is not None and loaded.old_secrets == (hook.secret,)


# -- allow_private ----------------------------------------------------------------------------------------------
def test_allow_private_round_trips(store: SqlStore) -> None:
    """create(allow_private=True) is stored and read back; update can turn it off."""
    hook = _create(store, allow_private=True)
    assert store.get(hook.id) == hook and hook.allow_private
    assert store.update(hook.id, allow_private=False).allow_private is False


def test_allow_private_must_be_a_boolean(store: SqlStore) -> None:
    """A non-boolean allow_private is refused like the other flags."""
    with pytest.raises(ConfigError, match="allow_private: must be true or false"):
        _create(store, allow_private="yes")


def test_import_carries_allow_private(store: SqlStore) -> None:
    """Imported hooks keep their allow_private."""
    store.import_hooks([Hook(id="7", account_id="a", url=URL, events=("job",), secret="s", allow_private=True)])
    loaded = store.get("7")
    assert loaded is not None and loaded.allow_private


def test_check_refuses_inside_the_transaction(store: SqlStore) -> None:
    """A caller's check that finds a problem refuses the write: nothing is created or changed."""
    hook = _create(store)
    with pytest.raises(ConfigError, match="nope"):
        store.update(hook.id, url="http://10.0.0.1/", check=lambda h: ["url: nope"] if "10.0" in h.url else [])
    assert store.get(hook.id) == hook
    with pytest.raises(ConfigError, match="nope"):
        _create(store, check=lambda _h: ["nope"])
    assert [h.id for h in store.list()] == [hook.id]


def test_schema_has_the_allow_private_migration(store: SqlStore) -> None:
    """Migration 3 adds allow_private; the store is at the latest version."""
    assert LATEST_VERSION >= 3 and store.db.version() == LATEST_VERSION
