"""The sd_notify protocol: tell systemd we are ready, stopping, alive, and what we are doing.

Why not libsystemd or a PyPI binding: the protocol is one datagram of `KEY=value` lines to the
Unix socket named by `$NOTIFY_SOCKET`, which a few lines of the standard library send; a compiled
dependency would only make installs harder. Outside systemd (no `$NOTIFY_SOCKET`) every call is a
no-op that returns False, so the daemon calls these unconditionally.

The unit runs hookd with `Type=notify`, `NotifyAccess=main` and `WatchdogSec=`: systemd considers
the service started at `READY=1`, shows `STATUS=` in `systemctl status`, and kills and restarts it
when `WATCHDOG=1` pings stop arriving for `WatchdogSec` (a wedged main loop). `Watchdog.tick()`
is meant to be called from the main loop itself, so a ping proves that loop is turning.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


def _address(environ: Mapping[str, str]) -> str | None:
    """The socket address from `$NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace."""
    value = environ.get(NOTIFY_SOCKET, "")
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # unset, empty, or a transport we do not speak (vsock:)


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (newline-separated `KEY=value` assignments) to systemd.

    Returns True when the datagram was sent, False outside systemd or when sending failed: a
    notification is advice to the service manager and must never take the daemon down.
    """
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def _one_line(text: str) -> str:
    """STATUS is one line: newlines would start a new (bogus) assignment."""
    return " ".join(text.split())


def ready(status: str | None = None) -> bool:
    """The daemon serves (consumes from the broker): `systemctl start` returns, dependents start."""
    return notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))


def stopping(status: str | None = None) -> bool:
    """The daemon began its graceful stop (draining); systemd shows the unit as deactivating."""
    return notify("STOPPING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))


def reloading(status: str | None = None) -> bool:
    """A reload (SIGHUP: the hooks file) started; call `ready()` when it is done."""
    return notify("RELOADING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))


def watchdog() -> bool:
    """One keep-alive ping; prefer `Watchdog.tick()`, which paces them."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """Free-form one-line status shown by `systemctl status`, e.g. `reconnecting in 4 s`."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog_interval_s(*, environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """How often to ping: half of `$WATCHDOG_USEC` (systemd's advice), or None when not asked to.

    `$WATCHDOG_PID`, when set, names the process the watchdog is meant for; any other process
    (a child that inherited the environment) must not ping.
    """
    env = os.environ if environ is None else environ
    raw = env.get(WATCHDOG_USEC, "")
    if not raw.isdigit() or int(raw) == 0:
        return None
    owner = env.get(WATCHDOG_PID, "")
    if owner and (not owner.isdigit() or int(owner) != (os.getpid() if pid is None else pid)):
        return None
    return int(raw) / 2 / 1_000_000


class Watchdog:
    """Paces `WATCHDOG=1` pings: `tick()` is cheap to call often and pings once per interval.

    Call `tick()` from the loop whose liveness it vouches for (the daemon's main loop, its drain
    loop and its reconnect back-off), never from a helper thread: a thread that pings while the
    main loop is stuck would hide exactly the hang the watchdog exists to catch.
    """

    def __init__(self, interval_s: float | None) -> None:
        self.interval_s = interval_s
        self._last = -float("inf")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Watchdog:
        """Enabled when systemd set `$WATCHDOG_USEC` for this process, otherwise a no-op."""
        return cls(watchdog_interval_s(environ=environ))

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None

    def max_wait_s(self, wanted_s: float) -> float:
        """`wanted_s` capped so that a wait of that long cannot miss a ping (for back-off sleeps)."""
        return wanted_s if self.interval_s is None else min(wanted_s, self.interval_s / 2)

    def tick(self) -> bool:
        """Ping if an interval has passed since the last ping; True when a ping was sent."""
        if self.interval_s is None:
            return False
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return watchdog()
