"""The SQL database behind the `sql` subscription source and delivery history: the only module that
imports sqlite3 or psycopg.

SQL is written once with `?` placeholders and runs on both dialects. Connections come from a small
lock-protected pool of idle connections, so any thread may run a transaction and several hookd
processes may share one database. Library errors become `StoreError` here, at the boundary.

Failover: a PostgreSQL URL may name several hosts, libpq's multi-host form
(`postgresql://h1,h2/db?target_session_attrs=read-write`); each new connection goes to the host
that takes writes, so a promoted standby is found without a config change. A pooled connection to
the old primary is replaced at its next use (`_begin`): at once when the server's end said so (a
crash or a shutdown resets it), within `TCP_USER_TIMEOUT_MS` when its machine vanished without a
word (`LIBPQ_DEFAULTS`). Measured with the primary's address taken away (a network namespace): the
first transaction after the promotion took 10.4 s, the next ones milliseconds; without the bound it
still hung after 110 s, as TCP retransmits for about 15 minutes on Linux, and with it the thread
(the store watcher, the history writer). tests/integration/faults/test_pg_failover.py stages a failover
under a running daemon.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hookd.errors import ConfigError, StoreError
from hookd.state.migrations import COLUMN_TYPES, LATEST_VERSION, MIGRATIONS, Dialect, Migration

if TYPE_CHECKING:
    import psycopg

Row: TypeAlias = tuple[Any, ...]
_Connection: TypeAlias = "sqlite3.Connection | psycopg.Connection[Row]"

BUSY_TIMEOUT_S = 5.0  # how long SQLite waits for another writer before failing with "database is locked"
CONNECT_TIMEOUT_S = 5  # PostgreSQL connect timeout (per host of a multi-host URL)
#: How long sent data may go unacknowledged before the kernel gives the connection up: far above a
#: healthy network's round trips and retransmissions, far below TCP's own ~15 minutes.
TCP_USER_TIMEOUT_MS = 10_000
#: libpq settings hookd adds to a PostgreSQL URL that does not set them itself. The keepalives find a
#: vanished server while hookd waits for its answer (nothing unacknowledged then): probes after 10 s
#: of silence, every 5 s, and Linux drops the connection once they go unanswered for the user
#: timeout; a live server's kernel answers them, however long its query runs.
LIBPQ_DEFAULTS: dict[str, str] = {
    "connect_timeout": str(CONNECT_TIMEOUT_S),
    "application_name": "hookd",
    "tcp_user_timeout": str(TCP_USER_TIMEOUT_MS),
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
MAX_IDLE_CONNECTIONS = 4
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MIGRATION_LOCK_KEY = 0x686F6F6B64  # "hookd": one advisory lock serializes migrators database-wide
#: The library errors `translate_errors` turns into `StoreError`: psycopg's join once it is imported.
_DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)


def _psycopg() -> Any:
    """psycopg, imported on first use: a YAML or SQLite setup never loads it (nor libpq)."""
    global _DB_ERRORS  # noqa: PLW0603 (extended once, before any PostgreSQL connection exists)
    import psycopg  # noqa: PLC0415 (deliberately lazy, see the docstring)

    if psycopg.Error not in _DB_ERRORS:
        _DB_ERRORS = (*_DB_ERRORS, psycopg.Error)
    return psycopg


def _is_postgresql(conn: _Connection) -> bool:
    return not isinstance(conn, sqlite3.Connection)


def utc_text(moment: datetime) -> str:
    """SQLite's timestamp text: UTC, fixed width, millisecond precision, so text order is time order.

    Matches `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`, the column default, so rows written by SQL and by
    Python sort together.
    """
    if moment.tzinfo is None:
        raise TypeError("naive datetime: hookd stores only timezone-aware UTC timestamps")
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat is C code (strftime was a visible share of the history writer's time): cut the offset
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def parse_utc(value: object) -> datetime:
    """A timestamp column read from either dialect (text from SQLite, datetime from PostgreSQL)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    raise TypeError(f"not a timestamp: {value!r}")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s`; a literal `%` must be doubled once parameters are passed."""
    return sql.replace("%", "%%").replace("?", "%s")


def _adapt_sqlite(params: Sequence[Any]) -> tuple[Any, ...]:
    # sqlite3's own datetime adapter is deprecated (3.12) and writes a different, local-time format.
    return tuple(utc_text(p) if isinstance(p, datetime) else p for p in params)


class Transaction:
    """SQL inside one open transaction; every statement's library error becomes `StoreError`."""

    def __init__(self, db: Database, conn: _Connection) -> None:
        self.dialect: Dialect = db.dialect
        self._db = db
        self._conn = conn

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        with self._db.translate_errors("query"):
            if isinstance(self._conn, sqlite3.Connection):
                return self._conn.execute(sql, _adapt_sqlite(params))
            return self._conn.execute(_pyformat(sql), tuple(params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed (-1 when not applicable)."""
        return int(self._cursor(sql, params).rowcount)

    def stamp(self, moment: datetime) -> Any:
        """A timestamp as this dialect stores it (SQLite: `utc_text`; PostgreSQL: the datetime), for a
        caller that prepares many rows once and passes them with `executemany(..., prepared=True)`."""
        return utc_text(moment) if self.dialect == "sqlite" else moment

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], *, prepared: bool = False) -> None:
        """Run one statement per parameter row: the batched insert used for delivery history.
        `prepared`: the rows hold no datetime (timestamps went through `stamp`), so they are passed to
        the driver as they are (adapting every parameter in Python was 40 % of the history writer's
        time on SQLite, measured)."""
        with self._db.translate_errors("query"):
            if isinstance(self._conn, sqlite3.Connection):
                self._conn.executemany(sql, rows if prepared else [_adapt_sqlite(r) for r in rows])
            else:
                with self._conn.cursor() as cur:
                    cur.executemany(_pyformat(sql), [tuple(r) for r in rows])

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cur = self._cursor(sql, params)
        with self._db.translate_errors("query"):
            row = cur.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._cursor(sql, params)
        with self._db.translate_errors("query"):
            return [tuple(row) for row in cur.fetchall()]

    def fetchdicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as column-name dicts, for callers that read many columns."""
        cur = self._cursor(sql, params)
        with self._db.translate_errors("query"):
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def script(self, sql: str) -> None:
        """Run DDL verbatim (no placeholder translation), e.g. a migration statement."""
        with self._db.translate_errors("statement"):
            self._conn.execute(sql)


class Database:
    """A SQLite file or a PostgreSQL database (optionally one schema of it), built by `from_url`."""

    def __init__(self, dialect: Dialect, target: str, *, display: str, schema: str | None = None) -> None:
        self.dialect = dialect
        self.schema = schema
        self._target = target  # SQLite: absolute file path; PostgreSQL: libpq conninfo (may hold a password)
        self._display = display
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None) -> Database:
        """Parse `sqlite:///relative.db`, `sqlite:////abs/path.db` or `postgresql://...` (lazy: no I/O).

        `schema` (PostgreSQL only) puts every table in that schema via `search_path`; `migrate`
        creates it when missing. Anything unusable raises `ConfigError` naming the problem.
        """
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "sqlite":
            if schema is not None:
                raise ConfigError(["database schema: only PostgreSQL has schemas"], "database url")
            if not url.startswith("sqlite:///"):
                raise ConfigError(["sqlite URL must be sqlite:///relative/path or sqlite:////abs/path"], url)
            raw = url.removeprefix("sqlite:///")
            if not raw or raw == ":memory:" or raw.startswith("file:"):
                raise ConfigError(["sqlite URL must name a database file (:memory: is not shared)"], url)
            path = Path(raw).absolute()
            return cls("sqlite", str(path), display=f"sqlite:///{path}")
        if scheme in ("postgresql", "postgres"):
            return cls._postgresql(url, schema)
        shown = _redact(url) if scheme else "<no scheme>"
        raise ConfigError([f"unsupported database URL {shown}: use sqlite:/// or postgresql://"], "database url")

    @classmethod
    def _postgresql(cls, url: str, schema: str | None) -> Database:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError([f"database schema {schema!r}: letters, digits and _ only"], "database url")
        display = _redact(url) + (f" (schema {schema})" if schema else "")
        return cls("postgresql", postgresql_conninfo(url, schema), display=display, schema=schema)

    def describe(self) -> str:
        """The URL without any password, plus the schema, for logs and `describe()`."""
        return self._display

    def __repr__(self) -> str:
        return f"Database({self._display!r})"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close idle connections; connections in use are closed when their transaction ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)

    @contextmanager
    def translate_errors(self, action: str) -> Iterator[None]:
        """Turn a sqlite3/psycopg error into `StoreError` naming the database and what failed."""
        try:
            yield
        except _DB_ERRORS as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            hint = ""
            undefined = type(exc).__name__ == "UndefinedTable"  # psycopg's, without importing it here
            if undefined or "no such table" in detail:
                hint = " (is the schema migrated? run `hookd db upgrade`)"
            raise StoreError(f"{self._display}: {action} failed: {detail}{hint}") from exc

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Reads see one snapshot (PostgreSQL REPEATABLE READ, SQLite's WAL read snapshot), so a reader
        never mixes two versions of the hooks. SQLite writes take the write lock up front (BEGIN
        IMMEDIATE): upgrading a read lock later fails at once instead of waiting out busy_timeout.
        """
        conn = self._begin(write)
        reusable = False
        try:
            yield Transaction(self, conn)
            with self.translate_errors("commit"):
                conn.execute("COMMIT")
            reusable = True
        finally:
            if not reusable:
                reusable = _rollback(conn)
            self._release(conn, reusable)

    def _begin(self, write: bool) -> _Connection:
        """A connection with a transaction open.

        A pooled PostgreSQL connection the server dropped while idle (restart, idle timeout, a
        failover) is replaced once, transparently: nothing had run on it yet, so nothing is repeated.
        """
        if self.dialect == "sqlite":
            sql = "BEGIN IMMEDIATE" if write else "BEGIN"
        else:
            sql = "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        conn = self._pop_idle()
        if conn is not None and _is_postgresql(conn):
            try:
                conn.execute(sql)
                return conn
            except BaseException as exc:
                _close_quietly(conn)
                if not isinstance(exc, _psycopg().OperationalError):
                    with self.translate_errors("begin"):
                        raise
            conn = None
        if conn is None:
            with self.translate_errors("connect"):
                conn = _connect_sqlite(self._target) if self.dialect == "sqlite" else self._connect_postgresql()
        try:
            with self.translate_errors("begin"):
                conn.execute(sql)
        except BaseException:
            _close_quietly(conn)
            raise
        return conn

    def _connect_postgresql(self) -> psycopg.Connection[Row]:
        # autocommit: hookd issues BEGIN/COMMIT itself, the same way on both dialects.
        connection: psycopg.Connection[Row] = _psycopg().connect(self._target, autocommit=True)
        return connection

    def _pop_idle(self) -> _Connection | None:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._display}: the database handle is closed")
            return self._idle.pop() if self._idle else None

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and _is_postgresql(conn) and (conn.broken or conn.closed):  # type: ignore[union-attr]
            reusable = False
        with self._lock:
            if reusable and not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def version(self) -> int:
        """The schema version the database is at (0 before the first migration)."""
        with self.transaction() as tx:
            if not _has_schema_table(tx):
                return 0
            row = tx.fetchone("SELECT COALESCE(MAX(version), 0) FROM hookd_schema")
        return int(row[0]) if row else 0

    def require_schema(self, *, empty_ok: bool = True) -> bool:
        """For commands that only read: the schema must be the one this hookd knows; they never migrate
        a database that older workers may share (`hookd db upgrade`, `run` and `serve` do). Raises
        `StoreError` in one line otherwise; returns False for a database never migrated at all (it
        holds nothing yet) when `empty_ok`."""
        current = self.version()
        if current == LATEST_VERSION or (current == 0 and empty_ok):
            return current == LATEST_VERSION
        if current > LATEST_VERSION:
            raise StoreError(
                f"{self._display}: schema version {current} is newer than this hookd knows ({LATEST_VERSION}):"
                " use the hookd that upgraded it"
            )
        raise StoreError(
            f"{self._display}: schema version {current} is older than this hookd's ({LATEST_VERSION}) and reading"
            " commands never migrate: run `hookd db upgrade --config PATH` (this version's run and serve do it too)"
        )

    def compact(self) -> bool:
        """Leave no copy of overwritten rows in the database's files; False when some may remain.

        SQLite keeps old page images in the WAL until a checkpoint and freed pages in the file until
        they are reused: after rows holding secrets were rewritten (`hookd secrets encrypt`), a copy of
        the file would still show the old values. This empties the WAL (checkpoint TRUNCATE), rebuilds
        the file from the live rows only (VACUUM: it needs free disk space the size of the file and
        holds the write lock meanwhile), and empties the WAL of the rebuild. False when a reader kept
        the WAL in use past busy_timeout: the old pages then go at the next full checkpoint.
        PostgreSQL: nothing to do (`pg_dump` reads live rows only), True.
        """
        if self.dialect != "sqlite":
            return True
        with self.translate_errors("compact"):
            conn = _connect_sqlite(self._target)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
                row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        return row is not None and row[0] == 0

    def migrate(self) -> int:
        """Apply every pending migration in one transaction; return the resulting version.

        Idempotent, and safe when several processes start at once: PostgreSQL migrators queue on an
        advisory lock, SQLite ones on the write lock, and each re-reads the version once it holds it.
        """
        return _migrate(self, MIGRATIONS)


def postgresql_conninfo(url: str, schema: str | None = None) -> str:
    """The libpq connection string for `url` (any libpq URL, several hosts too) with each of
    `LIBPQ_DEFAULTS` the URL does not set, and `schema` first on the search_path. A URL libpq cannot
    parse is a `ConfigError`; the result may hold the URL's password."""
    psycopg = _psycopg()
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConfigError([f"invalid PostgreSQL URL {_redact(url)}: {exc}"], "database url") from None
    extra = {name: value for name, value in LIBPQ_DEFAULTS.items() if name not in params}
    if schema is not None:
        extra["options"] = f"{params.get('options', '')} -c search_path={schema}".strip()
    conninfo: str = psycopg.conninfo.make_conninfo(url, **extra)
    return conninfo


def _connect_sqlite(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves; check_same_thread=False: pooled
    # connections move between threads, one at a time.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, far fewer fsyncs
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (readers never block the writer, across processes); it persists.

    The switch needs an exclusive lock and SQLite reports "database is locked" at once, without
    its busy handler, while another process opens the same new file: retry until busy_timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone() != ("wal",):
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _rollback(conn: _Connection) -> bool:
    """Roll back after a failure; True when the connection is clean enough to reuse."""
    try:
        conn.execute("ROLLBACK")
    except _DB_ERRORS:
        return False
    return not (_is_postgresql(conn) and conn.broken)  # type: ignore[union-attr]


def _close_quietly(conn: _Connection) -> None:
    with suppress(*_DB_ERRORS):
        conn.close()


def _redact(url: str) -> str:
    """`url` without its password (netloc or `password=` query parameter)."""
    try:
        parts = urlsplit(url)
        query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*/")
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    except ValueError:
        return "<unparseable url>"
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _has_schema_table(tx: Transaction) -> bool:
    if tx.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hookd_schema'"
    else:  # to_regclass follows search_path, like every unqualified name hookd uses
        sql = "SELECT 1 WHERE to_regclass('hookd_schema') IS NOT NULL"
    return tx.fetchone(sql) is not None


def _migrate(db: Database, migrations: Sequence[Migration]) -> int:
    latest = max(m.version for m in migrations)
    with db.transaction(write=True) as tx:
        if tx.dialect == "postgresql":
            tx.fetchone("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK_KEY,))
            if db.schema is not None:
                tx.script(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')
        tx.script(
            "CREATE TABLE IF NOT EXISTS hookd_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
            f"applied_at {COLUMN_TYPES[tx.dialect]['ts']} NOT NULL DEFAULT {COLUMN_TYPES[tx.dialect]['now']})"
        )
        row = tx.fetchone("SELECT COALESCE(MAX(version), 0) FROM hookd_schema")
        current = int(row[0]) if row else 0
        if current > latest:
            raise StoreError(
                f"{db.describe()}: schema version {current} is newer than this hookd knows ({latest}); upgrade hookd"
            )
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= current:
                continue
            for statement in migration.statements(tx.dialect):
                tx.script(statement)
            tx.execute(
                "INSERT INTO hookd_schema (version, description) VALUES (?, ?)",
                (migration.version, migration.description),
            )
    return max(current, latest)


def sqlite_file_missing(url: str) -> bool:
    """True for a `sqlite:///` URL whose file does not exist yet (reading it must not create it)."""
    return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()
