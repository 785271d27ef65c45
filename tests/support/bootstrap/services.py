"""Service bootstrap for a test session: use the configured services when they answer, else our own.

Why: `make test` must pass on a developer's machine whose RabbitMQ and PostgreSQL run, in CI, and on
a fresh machine where the Debian packages may be installed but no service runs (or not even the
packages). Skipping there would hide whole suites, so the session fixtures call these functions:
each uses the configured service when it answers, else starts a private one on 127.0.0.1 and a
free port (`PrivateBroker`, `PrivatePostgres`), and returns a `Service` whose `close()` stops only
what it started. A missing Debian package is installed when we are root and have apt-get (with
services kept from starting: a temporary `/usr/sbin/policy-rc.d` that says no); otherwise
`ServiceUnavailable` says in one line what to install. Each decision is written to stderr as one
line starting with `hookd tests:`, so a run's log says which servers it used.

Chromium: `chromium()` makes sure Debian's Chromium and ChromeDriver are there for browser tests,
and `chromium_options()` holds the command-line switches that work on this kind of machine (root,
no display, no network but loopback). selenium is a dev dependency, imported only in there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from . import BootstrapError, devbroker, postgres
from .devbroker import PrivateBroker
from .postgres import PrivatePostgres

if TYPE_CHECKING:
    from selenium.webdriver.chrome.options import Options as ChromeOptions
    from selenium.webdriver.chrome.webdriver import WebDriver as ChromeDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Switches for headless Chromium here. `--no-sandbox`: the sandbox refuses to run as root.
#: `--disable-dev-shm-usage`: /dev/shm may be tiny in containers. The last four stop Chromium's own
#: calls home (updates, sync, field trials): with no network they fail, many at a time, and slow it.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: How long a configured service may take to answer before a private one is started instead. A
#: refused connection (nothing listens) is told at once; a listener this slow is a busy machine's
#: broker (seen: over 3 s at a load of 13 on 2 cores), and a private node would only add to the load.
PROBE_TIMEOUT_S = 10.0

#: How long one apt-get step may take (chromium alone is about 100 MB to fetch and unpack).
APT_TIMEOUT_S = 900.0
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
#: One install at a time on the machine, across processes (xdist workers, other people's runs): two
#: installs side by side would each save and restore policy-rc.d, and the later could put back the
#: earlier's temporary "exit 101" for good. apt's own lock does not cover our policy file.
_APT_LOCK = Path(tempfile.gettempdir()) / "hookd-tests-apt.lock"


class ServiceUnavailable(BootstrapError):
    """A service the tests need cannot be had; the message says, in one line, what to install or start."""


@dataclass
class Service:
    """A service for the tests: its URL and, when we started it, the private server behind it."""

    name: str
    url: str
    private: PrivateBroker | PrivatePostgres | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Stop and delete the private server, if we started one; a configured service is left alone."""
        if self.private is not None and not self._closed:
            self.private.close()
        self._closed = True

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Browser:
    """Where Debian's Chromium and its matching ChromeDriver are."""

    chromium: Path
    chromedriver: Path


# -- RabbitMQ --------------------------------------------------------------------------------------
def rabbitmq_url(configured: str) -> Service:
    """The configured broker if it answers AMQP, else a private node started for the session."""
    parts = urlsplit(configured)
    if parts.scheme not in ("amqp", "amqps"):
        raise ServiceUnavailable(f"the RabbitMQ URL must be amqp:// or amqps://, not {parts.scheme or 'schemeless'}")
    host = parts.hostname or "localhost"
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    where = f"{host}:{port}"
    if devbroker.speaks_amqp(host, port, timeout=PROBE_TIMEOUT_S):
        _say(f"RabbitMQ at {where} answers; using it")
        return Service("RabbitMQ", configured)
    _ensure_packages(devbroker.installed, ["rabbitmq-server"], f"RabbitMQ at {where} does not answer and")
    broker = PrivateBroker()
    started = time.monotonic()
    try:
        broker.start()
    except devbroker.DevBrokerError as exc:
        broker.close()
        raise ServiceUnavailable(
            f"RabbitMQ at {where} does not answer and a private node failed: {_line(exc)}"
        ) from exc
    took = time.monotonic() - started
    _say(
        f"RabbitMQ at {where} does not answer; started a private node on {devbroker.HOST}:{broker.port} in {took:.1f} s"
    )
    return Service("RabbitMQ", broker.url, broker)


def ensure_rabbitmq_installed() -> None:
    """Make sure the RabbitMQ server can be run privately (for `RabbitCluster`), installing it if we may."""
    _ensure_packages(devbroker.installed, ["rabbitmq-server"], "a private RabbitMQ is needed and")


# -- PostgreSQL ------------------------------------------------------------------------------------
def postgres_url(configured: str) -> Service:
    """The configured database if a real connection succeeds, else a private server's `test` database."""
    where = _postgres_where(configured)
    problem = postgres_problem(configured, timeout_s=round(PROBE_TIMEOUT_S))
    if problem is None:
        _say(f"PostgreSQL at {where} answers; using it")
        return Service("PostgreSQL", configured)
    _ensure_packages(postgres.installed, ["postgresql"], f"PostgreSQL at {where} does not answer ({problem}) and")
    started = time.monotonic()
    try:
        server = PrivatePostgres()
        try:
            server.start()
        except BaseException:
            server.close()
            raise
    except postgres.PrivatePostgresError as exc:
        raise ServiceUnavailable(
            f"PostgreSQL at {where} does not answer and a private one failed: {_line(exc)}"
        ) from exc
    took = time.monotonic() - started
    _say(
        f"PostgreSQL at {where} does not answer ({problem}); "
        f"started a private server on {devbroker.HOST}:{server.port} in {took:.1f} s"
    )
    return Service("PostgreSQL", server.url, server)


def ensure_postgres_installed() -> None:
    """Make sure a private PostgreSQL can be run (`PrivatePostgres`), installing the server if we may."""
    _ensure_packages(postgres.installed, ["postgresql"], "a private PostgreSQL is needed and")


def postgres_problem(url: str, timeout_s: int = 3) -> str | None:
    """Why a real connection to `url` fails (one line), or None when `SELECT 1` works."""
    try:
        with psycopg.connect(url, connect_timeout=timeout_s, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return _line(exc) or type(exc).__name__
    return None


def _postgres_where(url: str) -> str:
    """host:port of a PostgreSQL URL, for the log (never the password)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "(unparsable URL)"
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


# -- Chromium --------------------------------------------------------------------------------------
def chromium() -> Browser:
    """Debian's Chromium and ChromeDriver, installed first when missing (root with apt-get)."""

    def present() -> bool:
        return all(os.access(path, os.X_OK) for path in (CHROMIUM, CHROMEDRIVER))

    _ensure_packages(present, ["chromium", "chromium-driver"], "Chromium is needed for browser tests and")
    _say(f"Chromium at {CHROMIUM}, ChromeDriver at {CHROMEDRIVER}")
    return Browser(CHROMIUM, CHROMEDRIVER)


def chromium_options(browser: Browser, user_data_dir: Path) -> ChromeOptions:
    """selenium options for headless Chromium here: `CHROMIUM_ARGS` and a profile of the test's own.

    An empty `--user-data-dir` per browser keeps runs from sharing a profile (and its lock file).
    """
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = str(browser.chromium)
    for argument in (*CHROMIUM_ARGS, f"--user-data-dir={user_data_dir}"):
        options.add_argument(argument)
    return options


def chromium_webdriver(browser: Browser, user_data_dir: Path) -> ChromeDriver:
    """A selenium driver for headless Chromium, through Debian's ChromeDriver (never a downloaded one).

    Naming the driver's path keeps Selenium Manager from looking for one on the network.
    """
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.chrome.webdriver import WebDriver

    service = DriverService(executable_path=str(browser.chromedriver))
    return WebDriver(options=chromium_options(browser, user_data_dir), service=service)


# -- Debian packages -------------------------------------------------------------------------------
def _ensure_packages(present: Callable[[], bool], packages: Sequence[str], situation: str) -> None:
    """Make sure `present()` holds, installing `packages` with apt-get if we may; else say what to do.

    `situation` starts the one-line message, e.g. "RabbitMQ at 127.0.0.1:5672 does not answer and".
    """
    if present():
        return
    names = " ".join(packages)
    missing = f"Debian's {names} {'is' if len(packages) == 1 else 'are'} not installed"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceUnavailable(f"{situation} {missing}: install {names} (as root: apt-get install {names})")
    _say(f"{situation} {missing}; installing with apt-get")
    started = time.monotonic()
    problem = _apt_install(packages)
    if problem is not None:
        raise ServiceUnavailable(f"{situation} {missing} and apt-get failed ({problem}): install {names}")
    if not present():
        raise ServiceUnavailable(f"{situation} {names} got installed but its programs are still missing")
    _say(f"installed {names} in {time.monotonic() - started:.0f} s")


def _apt_install(packages: Sequence[str]) -> str | None:
    """Install packages without starting their services; on failure refresh the lists and try again.

    Returns None on success, else the last line apt-get printed. One install at a time per machine.
    """
    install = [
        "apt-get", "install", "-y", "--no-install-recommends",
        "-o", "DPkg::Lock::Timeout=120",  # wait for another apt or dpkg instead of failing at once
        "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
        *packages,
    ]  # fmt: skip
    with _machine_lock(_APT_LOCK), _services_kept_down():
        problem = _apt(install)
        if problem is None:
            return None
        _say(f"apt-get install failed ({problem}); running apt-get update and trying once more")
        return _apt(["apt-get", "update", "-o", "DPkg::Lock::Timeout=120"]) or _apt(install)


def _apt(command: list[str]) -> str | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}
    try:
        done = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{' '.join(command[:2])} took over {APT_TIMEOUT_S:g} s"
    except OSError as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()
    return lines[-1]


@contextlib.contextmanager
def _machine_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (any process on the machine taking the same one waits)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _services_kept_down() -> Iterator[None]:
    """Keep packages from starting their services while installed: policy-rc.d exiting 101 says "no".

    A system RabbitMQ or PostgreSQL started by the install would take the standard ports behind the
    test run's back (and keep running after it). An existing policy-rc.d is put back afterwards.
    """
    saved: tuple[bytes, int] | None = None
    if _POLICY_RC_D.exists():
        saved = (_POLICY_RC_D.read_bytes(), _POLICY_RC_D.stat().st_mode & 0o7777)
    fd, temporary = tempfile.mkstemp(dir=_POLICY_RC_D.parent, prefix=".policy-rc.d.")
    with os.fdopen(fd, "w") as handle:
        handle.write("#!/bin/sh\n# written by hookd's test bootstrap during apt-get install\nexit 101\n")
    os.chmod(temporary, 0o755)
    os.replace(temporary, _POLICY_RC_D)
    try:
        yield
    finally:
        if saved is None:
            _POLICY_RC_D.unlink(missing_ok=True)
        else:
            _POLICY_RC_D.write_bytes(saved[0])
            _POLICY_RC_D.chmod(saved[1])


# -- helpers ---------------------------------------------------------------------------------------
def _say(line: str) -> None:
    """One decision, one line on stderr (pytest shows it with the test's output)."""
    sys.stderr.write(f"hookd tests: {line}\n")
    sys.stderr.flush()


def _line(exc: BaseException) -> str:
    """An exception's message on one line (server output tails and libpq messages span several)."""
    return " ".join(str(exc).split("\n", 1)[0].split())
