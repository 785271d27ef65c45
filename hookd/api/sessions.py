"""Console sessions: server-side, with a random id that only the browser's cookie holds.

- The cookie carries 32 random bytes; the database keeps their SHA-256 (`id_hash`), so a copy of the
  database does not let anyone ride a session.
- Sign-in always makes a new session and deletes the one the browser presented, if any: an id an
  attacker planted before sign-in (session fixation) never becomes signed in.
- A session ends at sign-out (its row is deleted), when its key is revoked, or `api.session_ttl_s`
  after sign-in, whatever the activity.
- Each session has its CSRF token; every console form carries it and every POST must return it
  (`csrf_ok`, constant-time). The sign-in form, before any session exists, uses a double-submit
  cookie instead (`SIGNIN_COOKIE`).
This module owns the `hookd_api_sessions` table.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookd.api import keys
from hookd.api.keys import ApiKey
from hookd.state.db import Database, parse_utc

COOKIE = "hookd_session"
SIGNIN_COOKIE = "hookd_signin"
ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in console session: its key, the account being managed (None: an operator key that
    has not picked one yet) and its CSRF token."""

    id_hash: str
    key: ApiKey
    account_id: str | None
    csrf_token: str
    expires_at: datetime


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A random token for a cookie or a form (256 bits)."""
    return secrets.token_urlsafe(ID_BYTES)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """True when a form returned the token it was given (constant-time comparison)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def start(db: Database, key: ApiKey, ttl: timedelta, *, replacing: str | None = None) -> tuple[str, Session]:
    """A new session for `key`; return the cookie value and the session.

    The session the browser presented (`replacing`), if any, is deleted, as are expired sessions.
    """
    cookie = new_token()
    now = datetime.now(UTC)
    session = Session(
        id_hash=_hash(cookie),
        key=key,
        account_id=key.account_id,
        csrf_token=new_token(),
        expires_at=now + ttl,
    )
    with db.transaction(write=True) as tx:
        if replacing:
            tx.execute("DELETE FROM hookd_api_sessions WHERE id_hash = ?", (_hash(replacing),))
        tx.execute("DELETE FROM hookd_api_sessions WHERE expires_at <= ?", (now,))
        tx.execute(
            "INSERT INTO hookd_api_sessions (id_hash, key_id, account_id, csrf_token, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (session.id_hash, key.id, session.account_id, session.csrf_token, now, session.expires_at),
        )
    return cookie, session


def find(db: Database, cookie: str | None) -> Session | None:
    """The live session this cookie names: not expired, signed in with a key that is not revoked."""
    if not cookie:
        return None
    with db.transaction() as tx:
        rows = tx.fetchdicts(
            "SELECT id_hash, key_id, account_id, csrf_token, expires_at FROM hookd_api_sessions WHERE id_hash = ?",
            (_hash(cookie),),
        )
    if not rows:
        return None
    row = rows[0]
    expires_at = parse_utc(row["expires_at"])
    if expires_at <= datetime.now(UTC):
        return None
    key = keys.get(db, str(row["key_id"]))
    if key is None:
        return None
    account = None if row["account_id"] is None else str(row["account_id"])
    return Session(str(row["id_hash"]), key, account, str(row["csrf_token"]), expires_at)


def choose_account(db: Database, session: Session, account_id: str) -> None:
    """Set the account an operator's session manages (account keys manage their own only)."""
    if not session.key.may_manage(account_id):
        raise PermissionError("this key may not manage that account")
    with db.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_api_sessions SET account_id = ? WHERE id_hash = ?", (account_id, session.id_hash))


def end(db: Database, cookie: str | None) -> None:
    """Sign out: the session's row goes, so the cookie is worthless even if it was copied."""
    if cookie:
        with db.transaction(write=True) as tx:
            tx.execute("DELETE FROM hookd_api_sessions WHERE id_hash = ?", (_hash(cookie),))
