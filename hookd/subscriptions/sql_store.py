"""Hooks in a SQL database (SQLite or PostgreSQL): the source the CLI and the admin API write.

Every write validates with the field rules every source shares (`rules.hook_problems`) and runs in
one transaction, so an invalid request changes nothing. Triggers bump `hookd_meta.revision` on every
change to the hooks table, even by hand-written SQL, which lets workers poll `revision()` cheaply and
reload only when it moves. Rows are read and written by column name (`sql_rows`), never by position.

With a key configured (`secrets.key_file`), the secret, the previous secret and the basic-auth
password are sealed by the `Keyring` on the way in (`table.row`, `reset_secret`, `import_hooks`) and
opened on the way out (`_opened`). A value no configured key opens raises `UndecryptableSecrets`
naming the key ids: it is never taken for a plaintext secret.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hookd.cipher import Census, Key, Keyring, UndecryptableError, is_encrypted
from hookd.errors import ConfigError, HookNotFound, StoreError
from hookd.events import normalize_account
from hookd.state.db import Database, Transaction
from hookd.subscriptions import sql_rows as table
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import HookCheck, InvalidHook, Problem, hook_problems
from hookd.subscriptions.sql_rows import SECRET_COLUMNS
from hookd.subscriptions.store import id_order, is_numeric_id

#: Random bytes in a generated signing secret (token_urlsafe encodes them as 43 characters).
SECRET_BYTES = 32
_IN_CHUNK = 500  # ids per `IN (...)` list: far below every SQLite build's parameter limit


class Unset(enum.Enum):
    """The type of `UNSET`: "field not given", so that `None` can mean "remove" (basic_auth)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def generate_secret() -> str:
    """A new signing secret: 32 random bytes from the OS CSPRNG, URL-safe text (shown to the admin)."""
    return secrets.token_urlsafe(SECRET_BYTES)


class SqlStore:
    """The `SubscriptionStore` over a migrated `Database`, plus the writes the CLI and the API need."""

    def __init__(self, db: Database, keyring: Keyring | None = None) -> None:
        self.db = db
        self.keyring = keyring if keyring is not None else Keyring()

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
            rows = tx.fetchdicts(table.SELECT)
        hooks = sorted((table.hook(row) for row in self._opened(rows)), key=lambda h: id_order(h.id))
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
            rows = tx.fetchdicts(table.SELECT + " WHERE id = ?", (hook_id,))
        return table.hook(self._opened(rows)[0]) if rows else None

    def list(self, account_id: str | None = None) -> builtins.list[Hook]:
        """Hooks (of one account, if given) ordered by id, numerically where the id is a number."""
        with self.db.transaction() as tx:
            if account_id is None:
                rows = tx.fetchdicts(table.SELECT)
            else:
                rows = tx.fetchdicts(table.SELECT + " WHERE account_id = ?", (account_id,))
        return sorted((table.hook(row) for row in self._opened(rows)), key=lambda h: id_order(h.id))

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
            url=table.strip(url),
            events=table.events_tuple(events),
            secret=generate_secret() if secret is None else secret,
            name=name,
            active=active,
            basic_auth=basic_auth,
            insecure_ssl=insecure_ssl,
            allow_private=allow_private,
        )
        problems = hook_problems(hook, require_id=hook_id is not None) or table.unsealed_problems(hook, self.keyring)
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
            tx.execute(table.INSERT, (*table.row(hook, self.keyring).values(), now, now))
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
            "url": url if url is UNSET else table.strip(url),
            "events": events if events is UNSET else table.events_tuple(events),
            "name": name,
            "active": active,
            "basic_auth": basic_auth,
            "insecure_ssl": insecure_ssl,
            "allow_private": allow_private,
        }
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as tx:
            lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""  # SQLite: BEGIN IMMEDIATE locked already
            rows = tx.fetchdicts(table.SELECT + " WHERE id = ?" + lock, (hook_id,))
            if not rows:
                raise HookNotFound(hook_id)
            hook = dataclasses.replace(
                table.hook(self._opened(rows)[0]), **{k: v for k, v in given.items() if v is not UNSET}
            )
            problems = hook_problems(hook) or table.unsealed_problems(hook, self.keyring)
            if check is not None and not problems:
                problems = check(hook)
            if problems:  # raising inside the transaction rolls it back: nothing changes
                raise InvalidHook(problems, f"hook {hook_id}")
            values = table.row(hook, self.keyring)
            tx.execute(table.UPDATE, (*(values[c] for c in table.UPDATABLE), now, hook.id))
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
            lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
            rows = tx.fetchdicts(f"SELECT secret FROM hookd_hooks WHERE id = ?{lock}", (hook_id,))  # noqa: S608
            if not rows:
                raise HookNotFound(hook_id)
            secret = self._seal(generate_secret(), hook_id, "secret")
            if overlap is not None and overlap > timedelta(0):
                # opened and sealed again: a value is bound to its column, so it cannot just be copied
                old = self._opened([{"id": hook_id, "secret": rows[0]["secret"]}])[0]["secret"]
                tx.execute(
                    "UPDATE hookd_hooks SET previous_secret = ?, previous_secret_expires_at = ?, secret = ?,"
                    " updated_at = ? WHERE id = ?",
                    (self._seal(old, hook_id, "previous_secret"), now + overlap, secret, now, hook_id),
                )
            else:
                tx.execute(
                    "UPDATE hookd_hooks SET secret = ?, previous_secret = NULL, previous_secret_expires_at = NULL,"
                    " updated_at = ? WHERE id = ?",
                    (secret, now, hook_id),
                )
            rows = tx.fetchdicts(table.SELECT + " WHERE id = ?", (hook_id,))
        return table.hook(self._opened(rows)[0])

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
            own = [str(p) for p in hook_problems(hook) or table.unsealed_problems(hook, self.keyring)]
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
            current = self._current_secrets(tx, [h.id for h in batch])
            values = [(*table.row(h, self.keyring).values(), *self._kept_overlap(h, current), now, now) for h in batch]
            tx.executemany(table.UPSERT, values)
            _reserve_ids(tx, [h.id for h in batch])
        return len(batch)

    def _current_secrets(self, tx: Transaction, hook_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored secret and overlap of the hooks with these ids that exist, opened (and locked)."""
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        rows: builtins.list[dict[str, Any]] = []
        for start in range(0, len(hook_ids), _IN_CHUNK):
            chunk = hook_ids[start : start + _IN_CHUNK]
            rows += tx.fetchdicts(
                "SELECT id, secret, previous_secret, previous_secret_expires_at FROM hookd_hooks"  # noqa: S608
                f" WHERE id IN ({', '.join('?' * len(chunk))}){lock}",
                chunk,
            )
        return {str(row["id"]): row for row in self._opened(rows)}

    def _kept_overlap(self, hook: Hook, current: Mapping[str, Mapping[str, Any]]) -> tuple[object, object]:
        """(previous_secret, its expiry) for an imported hook: an import that keeps the secret keeps a
        rotation overlap; one that changes it ends the overlap (the old secret belonged to another)."""
        row = current.get(hook.id)
        if row is None or row["secret"] != hook.secret or row["previous_secret"] is None:
            return None, None
        return self._seal(row["previous_secret"], hook.id, "previous_secret"), row["previous_secret_expires_at"]

    # -- secrets at rest -----------------------------------------------------------------------------
    def _seal(self, plaintext: str, hook_id: str, column: str) -> str:
        return self.keyring.seal(plaintext, hook_id=hook_id, column=column)

    def _opened(self, rows: Iterable[Mapping[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Copies of `rows` with every credential column opened; `UndecryptableSecrets` lists every
        value that no configured key opens (and nothing is returned)."""
        opened: builtins.list[dict[str, Any]] = []
        failures = []
        for row in rows:
            plain = dict(row)
            for column in SECRET_COLUMNS:
                value = plain.get(column)
                if isinstance(value, str):
                    try:
                        plain[column] = self.keyring.open(value, hook_id=str(row["id"]), column=column)
                    except UndecryptableError as exc:
                        failures.append(exc.failure)
            opened.append(plain)
        if failures:
            raise self.keyring.refusal(failures, self._where)
        return opened

    def census(self) -> Census:
        """How the stored credentials are kept (per key id, plaintext) and which do not open."""
        with self.db.transaction() as tx:
            return Census.of(self.keyring, tx.fetchdicts(table.SELECT_SECRETS), SECRET_COLUMNS)

    def check_secrets(self) -> Census:
        """The census, once sure that every stored credential opens (else `UndecryptableSecrets`)."""
        census = self.census()
        if census.failures:
            raise census.refusal(self._where)
        return census

    @property
    def _where(self) -> str:
        return f"hooks database {self.db.describe()}"

    def reseal(self, key: Key | None = None) -> Census:
        """Encrypt stored credentials in one transaction: each plaintext one with the current key
        (`key` None: `hookd secrets encrypt`), or every one with `key` (`hookd secrets rotate-key`).

        Everything is opened first: a value no configured key opens raises `UndecryptableSecrets` and
        nothing changes. `updated_at` is kept (the hooks did not change); the revision moves, so
        running daemons reload the same secrets. Then the database is compacted (`Database.compact`)
        so the plaintext does not linger in its files. Returns the census from before, with `changed`
        and `compacted` set.
        """
        target = self.keyring if key is None else Keyring(key)
        if target.current is None:
            raise ConfigError(["secrets.key_file: not set, so there is no key to encrypt with"], "secrets")
        with self.db.transaction(write=True) as tx:
            lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
            stored = tx.fetchdicts(table.SELECT_SECRETS + lock)
            census = Census.of(self.keyring, stored, SECRET_COLUMNS)
            for row, plain in zip(stored, self._opened(stored), strict=True):
                hook_id = str(row["id"])
                values = {
                    column: target.seal(plain[column], hook_id=hook_id, column=column)
                    for column in SECRET_COLUMNS
                    if isinstance(row[column], str) and not (key is None and is_encrypted(row[column]))
                }
                if values:
                    census.changed += len(values)
                    assignments = ", ".join(f"{c} = ?" for c in values)
                    tx.execute(f"UPDATE hookd_hooks SET {assignments} WHERE id = ?", (*values.values(), hook_id))  # noqa: S608
        census.compacted = self.db.compact()
        return census


def _revision(tx: Transaction) -> int:
    row = tx.fetchone("SELECT revision FROM hookd_meta WHERE id = 1")
    if row is None:
        raise StoreError("hookd_meta has no row: the schema was not migrated by hookd")
    return int(row[0])


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
    candidate = max([candidate, *(int(i) for i in ids if is_numeric_id(i))]) + 1
    tx.execute("UPDATE hookd_meta SET next_id = ? WHERE id = 1", (candidate + 1,))
    return str(candidate)


def _reserve_ids(tx: Transaction, hook_ids: Iterable[str]) -> None:
    """Move next_id past numeric ids chosen by the caller, so generated ids never collide with them."""
    numbers = [int(i) for i in hook_ids if is_numeric_id(i)]
    if numbers:
        top = max(numbers)
        tx.execute("UPDATE hookd_meta SET next_id = ? WHERE id = 1 AND next_id <= ?", (top + 1, top))
