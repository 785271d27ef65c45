"""A private, throw-away PostgreSQL cluster for a test run, on 127.0.0.1 and a free port.

Why: the database store's tests need a real PostgreSQL, and a fresh machine may have the Debian
package installed but no server running (or none reachable, as in a network namespace with only
loopback). A cluster of our own needs no system service, no root-owned configuration and no
cleanup beyond deleting its directory.

How: `initdb` into a temporary directory (trust authentication, C locale, `--no-sync`), then run
`postgres` itself as our child process, listening on 127.0.0.1 only, with its Unix socket in the
data directory (never /var/run/postgresql, which may be missing or belong to the system server),
and with `fsync=off`: a test database that a crash loses is simply made again, and durability is
what makes a server slow to start and to write. Readiness is read from `postmaster.pid`, whose
status line says `ready` once the server accepts connections (what `pg_ctl -w` waits for). Running
`postgres` directly rather than through `pg_ctl start` keeps it our child: we know its pid without
reading a file, and `stop()` signals that pid and reaps it.

Root: `initdb` and `postgres` refuse to run as root (a server that runs as root hands a database
superuser the whole machine). As root, both run as the `postgres` system user that Debian's package
creates, privileges dropped in the child before exec (`Popen(user=..., group=..., extra_groups=[])`,
no intermediate `runuser` process whose pid would stand between us and the server), and the
directory is handed to that user; its parents must let that user through, as /tmp does (mind a
TMPDIR under /root).

Standby: `PrivatePostgres.standby_of(primary)` is a second cluster made by `pg_basebackup -R` from
a running primary (streaming replication through a replication slot, so the primary keeps the WAL
the standby has not fetched yet), started on its own port as a hot standby; `promote()` makes it
the primary (`pg_ctl promote`) and returns once it accepts writes; `kill()` ends a server the way a
crash does. Together they stage a failover on one machine, for the tests of libpq multi-host URLs
(`postgresql://h1,h2/db?target_session_attrs=read-write`). What replication needs is initdb's
default since PostgreSQL 10 (`wal_level=replica`, `max_wal_senders=10`, `host replication all
127.0.0.1/32` in pg_hba.conf with the `--auth` method, trust here); `wal_level` is set on the command
line all the same, so a standby can always be made of a primary.

Measured here (2 cores): a first start takes about 2 s (`initdb` 1.6-2.4 s, the server ready in
~0.1 s, `createdb` 0.3 s), a restart 0.1 s, a fast shutdown under 0.15 s. A standby of a fresh
primary takes 0.7-1.5 s (3 s with the machine loaded), nearly all of it `pg_basebackup`, which
copies 46 MB; `promote()` 0.12-0.35 s (5 s before `wal_retrieve_retry_interval` was lowered, see
`start`); `kill()` under 0.1 s.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from . import BootstrapError, Started
from .devbroker import HOST, free_port, reachable

#: The system user Debian's `postgresql` package creates; the server runs as it when we are root.
SYSTEM_USER = "postgres"
#: The database `url` points at, created at the first start (the name the test suite expects).
DATABASE = "test"
_READY = "ready"  # postmaster.pid's status line once the server accepts connections (PM_STATUS_READY)
_STATUS_LINE = 7  # 0-based: pid, data dir, start time, port, socket dir, listen address, shmem key, status


class PrivatePostgresError(BootstrapError):
    """The private PostgreSQL could not be set up or started (the message carries the log's tail)."""


def find_bindir() -> Path | None:
    """The directory holding `initdb`, `postgres` and `createdb`, or None when the server is not installed.

    `pg_config --bindir` first (it names the version the machine's development files belong to),
    then the newest `/usr/lib/postgresql/<version>/bin`, Debian's layout, which has no `PATH` entry.
    """
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(done.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in versions), key=lambda p: _version_key(p.parent.name), reverse=True)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres", "createdb")):
            return bindir
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def installed() -> bool:
    """True if the PostgreSQL server binaries are present."""
    return find_bindir() is not None


class PrivatePostgres(Started):
    """A PostgreSQL cluster of our own in a temporary directory, with database `test` and trust auth.

    `start()` initialises it on first use, runs the server and waits until it accepts connections;
    `stop()` shuts it down fast (SIGINT: active sessions are cut, data is kept); `close()` stops it
    and deletes the directory. The server runs in its own session, so a Ctrl-C meant for the caller
    does not reach it, and whatever is left of its process group is killed when `stop()` runs out
    of time. A handle made by `standby_of()` copies its primary at its first start instead of
    running `initdb`.
    """

    def __init__(self, port: int | None = None, *, primary: PrivatePostgres | None = None) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise PrivatePostgresError("PostgreSQL is not installed (no initdb/postgres; install postgresql)")
        self.bindir = bindir
        self.base_dir = Path(tempfile.mkdtemp(prefix="hookd-postgres-"))
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self.primary = primary
        self._database_created = primary is not None  # a standby's copy has database `test` already

    @classmethod
    def standby_of(cls, primary: PrivatePostgres, port: int | None = None) -> PrivatePostgres:
        """A streaming-replication standby of the running `primary`, made and started by `start()`
        (or `with`): a hot standby that serves reads until `promote()` makes it the primary."""
        return cls(port, primary=primary)

    # -- properties ------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        """initdb's and the server's output, appended across restarts."""
        return self.base_dir / "postgres.log"

    @property
    def url(self) -> str:
        """The URL of database `test` as the superuser `postgres` (trust: no password)."""
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def slot(self) -> str:
        """The replication slot a standby streams through (on its primary, made by `pg_basebackup`)."""
        return f"hookd_standby_{self.port}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (leader of the server's process group), if started."""
        return self._proc.pid if self._proc is not None else None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> None:
        """Initialise the cluster if needed, start the server, wait until it accepts connections."""
        if self.running:
            return
        deadline = time.monotonic() + timeout_s
        if reachable(HOST, self.port, timeout=0.5):
            raise PrivatePostgresError(f"port {self.port} is already in use by another program")
        self._output = self.log_file.open("ab")
        if not (self.data_dir / "PG_VERSION").is_file():
            if self.primary is None:
                self._initdb(deadline)
            else:
                self._basebackup(self.primary, deadline)
        command = [
            str(self.bindir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={HOST}",
            "-c", f"unix_socket_directories={self.data_dir}",
            "-c", "wal_level=replica",  # initdb's default; a standby of this server needs it
            # A standby that lost its primary waits this long before it looks for WAL again, and a
            # promotion arriving then waits it out (the default 5 s: in about half the failovers).
            "-c", "wal_retrieve_retry_interval=100ms",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            command,
            cwd=self.base_dir,
            env=_clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_run_as_server_user(),
        )
        self._wait_ready(deadline, timeout_s)
        if not self._database_created:
            self._run(
                [str(self.bindir / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", DATABASE],
                deadline,
                as_server_user=False,
            )
            self._database_created = True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster), then kill whatever is left; the data is kept."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # backends left behind by a postmaster that did not exit
        proc.wait()
        self._proc = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def kill(self) -> None:
        """SIGKILL to the server's whole process group, as a crash ends it: no shutdown checkpoint,
        no goodbye to clients (their connections are reset), no WAL sent to a standby any more."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self.stop()  # reaps the postmaster, closes the log

    def promote(self, timeout_s: float = 30.0) -> None:
        """Make this standby the primary; return once it accepts writes.

        `pg_ctl promote -w` returns when the control file on disk says `in production`, and since
        PostgreSQL 13 the startup process sets that and the shared flag that lets sessions write
        (`RecoveryInProgress()` false) together, under the control file's lock, flag first. A hot
        standby's postmaster.pid says `ready` already, so it cannot tell.
        """
        if not self.running:
            raise PrivatePostgresError("promote: the server is not running")
        seconds = max(1, round(timeout_s))
        self._run(
            [str(self.bindir / "pg_ctl"), "promote", "-D", str(self.data_dir), "-w", "-t", str(seconds)],
            time.monotonic() + timeout_s + 5.0,  # pg_ctl's own -t runs out first and says why
            as_server_user=True,
        )
        self.primary = None

    def close(self) -> None:
        """Stop the server and delete the cluster's directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def tail(self, lines: int = 20) -> str:
        """The last lines of initdb's and the server's output, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server output)"
        return "\n".join(text.splitlines()[-lines:])

    # -- steps -----------------------------------------------------------------------------------
    def _initdb(self, deadline: float) -> None:
        if os.geteuid() == 0:
            user = _server_user()
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.data_dir),
                "-U", "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # nothing to make durable: the cluster is deleted after the run
            ],
            deadline,
            as_server_user=True,
        )  # fmt: skip

    def _basebackup(self, primary: PrivatePostgres, deadline: float) -> None:
        """Copy the running primary into our data directory, ready to stream from it (`-R` writes
        `standby.signal` and `primary_conninfo`); `--checkpoint=fast` spares the default spread
        checkpoint, which would take minutes."""
        if not primary.running:
            raise PrivatePostgresError("standby: the primary is not running")
        if os.geteuid() == 0:
            user = _server_user()
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)
        self._run(
            [
                str(self.bindir / "pg_basebackup"),
                "-D", str(self.data_dir),
                "-h", HOST,
                "-p", str(primary.port),
                "-U", "postgres",
                "--write-recovery-conf",
                "--wal-method=stream",
                "--create-slot", f"--slot={self.slot}",
                "--checkpoint=fast",
                "--no-sync",
                "--no-manifest",  # nobody verifies a throw-away copy
            ],
            deadline,
            as_server_user=True,
        )  # fmt: skip

    def _wait_ready(self, deadline: float, timeout_s: float) -> None:
        """Wait until postmaster.pid says `ready` (a hot standby's too, once it is consistent)."""
        proc = self._proc
        assert proc is not None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                code = proc.returncode
                self.stop()
                raise PrivatePostgresError(f"postgres exited with {code} while starting\n{self.tail()}")
            if self._status() == _READY:
                return
            time.sleep(0.05)
        self.stop(timeout_s=5.0)
        raise PrivatePostgresError(f"postgres did not accept connections in {timeout_s:g} s\n{self.tail()}")

    def _status(self) -> str | None:
        """The status line of postmaster.pid (`starting`, `ready`, `standby`, `stopping`), if there is one yet."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        return lines[_STATUS_LINE].strip() if len(lines) > _STATUS_LINE else None

    def _run(self, command: list[str], deadline: float, *, as_server_user: bool) -> None:
        """Run one of the cluster's tools to completion, its output appended to the log."""
        extra = _run_as_server_user() if as_server_user else {}
        try:
            done = subprocess.run(
                command,
                cwd=self.base_dir,
                env=_clean_environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
                **extra,
            )
        except subprocess.TimeoutExpired:
            raise PrivatePostgresError(f"{Path(command[0]).name} did not finish in time\n{self.tail()}") from None
        if done.returncode != 0:
            raise PrivatePostgresError(f"{Path(command[0]).name} exited with {done.returncode}\n{self.tail()}")


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PrivatePostgresError(
            f"running as root, PostgreSQL must run as the {SYSTEM_USER!r} user, which does not exist "
            "(Debian's postgresql package creates it)"
        ) from None


def _run_as_server_user() -> dict[str, Any]:
    """Popen arguments that drop root to the `postgres` user in the child; none when not root."""
    if os.geteuid() != 0:
        return {}
    user = _server_user()
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _clean_environment() -> dict[str, str]:
    """Our environment without libpq's PG* variables, which would point the tools elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}
