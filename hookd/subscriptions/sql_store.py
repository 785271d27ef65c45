"""Hooks in a SQL database (SQLite or PostgreSQL): the source the CLI and the admin API write.

Every write validates with the field rules every source shares (`rules.hook_problems`) and runs in
one transaction, so an invalid request changes nothing. Triggers bump `hookd_meta.revision` on every
change to the hooks table, even by hand-written SQL, which lets workers poll `revision()` cheaply and
reload only when it moves. Rows are read and written by column name (`_COLUMNS`), never by position.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hookd.errors import ConfigError, HookNotFound, StoreError
from hookd.events import normalize_account
from hookd.state.db import Database, Transaction, parse_utc
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import HookCheck, InvalidHook, Problem, hook_problems
from hookd.subscriptions.store import id_order

#: Random bytes in a generated signing secret (token_urlsafe encodes them as 43 characters).
SECRET_BYTES = 32
#: The hook's own columns, written from a `Hook` (`_row`) and read back into one (`_hook`).
_FIELDS = (
    "id",
    "account_id",
    "name",
    "url",
    "events",
    "active",
    "secret",
    "basic_auth_user",
    "basic_auth_password",
    "insecure_ssl",
    "allow_private",
)
#: Every column a read needs: the fields, the rotation overlap (written by `reset_secret` only) and times.
_COLUMNS = (*_FIELDS, "previous_secret", "previous_secret_expires_at", "created_at", "updated_at")
#: What `update` may change: everything but the id, the account and the secret (`reset_secret`).
_UPDATABLE = tuple(c for c in _FIELDS if c not in ("id", "account_id", "secret"))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM hookd_hooks"  # noqa: S608 (fixed column names only)
_INSERT = (
    f"INSERT INTO hookd_hooks ({', '.join(_FIELDS)}, created_at, updated_at)"  # noqa: S608 (fixed text)
    f" VALUES ({', '.join('?' * (len(_FIELDS) + 2))})"
)
# An import that changes the secret ends any rotation overlap: the old secret belonged to another one.
_UPSERT = _INSERT + (
    " ON CONFLICT (id) DO UPDATE SET"
    " previous_secret = CASE WHEN hookd_hooks.secret = excluded.secret THEN hookd_hooks.previous_secret END,"
    " previous_secret_expires_at = CASE WHEN hookd_hooks.secret = excluded.secret"
    " THEN hookd_hooks.previous_secret_expires_at END, "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_FIELDS[1:], "updated_at"))
)
_UPDATE = f"UPDATE hookd_hooks SET {', '.join(f'{c} = ?' for c in _UPDATABLE)}, updated_at = ? WHERE id = ?"  # noqa: S608
_MAX_NUMERIC_DIGITS = 18  # longer numeric ids would overflow BIGINT next_id; they sort as text


class Unset(enum.Enum):
    """The type of `UNSET`: "field not given", so that `None` can mean "remove" (basic_auth)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def generate_secret() -> str:
    """A new signing secret: 32 random bytes from the OS CSPRNG, URL-safe text (shown to the admin)."""
    return secrets.token_urlsafe(SECRET_BYTES)


class SqlStore:
    """The `SubscriptionStore` over a migrated `Database`, plus the writes the CLI and the API need."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the SubscriptionStore protocol --------------------------------------------------------------
    def describe(self) -> str:
        return f"sql:{self.db.describe()}"

    def load(self) -> HookSet:
        """Every hook, validated; raise `ConfigError` listing each bad row rather than return part."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[int, HookSet]:
        """The revision and the hooks read in one snapshot, so the pair is always consistent."""
        with self.db.transaction() as tx:
            revision = _revision(tx)
            rows = tx.fetchdicts(_SELECT)
        hooks = sorted((_hook(row) for row in rows), key=lambda h: id_order(h.id))
        problems = [f"hook {h.id}: {p}" for h in hooks for p in hook_problems(h)]
        if problems:
            raise ConfigError(problems, self.describe())
        return revision, HookSet(hooks)

    def revision(self) -> int:
        """A counter that grows on every change to the hooks; poll it, reload when it moves."""
        with self.db.transaction() as tx:
            return _revision(tx)

    def check(self) -> None:
        self.revision()  # cheap: one row, and it proves the schema is there

    def get(self, hook_id: str) -> Hook | None:
        with self.db.transaction() as tx:
            rows = tx.fetchdicts(_SELECT + " WHERE id = ?", (hook_id,))
        return _hook(rows[0]) if rows else None

    def list(self, account_id: str | None = None) -> builtins.list[Hook]:
        """Hooks (of one account, if given) ordered by id, numerically where the id is a number."""
        with self.db.transaction() as tx:
            if account_id is None:
                rows = tx.fetchdicts(_SELECT)
            else:
                rows = tx.fetchdicts(_SELECT + " WHERE account_id = ?", (account_id,))
        return sorted((_hook(row) for row in rows), key=lambda h: id_order(h.id))

    def deactivate(self, hook_id: str) -> bool:
        """Store the hook as inactive (hookd disabled it): every worker and the admin see it."""
        try:
            self.update(hook_id, active=False)
        except HookNotFound:
            return False
        return True

    # -- writes --------------------------------------------------------------------------------------
    def create(
        self,
        *,
        account_id: str,
        url: str,
        events: Sequence[str],
        name: str = "",
        active: bool = True,
        basic_auth: BasicAuth | None = None,
        insecure_ssl: bool = False,
        secret: str | None = None,
        hook_id: str | None = None,
        allow_private: bool = False,
        check: HookCheck | None = None,
    ) -> Hook:
        """Add a hook; the id is the next free integer and the secret is generated unless given.

        `allow_private` is the operator-only override of the SSRF guard: callers acting for an
        account admin (the API) must never pass it through from their request. `check` adds the
        caller's own rules (the CLI and the API pass the network policy's URL check).
        """
        hook = Hook(
            id=(hook_id.strip() if isinstance(hook_id, str) else hook_id) or "",
            account_id=normalize_account(account_id) or "",
            url=_strip(url),
            events=_events_tuple(events),
            secret=generate_secret() if secret is None else secret,
            name=name,
            active=active,
            basic_auth=basic_auth,
            insecure_ssl=insecure_ssl,
            allow_private=allow_private,
        )
        problems = hook_problems(hook, require_id=hook_id is not None)
        if check is not None and not problems:
            problems = check(hook)
        if problems:
            raise InvalidHook(problems, f"hook {hook_id}" if hook_id is not None else "new hook")
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as tx:
            if hook_id is None:
                hook = dataclasses.replace(hook, id=_allocate_id(tx))
            elif tx.fetchone("SELECT 1 FROM hookd_hooks WHERE id = ?", (hook.id,)) is not None:
                raise InvalidHook([Problem("id", f"{hook.id!r} is already taken")], f"hook {hook.id}")
            else:
                _reserve_ids(tx, [hook.id])
            tx.execute(_INSERT, (*_row(hook).values(), now, now))
        return dataclasses.replace(hook, created_at=now, updated_at=now)

    def update(
        self,
        hook_id: str,
        *,
        url: str | Unset = UNSET,
        events: Sequence[str] | Unset = UNSET,
        name: str | Unset = UNSET,
        active: bool | Unset = UNSET,
        basic_auth: BasicAuth | Unset | None = UNSET,
        insecure_ssl: bool | Unset = UNSET,
        allow_private: bool | Unset = UNSET,
        check: HookCheck | None = None,
    ) -> Hook:
        """Change only the given fields (events are replaced as a whole); `basic_auth=None` removes it.

        `allow_private` is operator-only, as in `create`. `check` runs on the changed hook inside
        the transaction, so it judges exactly what is written.
        """
        given: dict[str, Any] = {
            "url": url if url is UNSET else _strip(url),
            "events": events if events is UNSET else _events_tuple(events),
            "name": name,
            "active": active,
            "basic_auth": basic_auth,
            "insecure_ssl": insecure_ssl,
            "allow_private": allow_private,
        }
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as tx:
            lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""  # SQLite: BEGIN IMMEDIATE locked already
            rows = tx.fetchdicts(_SELECT + " WHERE id = ?" + lock, (hook_id,))
            if not rows:
                raise HookNotFound(hook_id)
            hook = dataclasses.replace(_hook(rows[0]), **{k: v for k, v in given.items() if v is not UNSET})
            problems = hook_problems(hook)
            if check is not None and not problems:
                problems = check(hook)
            if problems:  # raising inside the transaction rolls it back: nothing changes
                raise InvalidHook(problems, f"hook {hook_id}")
            values = _row(hook)
            tx.execute(_UPDATE, (*(values[c] for c in _UPDATABLE), now, hook.id))
        return dataclasses.replace(hook, updated_at=now)

    def delete(self, hook_id: str) -> bool:
        """Remove a hook and its per-event status; False when there was no such hook.

        Delivery history (attempts, deliveries) is kept: it answers "what did we send" after the fact.
        """
        with self.db.transaction(write=True) as tx:
            deleted = tx.execute("DELETE FROM hookd_hooks WHERE id = ?", (hook_id,))
            tx.execute("DELETE FROM hookd_delivery_status WHERE hook_id = ?", (hook_id,))
        return deleted > 0

    def reset_secret(self, hook_id: str, overlap: timedelta | None = None) -> Hook:
        """Give the hook a new generated secret.

        Without `overlap` the old secret stops working at once. With one, the secret being replaced
        stays valid that long: deliveries carry a `webhook-signature` for each secret, so receivers
        can move to the new one at their own pace. A reset during an overlap ends it: only the
        secret just replaced stays valid, never two old ones.
        """
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as tx:
            if overlap is not None and overlap > timedelta(0):
                changed = tx.execute(
                    "UPDATE hookd_hooks SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?,"
                    " updated_at = ? WHERE id = ?",
                    (now + overlap, generate_secret(), now, hook_id),
                )
            else:
                changed = tx.execute(
                    "UPDATE hookd_hooks SET secret = ?, previous_secret = NULL, previous_secret_expires_at = NULL,"
                    " updated_at = ? WHERE id = ?",
                    (generate_secret(), now, hook_id),
                )
            if changed == 0:
                raise HookNotFound(hook_id)
            rows = tx.fetchdicts(_SELECT + " WHERE id = ?", (hook_id,))
        return _hook(rows[0])

    def import_hooks(self, hooks: Iterable[Hook], check: HookCheck | None = None) -> int:
        """Insert or replace hooks by id, all in one transaction; return how many were written.

        Every hook is validated first (with `check` too, if given); any problem raises `ConfigError`
        listing all of them and nothing is written. Existing hooks keep their `created_at`.
        """
        batch = builtins.list(hooks)
        problems: builtins.list[str] = []
        seen: dict[str, int] = {}
        for index, hook in enumerate(batch):
            where = f"hooks[{index}] (id {hook.id!r})"
            own = [str(p) for p in hook_problems(hook)]
            problems.extend(f"{where}: {p}" for p in own or (check(hook) if check is not None else []))
            if hook.id in seen:
                problems.append(f"{where}: duplicate id (also hooks[{seen[hook.id]}])")
            seen.setdefault(hook.id, index)
        if problems:
            raise ConfigError(problems, "import")
        if not batch:
            return 0
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as tx:
            tx.executemany(_UPSERT, [(*_row(h).values(), now, now) for h in batch])
            _reserve_ids(tx, [h.id for h in batch])
        return len(batch)


def _revision(tx: Transaction) -> int:
    row = tx.fetchone("SELECT revision FROM hookd_meta WHERE id = 1")
    if row is None:
        raise StoreError("hookd_meta has no row: the schema was not migrated by hookd")
    return int(row[0])


def _is_number(hook_id: str) -> bool:
    return hook_id.isascii() and hook_id.isdigit() and len(hook_id) <= _MAX_NUMERIC_DIGITS


def _allocate_id(tx: Transaction) -> str:
    """The next integer id. The UPDATE locks the meta row, so concurrent creators get distinct ids."""
    row = tx.fetchone("UPDATE hookd_meta SET next_id = next_id + 1 WHERE id = 1 RETURNING next_id - 1")
    if row is None:
        raise StoreError("hookd_meta has no row: the schema was not migrated by hookd")
    candidate = int(row[0])
    if tx.fetchone("SELECT 1 FROM hookd_hooks WHERE id = ?", (str(candidate),)) is None:
        return str(candidate)
    # Taken, e.g. by a row inserted with plain SQL: continue after the highest numeric id in use.
    ids = [hook_id for (hook_id,) in tx.fetchall("SELECT id FROM hookd_hooks")]
    candidate = max([candidate, *(int(i) for i in ids if _is_number(i))]) + 1
    tx.execute("UPDATE hookd_meta SET next_id = ? WHERE id = 1", (candidate + 1,))
    return str(candidate)


def _reserve_ids(tx: Transaction, hook_ids: Iterable[str]) -> None:
    """Move next_id past numeric ids chosen by the caller, so generated ids never collide with them."""
    numbers = [int(i) for i in hook_ids if _is_number(i)]
    if numbers:
        top = max(numbers)
        tx.execute("UPDATE hookd_meta SET next_id = ? WHERE id = 1 AND next_id <= ?", (top + 1, top))


def _strip(value: object) -> str:
    return value.strip() if isinstance(value, str) else value  # type: ignore[return-value]  # validated after


def _events_tuple(events: object) -> tuple[str, ...]:
    """A list or tuple as a tuple; anything else as () so validation reports "must be a non-empty list"."""
    if isinstance(events, list | tuple):
        return tuple(events)
    return ()


def _row(hook: Hook) -> dict[str, object]:
    """The hook's own column values, by column name, in `_FIELDS` order."""
    auth = hook.basic_auth
    return {
        "id": hook.id,
        "account_id": hook.account_id,
        "name": hook.name,
        "url": hook.url,
        "events": json.dumps(builtins.list(hook.events)),
        "active": hook.active,
        "secret": hook.secret,
        "basic_auth_user": None if auth is None else auth.username,
        "basic_auth_password": None if auth is None else auth.password,
        "insecure_ssl": hook.insecure_ssl,
        "allow_private": hook.allow_private,
    }


def _hook(row: Mapping[str, Any], now: datetime | None = None) -> Hook:
    """A row as a `Hook`, leniently: a malformed `events` value reads as () and fails validation.

    A previous secret whose overlap has not ended yet becomes `old_secrets`; an expired one is ignored.
    """
    previous = row["previous_secret"]
    expiry = _overlap_end(previous, row["previous_secret_expires_at"], now or datetime.now(UTC))
    try:
        events = json.loads(row["events"]) if isinstance(row["events"], str) else None
    except ValueError:
        events = None
    user = row["basic_auth_user"]
    return Hook(
        id=str(row["id"]),
        account_id=str(row["account_id"]),
        url=row["url"],
        events=_events_tuple(events),
        secret=row["secret"],
        name=row["name"] or "",
        active=bool(row["active"]),
        basic_auth=None if user is None else BasicAuth(user, row["basic_auth_password"] or ""),
        insecure_ssl=bool(row["insecure_ssl"]),
        allow_private=bool(row["allow_private"]),
        old_secrets=() if expiry is None else (previous,),
        old_secrets_expire_at=expiry,
        created_at=_moment(row["created_at"]),
        updated_at=_moment(row["updated_at"]),
    )


def _moment(value: object) -> datetime | None:
    return None if value is None else parse_utc(value)


def _overlap_end(previous: object, until: object, now: datetime) -> datetime | None:
    """When the rotation overlap of a row ends, if it has a previous secret and the overlap lasts."""
    if not isinstance(previous, str) or not previous or until is None:
        return None
    try:
        expiry = parse_utc(until)
    except (TypeError, ValueError):
        return None  # a hand-written, unreadable expiry: treat the overlap as over rather than endless
    return expiry if expiry > now else None
