"""API keys: the credential of an account admin (or of the operator) for the API and the console.

A key is `hookd_` and 43 URL-safe characters: 32 bytes (256 bits) from the OS CSPRNG. It is shown
once, when created; the database keeps only its SHA-256. A slow password hash (bcrypt, scrypt) would
add nothing here: it defends guessable secrets, and 256 random bits cannot be guessed, so one fast
hash is enough and keeps every request's lookup an index probe. A key belongs to one account, or
with `account_id` None to the operator (`--all-accounts`), who may manage any account. Revoking
keeps the row (for `hookd api-keys list`) and ends every console session signed in with the key.
This module owns the `hookd_api_keys` table: nothing else reads or writes it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hookd.state.db import Database, parse_utc

KEY_PREFIX = "hookd_"
KEY_BYTES = 32
#: `last_used_at` is written at most this often per key: one write per request would be wasted.
TOUCH_EVERY = timedelta(minutes=1)
_COLUMNS = "id, account_id, name, created_at, last_used_at, revoked_at"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without the key itself (only its hash is stored, and never leaves this module)."""

    id: str
    account_id: str | None
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def operator(self) -> bool:
        """An `--all-accounts` key: it may manage every account."""
        return self.account_id is None

    def may_manage(self, account_id: str) -> bool:
        return self.account_id is None or self.account_id == account_id


def hash_key(text: str) -> str:
    """The stored form of a key: hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create(db: Database, *, account_id: str | None, name: str = "") -> tuple[str, ApiKey]:
    """Store a new key; return its text (shown once, never stored) and its record."""
    text = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    key = ApiKey(id="k" + secrets.token_hex(6), account_id=account_id, name=name, created_at=datetime.now(UTC))
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO hookd_api_keys (id, key_hash, account_id, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (key.id, hash_key(text), key.account_id, key.name, key.created_at),
        )
    return text, key


def list_keys(db: Database, account_id: str | None = None) -> list[ApiKey]:
    """Every key (of one account, if given; operator keys are listed without a filter), oldest first."""
    where, params = ("", ()) if account_id is None else (" WHERE account_id = ?", (account_id,))
    with db.transaction() as tx:
        rows = tx.fetchdicts(f"SELECT {_COLUMNS} FROM hookd_api_keys{where} ORDER BY created_at, id", params)  # noqa: S608 (fixed text)
    return [_key(row) for row in rows]


def revoke(db: Database, key_id: str) -> ApiKey | None:
    """Revoke a key (idempotent) and end its console sessions; None when no key has this id."""
    now = datetime.now(UTC)
    with db.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id))
        tx.execute("DELETE FROM hookd_api_sessions WHERE key_id = ?", (key_id,))
        rows = tx.fetchdicts(f"SELECT {_COLUMNS} FROM hookd_api_keys WHERE id = ?", (key_id,))  # noqa: S608
    return _key(rows[0]) if rows else None


def lookup(db: Database, text: str) -> ApiKey | None:
    """The live (not revoked) key whose text this is, or None; notes when it was last used."""
    if not text.startswith(KEY_PREFIX):
        return None  # not a hookd key: no need to ask the database
    with db.transaction() as tx:
        rows = tx.fetchdicts(
            f"SELECT {_COLUMNS} FROM hookd_api_keys WHERE key_hash = ? AND revoked_at IS NULL",  # noqa: S608
            (hash_key(text),),
        )
    if not rows:
        return None
    key = _key(rows[0])
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
        with db.transaction(write=True) as tx:
            tx.execute("UPDATE hookd_api_keys SET last_used_at = ? WHERE id = ?", (now, key.id))
    return key


def get(db: Database, key_id: str) -> ApiKey | None:
    """The live key with this id (a console session's), or None once revoked."""
    with db.transaction() as tx:
        rows = tx.fetchdicts(
            f"SELECT {_COLUMNS} FROM hookd_api_keys WHERE id = ? AND revoked_at IS NULL",  # noqa: S608
            (key_id,),
        )
    return _key(rows[0]) if rows else None


def _moment(value: object) -> datetime | None:
    return None if value is None else parse_utc(value)


def _key(row: dict[str, Any]) -> ApiKey:
    created = _moment(row["created_at"])
    assert created is not None
    return ApiKey(
        id=str(row["id"]),
        account_id=None if row["account_id"] is None else str(row["account_id"]),
        name=str(row["name"] or ""),
        created_at=created,
        last_used_at=_moment(row["last_used_at"]),
        revoked_at=_moment(row["revoked_at"]),
    )
