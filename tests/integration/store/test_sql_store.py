"""SqlStore writes on SQLite and PostgreSQL: ids, secrets, partial updates, validation, revision."""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from hookd.errors import ConfigError, HookNotFound, StoreError
from hookd.state.db import Database, _migrate
from hookd.state.migrations import MIGRATIONS
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.sql_store import SqlStore

HookFactory = Callable[..., Hook]
URL = "https://hooks.example.com/in"


def _raw_insert(db: Database, hook_id: str, url: str = URL) -> None:
    """Insert a hook with plain SQL, as an operator would, bypassing SqlStore."""
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO hookd_hooks (id, account_id, url, events, secret) VALUES (?, 'acme', ?, '[\"job\"]', 's')",
            (hook_id, url),
        )


def test_create_generates_an_integer_id_and_a_secret(store: SqlStore) -> None:
    """Without id or secret, create assigns the next integer id and a random secret."""
    first = store.create(account_id="acme", url=URL, events=["job"])
    second = store.create(account_id="acme", url=URL, events=["job"])
    assert (first.id, second.id) == ("1", "2")
    assert first.secret and first.secret != second.secret
    assert store.get("1") == first


def test_create_keeps_a_given_id_and_secret(store: SqlStore) -> None:
    """A caller-chosen id and secret are stored as given."""
    hook = store.create(account_id="acme", url=URL, events=["job"], hook_id="ext-7", secret="given")
    assert (hook.id, hook.secret) == ("ext-7", "given")
    assert store.get("ext-7") == hook


def test_create_with_a_taken_id_is_refused(store: SqlStore) -> None:
    """Creating a hook under an existing id raises ConfigError and keeps the existing hook."""
    original = store.create(account_id="acme", url=URL, events=["job"], hook_id="5")
    with pytest.raises(ConfigError, match="already taken"):
        store.create(account_id="other", url=URL, events=["cluster"], hook_id="5")
    assert store.get("5") == original


def test_generated_ids_skip_ids_inserted_by_sql(store: SqlStore) -> None:
    """A generated id never collides with a numeric id someone inserted directly."""
    _raw_insert(store.db, "1")
    _raw_insert(store.db, "2")
    assert store.create(account_id="acme", url=URL, events=["job"]).id == "3"


def test_generated_ids_follow_imported_numeric_ids(store: SqlStore, make_hook: HookFactory) -> None:
    """After importing id 41, the next generated id is 42."""
    store.import_hooks([make_hook(id="41"), make_hook(id="web-x")])
    assert store.create(account_id="acme", url=URL, events=["job"]).id == "42"


def test_concurrent_creates_get_distinct_ids(store: SqlStore) -> None:
    """Threads creating hooks at once each get their own id; none is lost."""
    with ThreadPoolExecutor(4) as pool:
        hooks = list(pool.map(lambda _: store.create(account_id="acme", url=URL, events=["job"]), range(12)))
    assert sorted(int(h.id) for h in hooks) == list(range(1, 13))
    assert len(store.list()) == 12


def test_get_unknown_id_returns_none(store: SqlStore) -> None:
    """get() of an id that does not exist is None, not an error."""
    assert store.get("404") is None


def test_list_orders_ids_numerically_then_as_text(store: SqlStore, make_hook: HookFactory) -> None:
    """Numeric ids sort as numbers (2 before 10), other ids after them as text."""
    store.import_hooks([make_hook(id=i) for i in ("10", "b", "2", "a", "9")])
    assert [h.id for h in store.list()] == ["2", "9", "10", "a", "b"]


def test_list_filters_by_account(store: SqlStore, make_hook: HookFactory) -> None:
    """list(account_id) returns only that account's hooks."""
    store.import_hooks([make_hook(id="1"), make_hook(id="2", account_id="globex"), make_hook(id="3")])
    assert [h.id for h in store.list("acme")] == ["1", "3"]
    assert store.list("nobody") == []


def test_update_changes_only_the_given_fields(store: SqlStore) -> None:
    """Fields not passed to update() keep their values, the secret included."""
    auth = BasicAuth("ops", "pw")
    hook = store.create(account_id="acme", url=URL, events=["job"], name="n", basic_auth=auth)
    updated = store.update(hook.id, url="https://new.example.com/x", active=False)
    assert updated == Hook(
        id=hook.id,
        account_id="acme",
        url="https://new.example.com/x",
        events=("job",),
        secret=hook.secret,
        name="n",
        active=False,
        basic_auth=auth,
    )
    assert store.get(hook.id) == updated


def test_update_replaces_events_as_a_whole(store: SqlStore) -> None:
    """New events replace the old list; they are not merged into it."""
    hook = store.create(account_id="acme", url=URL, events=["job", "cluster.error"])
    assert store.update(hook.id, events=["cluster.available"]).events == ("cluster.available",)


def test_update_with_basic_auth_none_removes_it(store: SqlStore) -> None:
    """basic_auth=None removes the credentials; leaving it out keeps them."""
    hook = store.create(account_id="acme", url=URL, events=["job"], basic_auth=BasicAuth("u", "p"))
    assert store.update(hook.id, name="kept").basic_auth == BasicAuth("u", "p")
    assert store.update(hook.id, basic_auth=None).basic_auth is None
    stored = store.get(hook.id)
    assert stored is not None and stored.basic_auth is None


def test_update_unknown_id_raises_hook_not_found(store: SqlStore) -> None:
    """Updating a missing hook raises HookNotFound, which is both a StoreError and a KeyError."""
    with pytest.raises(HookNotFound, match="no hook with id '404'") as caught:
        store.update("404", name="x")
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, KeyError)


def test_delete_removes_the_hook_and_its_status(store: SqlStore) -> None:
    """delete() returns True, the hook is gone and its per-event status records with it."""
    hook = store.create(account_id="acme", url=URL, events=["job"])
    with store.db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO hookd_delivery_status (hook_id, event, last_trigger_status, last_trigger_time) "
            "VALUES (?, 'job.failed', 'success', '2024-01-01T00:00:00.000Z')",
            (hook.id,),
        )
    assert store.delete(hook.id) is True
    assert store.get(hook.id) is None
    with store.db.transaction() as tx:
        assert tx.fetchall("SELECT * FROM hookd_delivery_status") == []


def test_delete_unknown_id_returns_false(store: SqlStore) -> None:
    """Deleting a hook that does not exist reports False instead of raising."""
    assert store.delete("404") is False


def test_reset_secret_replaces_only_the_secret(store: SqlStore) -> None:
    """reset_secret() generates a new secret and leaves every other field as it was."""
    hook = store.create(account_id="acme", url=URL, events=["job"], secret="old")
    reset = store.reset_secret(hook.id)
    assert reset.secret not in ("old", "")
    assert reset == Hook(**{**{f: getattr(hook, f) for f in hook.__slots__}, "secret": reset.secret})
    assert store.get(hook.id) == reset


def test_reset_secret_unknown_id_raises_hook_not_found(store: SqlStore) -> None:
    """Resetting the secret of a missing hook raises HookNotFound."""
    with pytest.raises(HookNotFound):
        store.reset_secret("404")


def test_import_round_trips_every_field(store: SqlStore, make_hook: HookFactory) -> None:
    """Imported hooks read back equal, secrets, basic auth and flags included."""
    hooks = [
        make_hook(id="1", name="n", events=("job", "cluster.error"), basic_auth=BasicAuth("u", "p:w")),
        make_hook(id="2", active=False, insecure_ssl=True, account_id="globex"),
    ]
    assert store.import_hooks(hooks) == 2
    assert store.list() == hooks


def test_import_upserts_by_id(store: SqlStore, make_hook: HookFactory) -> None:
    """Importing an existing id replaces that hook; new ids are added; others stay."""
    store.import_hooks([make_hook(id="1", name="old"), make_hook(id="2")])
    assert store.import_hooks([make_hook(id="1", name="new"), make_hook(id="3")]) == 2
    assert [(h.id, h.name) for h in store.list()] == [("1", "new"), ("2", ""), ("3", "")]


def test_invalid_create_lists_every_problem_and_changes_nothing(store: SqlStore) -> None:
    """A bad URL and an unknown event are both reported, and no hook or revision is added."""
    before = store.revision()
    with pytest.raises(ConfigError) as caught:
        store.create(account_id="acme", url="ftp://x", events=["job", "job.exploded"])
    assert [p.split(":", 1)[0] for p in caught.value.problems] == ["url", "events"]
    assert store.list() == [] and store.revision() == before


def test_invalid_update_changes_nothing(store: SqlStore) -> None:
    """An update with any invalid field is refused whole: the valid fields are not applied either."""
    hook = store.create(account_id="acme", url=URL, events=["job"])
    before = store.revision()
    with pytest.raises(ConfigError) as caught:
        store.update(hook.id, name="renamed", events=[], basic_auth=BasicAuth("a:b", "p"))
    assert len(caught.value.problems) == 2
    assert store.get(hook.id) == hook and store.revision() == before


def test_invalid_import_writes_nothing(store: SqlStore, make_hook: HookFactory) -> None:
    """One bad hook in an import rejects the whole batch, listing each problem with its position."""
    batch = [make_hook(id="1"), make_hook(id="2", url="not a url"), make_hook(id="1", events=())]
    with pytest.raises(ConfigError) as caught:
        store.import_hooks(batch)
    assert [p.split(":", 1)[0] for p in caught.value.problems] == [
        "hooks[1] (id '2')",
        "hooks[2] (id '1')",
        "hooks[2] (id '1')",
    ]
    assert store.list() == []


def test_revision_grows_with_every_write(store: SqlStore, make_hook: HookFactory) -> None:
    """create, update, reset_secret, import and delete each move the revision forward."""
    seen = [store.revision()]
    hook = store.create(account_id="acme", url=URL, events=["job"])
    seen.append(store.revision())
    for write in (
        lambda: store.update(hook.id, name="x"),
        lambda: store.reset_secret(hook.id),
        lambda: store.import_hooks([make_hook(id="9")]),
        lambda: store.delete(hook.id),
    ):
        write()
        seen.append(store.revision())
    assert seen == sorted(set(seen)), seen


def test_revision_grows_on_a_direct_sql_update(store: SqlStore) -> None:
    """A change made with plain SQL, not through SqlStore, still moves the revision (triggers)."""
    hook = store.create(account_id="acme", url=URL, events=["job"])
    before = store.revision()
    with store.db.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_hooks SET active = ? WHERE id = ?", (False, hook.id))
    assert store.revision() > before
    loaded = store.load().get(hook.id)
    assert loaded is not None and loaded.active is False


def test_snapshot_pairs_the_revision_with_the_hooks(store: SqlStore) -> None:
    """snapshot() returns the current revision together with the hooks it describes."""
    store.create(account_id="acme", url=URL, events=["job"])
    revision, hooks = store.snapshot()
    assert revision == store.revision() and [h.id for h in hooks] == ["1"]


def test_load_refuses_bad_rows_written_by_sql(store: SqlStore) -> None:
    """A row that breaks the rules fails the whole load with its id, never a partial set."""
    store.create(account_id="acme", url=URL, events=["job"])
    _raw_insert(store.db, "77", url="gopher://old")
    with pytest.raises(ConfigError, match=r"hook 77: url: must use http or https"):
        store.load()


def test_generated_secrets_are_long_and_distinct(store: SqlStore) -> None:
    """Generated secrets carry at least 32 random bytes and never repeat."""
    secrets = [store.create(account_id="acme", url=URL, events=["job"]).secret for _ in range(20)]
    assert len(set(secrets)) == 20
    assert all(len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) >= 32 for s in secrets)


def test_describe_hides_the_database_password() -> None:
    """describe() names the database without the password in the URL."""
    with Database.from_url("postgresql://hookd:hunter2@db.example:5432/hooks") as db:
        description = SqlStore(db).describe()
    assert description == "sql:postgresql://hookd:***@db.example:5432/hooks"


def test_unmigrated_database_raises_store_error_with_a_hint(opener: Callable[[], Database]) -> None:
    """Reading before `hookd db upgrade` raises StoreError telling the operator to migrate."""
    with pytest.raises(StoreError, match="hookd db upgrade"):
        SqlStore(opener()).load()


def test_ordered_and_rate_limit_are_stored_changed_and_cleared(store: SqlStore) -> None:
    """ordered (None, True, False) and rate_limit (a fraction, or None) survive create, update and reload."""
    hook = store.create(account_id="acme", url=URL, events=["job"], ordered=False, rate_limit=0.5)
    assert (store.get(hook.id).ordered, store.get(hook.id).rate_limit) == (False, 0.5)  # type: ignore[union-attr]
    store.update(hook.id, ordered=None, rate_limit=None)
    reloaded = store.load().get(hook.id)
    assert reloaded is not None and (reloaded.ordered, reloaded.rate_limit) == (None, None)
    store.update(hook.id, ordered=True, rate_limit=2)
    assert (store.get(hook.id).ordered, store.get(hook.id).rate_limit) == (True, 2.0)  # type: ignore[union-attr]


def test_a_bad_rate_limit_or_ordered_is_refused_and_nothing_written(store: SqlStore) -> None:
    """rate_limit 0 or ordered "yes": ConfigError naming the field; the revision does not move."""
    hook = store.create(account_id="acme", url=URL, events=["job"])
    before = store.revision()
    with pytest.raises(ConfigError, match="rate_limit"):
        store.update(hook.id, rate_limit=0)
    with pytest.raises(ConfigError, match="ordered"):
        store.update(hook.id, ordered="yes")  # type: ignore[arg-type]
    assert store.revision() == before


def test_migration_6_gives_existing_hooks_no_ordering_choice_and_no_limit(opener: Callable[[], Database]) -> None:
    """A database made by a hookd at schema version 5, with a hook, migrated: the hook reads ordered None
    (the installation's default) and rate_limit None."""
    db = opener()
    _migrate(db, [m for m in MIGRATIONS if m.version <= 5])  # what the hookd of version 5 left
    _raw_insert(db, "old")
    db.migrate()
    hook = SqlStore(db).get("old")
    assert hook is not None and (hook.ordered, hook.rate_limit) == (None, None)
