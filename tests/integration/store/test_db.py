"""hookd.state.db: URL parsing, transactions, error translation, migrations and the delivery tables."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from hookd.errors import ConfigError, StoreError
from hookd.state.db import LIBPQ_DEFAULTS, Database, parse_utc, postgresql_conninfo, utc_text
from hookd.state.migrations import LATEST_VERSION, MIGRATIONS
from hookd.subscriptions.sql_store import SqlStore

Opener = Callable[[], Database]


@pytest.mark.parametrize(
    "url",
    ["mysql://db/hooks", "hooks.db", "sqlite://relative.db", "sqlite:///:memory:", "sqlite:///"],
)
def test_unusable_urls_raise_config_error(url: str) -> None:
    """Unknown schemes, in-memory and malformed SQLite URLs are refused with one problem each."""
    with pytest.raises(ConfigError) as caught:
        Database.from_url(url)
    assert len(caught.value.problems) == 1


def test_sqlite_relative_path_resolves_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///hooks.db is a file in the current directory, fixed when the URL is parsed."""
    monkeypatch.chdir(tmp_path)
    with Database.from_url("sqlite:///data/hooks.db") as db:
        assert db.describe() == f"sqlite:///{tmp_path / 'data' / 'hooks.db'}"


def test_describe_redacts_passwords_in_netloc_and_query() -> None:
    """Neither a user:password URL nor a password= parameter shows up in describe()."""
    for url in ("postgresql://u:hunter2@h/db", "postgresql://u@h/db?password=hunter2&sslmode=require"):
        with Database.from_url(url, schema="s") as db:
            assert "hunter2" not in db.describe() and "hunter2" not in repr(db)
            assert db.describe().endswith("(schema s)")


def test_invalid_schema_name_is_refused() -> None:
    """A schema name that would need quoting is a ConfigError, not SQL injected into search_path."""
    with pytest.raises(ConfigError, match="letters, digits"):
        Database.from_url("postgresql://h/db", schema="x; DROP TABLE y")


def test_a_multi_host_url_keeps_its_hosts_and_gets_hookds_libpq_defaults() -> None:
    """Several hosts and target_session_attrs pass through to libpq, with a connect timeout, TCP
    keepalives and a TCP user timeout added: a vanished primary costs seconds, not TCP's minutes."""
    conninfo = postgresql_conninfo("postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write", "s")
    params = conninfo_to_dict(conninfo)
    assert (params["host"], params["port"], params["dbname"]) == ("h1,h2", "5432,5433", "db")
    assert params["target_session_attrs"] == "read-write"
    assert {name: params[name] for name in LIBPQ_DEFAULTS} == LIBPQ_DEFAULTS
    assert params["options"] == "-c search_path=s"


def test_a_libpq_setting_in_the_url_wins_over_hookds_default() -> None:
    """An operator who sets a timeout or keepalive in the URL gets exactly that value."""
    url = "postgresql://h/db?tcp_user_timeout=0&connect_timeout=30&keepalives_idle=60&application_name=me"
    params = conninfo_to_dict(postgresql_conninfo(url))
    assert (params["tcp_user_timeout"], params["connect_timeout"]) == ("0", "30")
    assert (params["keepalives_idle"], params["application_name"]) == ("60", "me")


def test_an_unparsable_postgresql_url_is_a_config_error_without_its_password() -> None:
    """libpq's refusal becomes a ConfigError naming the URL, its password redacted."""
    with pytest.raises(ConfigError, match="invalid PostgreSQL URL") as caught:
        Database.from_url("postgresql://u:hunter2@h/db?no_such_option=1")
    assert "hunter2" not in str(caught.value)


def test_unreachable_postgresql_raises_a_clear_store_error() -> None:
    """Nothing listening on the port: StoreError naming the database, the step and the cause."""
    with Database.from_url("postgresql://postgres@127.0.0.1:1/test") as db, pytest.raises(StoreError) as caught:
        db.version()
    message = str(caught.value)
    assert message.startswith("postgresql://postgres@127.0.0.1:1/test: connect failed:")
    assert "refused" in message.lower()
    assert caught.value.__cause__ is not None


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_opener: Opener) -> None:
    """SQLite connections use WAL (readers do not block the writer) and enforce foreign keys."""
    with sqlite_opener().transaction() as tx:
        assert tx.fetchone("PRAGMA journal_mode") == ("wal",)
        assert tx.fetchone("PRAGMA foreign_keys") == (1,)


def test_sql_errors_become_store_errors(database: Database) -> None:
    """A failing statement raises StoreError chained to the library's exception."""
    with pytest.raises(StoreError, match="query failed") as caught, database.transaction() as tx:
        tx.execute("SELECT no_such_column FROM hookd_meta")
    assert caught.value.__cause__ is not None


def test_a_raising_block_rolls_the_transaction_back(database: Database) -> None:
    """An exception inside `transaction()` undoes its writes and propagates unchanged."""
    with pytest.raises(LookupError), database.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_meta SET next_id = 500")
        raise LookupError
    with database.transaction() as tx:
        assert tx.fetchone("SELECT next_id FROM hookd_meta") == (1,)


def test_a_closed_database_refuses_work(opener: Opener) -> None:
    """After close() every transaction raises StoreError instead of reconnecting silently."""
    db = opener()
    db.close()
    with pytest.raises(StoreError, match="closed"):
        db.version()


def test_version_is_zero_before_the_first_migration(opener: Opener) -> None:
    """An empty database reports version 0; migrate() brings it to the latest."""
    db = opener()
    assert db.version() == 0
    assert db.migrate() == LATEST_VERSION == db.version()


def test_a_step_that_landed_out_of_order_is_applied(opener: Opener) -> None:
    """A database migrated without step 7 (written in parallel, merged after 8) gets 7 on the next migrate."""
    from hookd.state.db import _migrate

    db = opener()
    _migrate(db, [m for m in MIGRATIONS if m.version != 7])
    assert db.migrate() == LATEST_VERSION
    with db.transaction() as tx:
        versions = sorted(m.version for m in MIGRATIONS)
        assert tx.fetchall("SELECT version FROM hookd_schema ORDER BY version") == [(v,) for v in versions]
        assert tx.fetchall("SELECT COUNT(*) FROM hookd_workers") == [(0,)]


def test_migrate_is_idempotent(database: Database) -> None:
    """Migrating again changes nothing: one row per version, data kept."""
    SqlStore(database).create(account_id="acme", url="https://a.example/h", events=["job"])
    assert database.migrate() == LATEST_VERSION
    with database.transaction() as tx:
        assert tx.fetchall("SELECT version FROM hookd_schema") == [
            (m.version,) for m in sorted(MIGRATIONS, key=lambda m: m.version)
        ]
    assert len(SqlStore(database).list()) == 1


def test_concurrent_migrations_apply_each_version_once(opener: Opener) -> None:
    """Two handles migrating the same empty database at once both succeed; each version applies once."""
    handles = [opener(), opener()]
    barrier = threading.Barrier(len(handles))
    results: list[int | BaseException] = []

    def migrate(db: Database) -> None:
        barrier.wait()
        try:
            results.append(db.migrate())
        except BaseException as exc:  # reported by the assertion below, not lost in the thread
            results.append(exc)

    threads = [threading.Thread(target=migrate, args=(db,)) for db in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [LATEST_VERSION, LATEST_VERSION]
    with handles[0].transaction() as tx:
        assert tx.fetchall("SELECT version FROM hookd_schema") == [
            (m.version,) for m in sorted(MIGRATIONS, key=lambda m: m.version)
        ]


def test_a_schema_newer_than_hookd_is_refused(database: Database) -> None:
    """migrate() will not run against a database a newer hookd has upgraded."""
    with database.transaction(write=True) as tx:
        tx.execute("INSERT INTO hookd_schema (version, description) VALUES (999, 'from the future')")
    with pytest.raises(StoreError, match="newer than this hookd"):
        database.migrate()


def test_delivery_history_tables_take_batched_rows(database: Database) -> None:
    """Attempts and deliveries insert in batches; bodies and UTC timestamps read back intact, in order."""
    start = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    attempts = [
        (
            f"d-{n % 2}",
            "1",
            "job.failed",
            "e-1",
            "acme",
            n,
            500,
            "retry",
            12.5,
            "HTTP 500",
            "oops",
            start + timedelta(seconds=n),
        )
        for n in range(1, 5)
    ]
    with database.transaction(write=True) as tx:
        tx.executemany(
            "INSERT INTO hookd_attempts (delivery_id, hook_id, event, event_id, account_id, attempt, status, outcome,"
            " duration_ms, error, response_excerpt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            attempts,
        )
        tx.executemany(
            "INSERT INTO hookd_deliveries (delivery_id, hook_id, event, event_id, account_id, state, attempts,"
            " last_status, created_at, updated_at, body)"
            " VALUES (?, '1', 'job.failed', 'e-1', 'acme', ?, 2, 500, ?, ?, ?)",
            [("d-0", "retrying", start, start, b"\x00{}\xff"), ("d-1", "failed", start, start, b"{}")],
        )
    with database.transaction() as tx:
        rows = tx.fetchdicts("SELECT id, attempt, created_at FROM hookd_attempts ORDER BY created_at DESC")
        body = tx.fetchone("SELECT body FROM hookd_deliveries WHERE delivery_id = 'd-0'")
    assert [r["attempt"] for r in rows] == [4, 3, 2, 1]
    assert len({r["id"] for r in rows}) == 4
    assert parse_utc(rows[-1]["created_at"]) == start + timedelta(seconds=1)
    assert body is not None and bytes(body[0]) == b"\x00{}\xff"


def test_delivery_state_is_constrained(database: Database) -> None:
    """A delivery state outside delivered/retrying/failed is refused by the database."""
    with pytest.raises(StoreError), database.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO hookd_deliveries (delivery_id, hook_id, event, event_id, account_id, state)"
            " VALUES ('d', '1', 'job.failed', 'e', 'acme', 'lost')"
        )


def test_delivery_status_upserts_per_hook_and_event(database: Database) -> None:
    """The status record keeps one row per (hook, event), replaced by the newest trigger."""
    upsert = (
        "INSERT INTO hookd_delivery_status (hook_id, event, last_trigger_status, last_trigger_time,"
        " last_response_code, last_response) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hook_id, event) DO UPDATE SET"
        " last_trigger_status = excluded.last_trigger_status, last_trigger_time = excluded.last_trigger_time,"
        " last_response_code = excluded.last_response_code, last_response = excluded.last_response"
    )
    now = datetime.now(UTC)
    with database.transaction(write=True) as tx:
        tx.executemany(
            upsert, [("1", "job.failed", "failure", now, 500, "no"), ("1", "job.failed", "success", now, 200, "ok")]
        )
    with database.transaction() as tx:
        assert tx.fetchall("SELECT last_trigger_status, last_response_code FROM hookd_delivery_status") == [
            ("success", 200)
        ]


def test_utc_text_is_fixed_width_so_text_order_is_time_order() -> None:
    """SQLite timestamp text sorts like the times it encodes, whatever the input timezone."""
    tz = datetime(2024, 1, 1, tzinfo=UTC).astimezone().tzinfo
    moments = [datetime(2024, 1, 1, 0, 0, 0, us, tzinfo=UTC) for us in (0, 5000, 999999)]
    moments.append(datetime(2024, 1, 1, 9, 0, 0, tzinfo=tz))
    texts = [utc_text(m) for m in moments]
    assert len({len(t) for t in texts}) == 1 and all(t.endswith("Z") for t in texts)
    assert sorted(texts) == [utc_text(m) for m in sorted(moments)]
    with pytest.raises(TypeError, match="naive"):
        utc_text(datetime(2024, 1, 1))


def test_postgresql_trigger_notifies_and_ignores_the_callers_search_path(
    postgresql_opener: Opener, postgres_url: str
) -> None:
    """A write through another search_path still bumps this schema's revision and sends pg_notify."""
    import psycopg

    db = postgresql_opener()
    db.migrate()
    store = SqlStore(db)
    hook = store.create(account_id="acme", url="https://a.example/h", events=["job"])
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute("LISTEN hookd_hooks")
        with psycopg.connect(postgres_url, autocommit=True) as other:  # default search_path: public
            other.execute(f'UPDATE "{db.schema}".hookd_hooks SET name = %s WHERE id = %s', ("x", hook.id))
        notices = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.payload for n in notices] == [str(store.revision())]


def test_a_pooled_connection_dropped_by_the_server_is_replaced(postgresql_opener: Opener, postgres_url: str) -> None:
    """When the server ends an idle pooled connection, the next call reconnects instead of failing."""
    db = postgresql_opener()
    db.migrate()
    with db.transaction() as tx:
        row = tx.fetchone("SELECT pg_backend_pid()")
    assert row is not None
    with Database.from_url(postgres_url) as admin, admin.transaction(write=True) as tx:
        assert tx.fetchone("SELECT pg_terminate_backend(?, 5000)", (row[0],)) == (True,)
    assert SqlStore(db).revision() == 0


def test_migrate_creates_a_missing_schema(postgres_url: str) -> None:
    """With schema= naming a schema that does not exist yet, migrate() creates it and fills it."""
    schema = f"hookd_test_{uuid.uuid4().hex[:12]}"
    try:
        with Database.from_url(postgres_url, schema=schema) as db:
            assert db.migrate() == LATEST_VERSION
            assert SqlStore(db).create(account_id="acme", url="https://a.example/h", events=["job"]).id == "1"
    finally:
        with Database.from_url(postgres_url) as admin, admin.transaction(write=True) as tx:
            tx.script(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_search_path_in_the_url_options_selects_the_schema(postgresql_opener: Opener, postgres_url: str) -> None:
    """`?options=-csearch_path%3D<schema>` in the URL reaches the same tables as schema=<schema>."""
    db = postgresql_opener()
    db.migrate()
    SqlStore(db).create(account_id="acme", url="https://a.example/h", events=["job"])
    separator = "&" if "?" in postgres_url else "?"
    with Database.from_url(f"{postgres_url}{separator}options=-csearch_path%3D{db.schema}") as via_url:
        assert [h.id for h in SqlStore(via_url).list()] == ["1"]
