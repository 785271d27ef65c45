"""Hooks in a SQL database (SQLite or PostgreSQL): the source the CLI, and later an API, can write.

Every write validates with the same rules as the YAML source and runs in one transaction, so an
invalid request changes nothing. Triggers bump `hookd_meta.revision` on every change to the hooks
table, even by hand-written SQL, which lets workers poll `revision()` cheaply and reload only when
it moves.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from hookd.errors import ConfigError, StoreError
from hookd.events import normalize_account
from hookd.state.db import Database, Row, Transaction, parse_utc
from hookd.subscriptions.matching import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.validation import events_problems, url_problem

#: Random bytes in a generated signing secret (token_urlsafe encodes them as 43 characters).
SECRET_BYTES = 32
# Column order of every SELECT; `_to_params` gives the first eleven. Queries are whole literals (values
# are always bound). The previous secret is written only by `reset_secret`.
_SELECT = (
    "SELECT id, account_id, name, url, events, active, secret, basic_auth_user, basic_auth_password, insecure_ssl,"
    " allow_private, previous_secret, previous_secret_expires_at FROM hookd_hooks"
)
_INSERT = (
    "INSERT INTO hookd_hooks (id, account_id, name, url, events, active, secret, basic_auth_user,"
    " basic_auth_password, insecure_ssl, allow_private, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# An import that changes the secret ends any rotation overlap: the old secret belonged to another one.
_UPSERT = _INSERT + (
    " ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, name = excluded.name, url = excluded.url,"
    " events = excluded.events, active = excluded.active,"
    " previous_secret = CASE WHEN hookd_hooks.secret = excluded.secret THEN hookd_hooks.previous_secret END,"
    " previous_secret_expires_at = CASE WHEN hookd_hooks.secret = excluded.secret"
    " THEN hookd_hooks.previous_secret_expires_at END,"
    " secret = excluded.secret, basic_auth_user = excluded.basic_auth_user,"
    " basic_auth_password = excluded.basic_auth_password, insecure_ssl = excluded.insecure_ssl,"
    " allow_private = excluded.allow_private, updated_at = excluded.updated_at"
)
_UPDATE = (
    "UPDATE hookd_hooks SET name = ?, url = ?, events = ?, active = ?, basic_auth_user = ?,"
    " basic_auth_password = ?, insecure_ssl = ?, allow_private = ?, updated_at = ? WHERE id = ?"
)
_MAX_NUMERIC_DIGITS = 18  # longer numeric ids would overflow BIGINT next_id; they sort as text


class HookNotFound(StoreError, KeyError):
    """No hook has this id. Also a `KeyError`, so mapping-style callers can catch the usual error."""

    def __init__(self, hook_id: str) -> None:
        self.hook_id = hook_id
        super().__init__(f"no hook with id {hook_id!r}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Unset(enum.Enum):
    """The type of `UNSET`: "field not given", so that `None` can mean "remove" (basic_auth)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET
#: A caller's extra rules for a hook about to be written (e.g. the network policy): one message per problem.
HookCheck = Callable[[Hook], list[str]]


def generate_secret() -> str:
    """A new signing secret: 32 random bytes from the OS CSPRNG, URL-safe text (shown to the admin)."""
    return secrets.token_urlsafe(SECRET_BYTES)


class SqlStore:
    """The `SubscriptionStore` over a migrated `Database`, plus the writes the CLI needs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> str:
        return f"sql:{self.db.describe()}"

    def load(self) -> HookSet:
        """Every hook, validated; raise `ConfigError` listing each bad row rather than return part."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[int, HookSet]:
        """The revision and the hooks read in one snapshot, so the pair is always consistent."""
        with self.db.transaction() as tx:
            revision = _revision(tx)
            rows = tx.fetchall(_SELECT)
        hooks = sorted((_to_hook(row) for row in rows), key=lambda h: _id_key(h.id))
        problems = [f"hook {h.id}: {p}" for h in hooks for p in _problems(h)]
        if problems:
            raise ConfigError(problems, self.describe())
        return revision, HookSet(hooks)

    def revision(self) -> int:
        """A counter that grows on every change to the hooks; poll it, reload when it moves."""
        with self.db.transaction() as tx:
            return _revision(tx)

    def get(self, hook_id: str) -> Hook | None:
        with self.db.transaction() as tx:
            row = tx.fetchone(_SELECT + " WHERE id = ?", (hook_id,))
        return None if row is None else _to_hook(row)

    def list(self, account_id: str | None = None) -> builtins.list[Hook]:
        """Hooks (of one account, if given) ordered by id, numerically where the id is a number."""
        with self.db.transaction() as tx:
            if account_id is None:
                rows = tx.fetchall(_SELECT)
            else:
                rows = tx.fetchall(_SELECT + " WHERE account_id = ?", (account_id,))
        return sorted((_to_hook(row) for row in rows), key=lambda h: _id_key(h.id))

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
        account admin (an API) must never pass it through from their request. `check` adds the
        caller's own rules (the CLI passes the network policy's URL check).
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
        problems = _problems(hook, check_id=hook_id is not None)
        if check is not None and not problems:
            problems = check(hook)
        if problems:
            raise ConfigError(problems, f"hook {hook_id}" if hook_id is not None else "new hook")
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as tx:
            if hook_id is None:
                hook = dataclasses.replace(hook, id=_allocate_id(tx))
            elif tx.fetchone("SELECT 1 FROM hookd_hooks WHERE id = ?", (hook.id,)) is not None:
                raise ConfigError([f"id: {hook.id!r} is already taken"], f"hook {hook.id}")
            else:
                _reserve_ids(tx, [hook.id])
            tx.execute(_INSERT, (*_to_params(hook), now, now))
        return hook

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
        with self.db.transaction(write=True) as tx:
            lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""  # SQLite: BEGIN IMMEDIATE locked already
            row = tx.fetchone(_SELECT + " WHERE id = ?" + lock, (hook_id,))
            if row is None:
                raise HookNotFound(hook_id)
            old = _to_hook(row)
            hook = dataclasses.replace(
                old,
                url=old.url if url is UNSET else _strip(url),
                events=old.events if events is UNSET else _events_tuple(events),
                name=old.name if name is UNSET else name,
                active=old.active if active is UNSET else active,
                basic_auth=old.basic_auth if basic_auth is UNSET else basic_auth,
                insecure_ssl=old.insecure_ssl if insecure_ssl is UNSET else insecure_ssl,
                allow_private=old.allow_private if allow_private is UNSET else allow_private,
            )
            problems = _problems(hook)
            if check is not None and not problems:
                problems = check(hook)
            if problems:  # raising inside the transaction rolls it back: nothing changes
                raise ConfigError(problems, f"hook {hook_id}")
            params = _to_params(hook)
            tx.execute(_UPDATE, (*params[2:6], *params[7:], datetime.now(UTC), hook.id))
        return hook

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
            row = tx.fetchone(_SELECT + " WHERE id = ?", (hook_id,))
        assert row is not None
        return _to_hook(row)

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
            own = _problems(hook)
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
            tx.executemany(_UPSERT, [(*_to_params(h), now, now) for h in batch])
            _reserve_ids(tx, [h.id for h in batch])
        return len(batch)


def _revision(tx: Transaction) -> int:
    row = tx.fetchone("SELECT revision FROM hookd_meta WHERE id = 1")
    if row is None:
        raise StoreError("hookd_meta has no row: the schema was not migrated by hookd")
    return int(row[0])


def _is_number(hook_id: str) -> bool:
    return hook_id.isascii() and hook_id.isdigit() and len(hook_id) <= _MAX_NUMERIC_DIGITS


def _id_key(hook_id: str) -> tuple[int, int, str]:
    """Numeric ids first, in numeric order (2 before 10), then the others as text."""
    return (0, int(hook_id), hook_id) if _is_number(hook_id) else (1, 0, hook_id)


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


def _problems(hook: Hook, *, check_id: bool = True) -> builtins.list[str]:
    """Every reason `hook` may not be stored, one message per problem, field name first.

    Types are checked too: callers (CLI, an API) may pass values straight from user input.
    """
    problems: builtins.list[str] = []
    if check_id and not _text(hook.id):
        problems.append("id: must be a non-empty string")
    if not _text(hook.account_id):
        problems.append("account_id: required, a non-empty string")
    if (why := url_problem(hook.url)) is not None:
        problems.append(f"url: {why}")
    problems.extend(f"events: {p}" for p in events_problems(hook.events))
    auth = hook.basic_auth
    raw: dict[str, object] = {  # typed as object: the annotations promise what we are here to check
        "name": hook.name,
        "active": hook.active,
        "insecure_ssl": hook.insecure_ssl,
        "allow_private": hook.allow_private,
        "password": "" if auth is None else auth.password,
    }
    if not isinstance(raw["name"], str):
        problems.append("name: must be a string")
    problems.extend(
        f"{key}: must be true or false"
        for key in ("active", "insecure_ssl", "allow_private")
        if type(raw[key]) is not bool
    )
    if auth is not None and (not _text(auth.username) or ":" in auth.username):
        problems.append("basic_auth.username: required, a string without ':'")
    if not isinstance(raw["password"], str):
        problems.append("basic_auth.password: must be a string")
    if not _text(hook.secret):
        problems.append("secret: must be a non-empty string")
    return problems


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _strip(value: object) -> str:
    return value.strip() if isinstance(value, str) else value  # type: ignore[return-value]  # validated after


def _events_tuple(events: object) -> tuple[str, ...]:
    """A list or tuple as a tuple; anything else as () so validation reports "must be a non-empty list"."""
    if isinstance(events, list | tuple):
        return tuple(events)
    return ()


def _to_params(hook: Hook) -> tuple[object, ...]:
    """The hook's column values in `_INSERT` order (the first eleven of `_SELECT`)."""
    auth = hook.basic_auth
    return (
        hook.id,
        hook.account_id,
        hook.name,
        hook.url,
        json.dumps(builtins.list(hook.events)),
        hook.active,
        hook.secret,  # index 6: the one column `update` never writes
        None if auth is None else auth.username,
        None if auth is None else auth.password,
        hook.insecure_ssl,
        hook.allow_private,
    )


def _to_hook(row: Row, now: datetime | None = None) -> Hook:
    """A row as a `Hook`, leniently: a malformed `events` value reads as () and fails validation.

    A previous secret whose overlap has not ended yet becomes `old_secrets`; an expired one is ignored.
    """
    hook_id, account, name, url, events, active, secret, user, password, insecure, private, previous, until = row
    expiry = _overlap_end(previous, until, now or datetime.now(UTC))
    try:
        decoded = json.loads(events) if isinstance(events, str) else None
    except ValueError:
        decoded = None
    return Hook(
        id=str(hook_id),
        account_id=str(account),
        url=url,
        events=_events_tuple(decoded),
        secret=secret,
        name=name or "",
        active=bool(active),
        basic_auth=None if user is None else BasicAuth(user, password or ""),
        insecure_ssl=bool(insecure),
        allow_private=bool(private),
        old_secrets=() if expiry is None else (previous,),
        old_secrets_expire_at=expiry,
    )


def _overlap_end(previous: object, until: object, now: datetime) -> datetime | None:
    """When the rotation overlap of a row ends, if it has a previous secret and the overlap lasts."""
    if not isinstance(previous, str) or not previous or until is None:
        return None
    try:
        expiry = parse_utc(until)
    except (TypeError, ValueError):
        return None  # a hand-written, unreadable expiry: treat the overlap as over rather than endless
    return expiry if expiry > now else None
