"""SqlStore with a key: every credential stored encrypted, on SQLite and PostgreSQL, and nothing in the
database's files or a pg_dump reveals one; wrong keys and altered values are refused, changing nothing."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.services import require_pg_dump

from hookd.cipher import KEY_BYTES, Key, Keyring, is_encrypted, stored_key_id
from hookd.errors import UndecryptableSecrets
from hookd.state.db import Database
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import InvalidHook
from hookd.subscriptions.sql_store import SECRET_COLUMNS, SqlStore

from .conftest import DatabaseOpener

URL = "https://hooks.example.com/in"


def new_key(source: str = "secrets.key_file") -> Key:
    return Key.from_bytes(os.urandom(KEY_BYTES), source)


def raw_rows(db: Database) -> list[dict[str, Any]]:
    """Every stored row as the database holds it (credentials as stored), ordered by id."""
    with db.transaction() as tx:
        return tx.fetchdicts("SELECT * FROM hookd_hooks ORDER BY id")


def credentials(store: SqlStore) -> dict[str, tuple[str, tuple[str, ...], str | None]]:
    """Each hook's secret, old secrets and basic-auth password, as the store reads them."""
    return {
        h.id: (h.secret, h.old_secrets, None if h.basic_auth is None else h.basic_auth.password) for h in store.list()
    }


def make_hooks(store: SqlStore) -> list[str]:
    """Three hooks: one with basic auth, one mid-rotation (a previous secret), one plain; their plaintexts."""
    first = store.create(account_id="acme", url=URL, events=["job"], basic_auth=BasicAuth("ops", "pw-first-a1b2c3d4"))
    second = store.create(account_id="acme", url=URL, events=["job"], secret="given-secret-second-0123456789")
    third = store.create(account_id="beta", url=URL, events=["cluster"])
    rotated = store.reset_secret(second.id, overlap=timedelta(hours=6))
    return [first.secret, "pw-first-a1b2c3d4", second.secret, rotated.secret, third.secret]


def assert_all_sealed(db: Database, key: Key) -> None:
    for row in raw_rows(db):
        for column in SECRET_COLUMNS:
            if row[column] is not None:
                assert is_encrypted(row[column]) and stored_key_id(row[column]) == key.id, (row["id"], column)


@pytest.fixture
def key() -> Key:
    """A fresh key, as `secrets.key_file`."""
    return new_key()


@pytest.fixture
def keyed(database: Database, key: Key) -> SqlStore:
    """A store on each SQL backend that encrypts with `key`."""
    return SqlStore(database, Keyring(key))


def test_every_write_stores_credentials_encrypted(keyed: SqlStore, key: Key) -> None:
    """create, update, reset_secret (with and without overlap) and import store only ciphertexts that read back."""
    hook = keyed.create(account_id="acme", url=URL, events=["job"], basic_auth=BasicAuth("ops", "pw-create-1234"))
    assert_all_sealed(keyed.db, key)
    keyed.update(hook.id, basic_auth=BasicAuth("ops", "pw-update-5678"), name="renamed")
    rotated = keyed.reset_secret(hook.id, overlap=timedelta(hours=1))
    assert_all_sealed(keyed.db, key)
    stored = raw_rows(keyed.db)[0]
    assert stored["previous_secret"] != stored["secret"]  # each value sealed for its own column
    assert keyed.get(hook.id) == rotated
    assert credentials(keyed) == {hook.id: (rotated.secret, (hook.secret,), "pw-update-5678")}
    imported = Hook(id="900", account_id="acme", url=URL, events=("job",), secret="imported-secret-abcdef0123")
    assert keyed.import_hooks([imported]) == 1
    final = keyed.reset_secret(hook.id)
    assert_all_sealed(keyed.db, key)
    assert credentials(keyed) == {hook.id: (final.secret, (), "pw-update-5678"), "900": (imported.secret, (), None)}
    assert keyed.load().get("900") == imported


def test_import_decides_the_overlap_in_python(keyed: SqlStore) -> None:
    """Re-importing a hook with its current secret keeps its rotation overlap; another secret ends it."""
    hook = keyed.create(account_id="acme", url=URL, events=["job"])
    rotated = keyed.reset_secret(hook.id, overlap=timedelta(hours=2))
    same = Hook(id=hook.id, account_id="acme", url=URL, events=("job", "cluster"), secret=rotated.secret)
    keyed.import_hooks([same])
    kept = keyed.get(hook.id)
    assert kept is not None and kept.old_secrets == (hook.secret,) and kept.events == ("job", "cluster")
    assert kept.old_secrets_expire_at == rotated.old_secrets_expire_at
    keyed.import_hooks([Hook(id=hook.id, account_id="acme", url=URL, events=("job",), secret="another-secret-0123")])
    ended = keyed.get(hook.id)
    assert ended is not None and ended.old_secrets == () and ended.secret == "another-secret-0123"
    assert raw_rows(keyed.db)[0]["previous_secret"] is None


def test_encrypting_plaintext_rows_loses_nothing(database: Database, key: Key) -> None:
    """Rows written without a key read with one, and `reseal()` encrypts every one of them, keeping each value."""
    plain = SqlStore(database)
    make_hooks(plain)
    before = credentials(plain)
    keyed = SqlStore(database, Keyring(key))
    assert credentials(keyed) == before  # plaintext still reads with a key configured
    census = keyed.reseal()
    assert (census.plaintext, census.changed, census.by_key) == (5, 5, {})
    assert_all_sealed(database, key)
    assert credentials(keyed) == before and len(keyed.list()) == 3
    again = keyed.reseal()
    assert (again.changed, again.by_key) == (0, {key.id: 5})  # idempotent


def test_rotating_the_key_keeps_every_credential(database: Database, key: Key) -> None:
    """reseal(new key) re-encrypts every value in one go; the new key alone then reads them all."""
    old_store = SqlStore(database, Keyring(key))
    make_hooks(old_store)
    before = credentials(old_store)
    fresh = new_key()
    census = old_store.reseal(fresh)
    assert (census.changed, census.by_key) == (5, {key.id: 5})
    assert_all_sealed(database, fresh)
    assert credentials(SqlStore(database, Keyring(fresh))) == before
    assert credentials(SqlStore(database, Keyring(fresh, [key]))) == before
    with pytest.raises(UndecryptableSecrets):
        SqlStore(database, Keyring(key)).list()


def test_a_wrong_key_is_refused_and_nothing_changes(database: Database, key: Key, make_hook: Any) -> None:
    """Every read and write refuses (UndecryptableSecrets, naming both key ids); the rows stay as they were."""
    make_hooks(SqlStore(database, Keyring(key)))
    before = raw_rows(database)
    wrong = new_key()
    for keyring in (Keyring(wrong), Keyring()):
        store = SqlStore(database, keyring)
        attempts = [
            store.load,
            store.list,
            lambda s=store: s.get("1"),
            lambda s=store: s.update("1", name="x"),
            lambda s=store: s.reset_secret("2", overlap=timedelta(hours=1)),
            lambda s=store: s.import_hooks([make_hook(id="2")]),
            lambda s=store: s.reseal(wrong),
            store.check_secrets,
        ]
        if keyring.encrypting:
            attempts.append(store.reseal)
        for attempt in attempts:
            with pytest.raises(UndecryptableSecrets) as info:
                attempt()
            assert info.value.key_ids == (key.id,)
            assert key.id in str(info.value)
            assert (wrong.id in str(info.value)) is keyring.encrypting
        assert raw_rows(database) == before


def test_a_value_moved_to_another_row_or_column_is_refused(keyed: SqlStore) -> None:
    """A ciphertext copied into another hook's row (or another column) does not become that hook's secret."""
    first = keyed.create(account_id="acme", url=URL, events=["job"])
    second = keyed.create(account_id="acme", url=URL, events=["job"], basic_auth=BasicAuth("u", "pw-0123456789"))
    stolen = raw_rows(keyed.db)[0]["secret"]
    with keyed.db.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_hooks SET secret = ? WHERE id = ?", (stolen, second.id))
    with pytest.raises(UndecryptableSecrets, match=f"hook {second.id} secret: the encrypted value does not decrypt"):
        keyed.load()
    with keyed.db.transaction(write=True) as tx:
        tx.execute(
            "UPDATE hookd_hooks SET secret = ?, basic_auth_password = ? WHERE id = ?", (stolen, stolen, first.id)
        )
    with pytest.raises(UndecryptableSecrets, match=f"hook {first.id} basic_auth_password"):
        keyed.get(first.id)


def test_a_plaintext_that_looks_encrypted_is_refused_without_a_key(store: SqlStore) -> None:
    """Without a key, a secret starting `enc:` would later be refused as undecryptable: refused now instead."""
    with pytest.raises(InvalidHook, match="secret: must not begin with 'enc:'"):
        store.create(account_id="acme", url=URL, events=["job"], secret="enc:v1:00000000:AAAA")


def test_the_sqlite_files_hold_no_plaintext_after_encrypting(sqlite_opener: DatabaseOpener, tmp_path: Path) -> None:
    """After reseal(), neither hookd.db nor its -wal and -shm contain a secret or password written before."""
    database = sqlite_opener()
    database.migrate()
    plaintexts = make_hooks(SqlStore(database))
    SqlStore(database).list()  # leave pooled connections open, as a running daemon would
    files = [tmp_path / name for name in ("hookd.db", "hookd.db-wal", "hookd.db-shm")]
    assert any(p.encode() in b"".join(f.read_bytes() for f in files if f.exists()) for p in plaintexts)
    census = SqlStore(database, Keyring(new_key())).reseal()
    assert census.compacted
    for path in files:
        if path.exists():
            content = path.read_bytes()
            leaked = [p for p in plaintexts if p.encode() in content]
            assert not leaked, f"{path.name} still holds {len(leaked)} plaintext value(s)"


def test_pg_dump_reveals_no_secret(postgresql_opener: DatabaseOpener, postgres_url: str) -> None:
    """A pg_dump of the schema after reseal() shows ciphertexts only, none of the plaintexts."""
    database = postgresql_opener()
    database.migrate()
    plaintexts = make_hooks(SqlStore(database))
    key = new_key()
    SqlStore(database, Keyring(key)).reseal()
    require_pg_dump()
    dump = subprocess.run(
        ["pg_dump", "--schema", str(database.schema), "--data-only", postgres_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr
    assert f"enc:v1:{key.id}:" in dump.stdout
    assert [p for p in plaintexts if p in dump.stdout] == []
