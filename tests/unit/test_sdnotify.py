"""sd_notify: the datagrams hookd sends to systemd, received on a real Unix datagram socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookd import sdnotify


class FakeSystemd:
    """A bound AF_UNIX datagram socket standing in for systemd's notification socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def receive(self) -> str:
        return self.sock.recv(4096).decode("utf-8")

    def pending(self) -> list[str]:
        """Every datagram already queued, without waiting."""
        self.sock.setblocking(False)
        found: list[str] = []
        try:
            while True:
                found.append(self.sock.recv(4096).decode("utf-8"))
        except BlockingIOError:
            return found
        finally:
            self.sock.settimeout(2.0)


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    """A fake notify socket in the test's folder, named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    fake = FakeSystemd(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield fake
    fake.sock.close()


def test_ready_sends_ready_and_status(systemd: FakeSystemd) -> None:
    """READY=1 carries the optional status as a STATUS= line of the same datagram."""
    assert sdnotify.ready("consuming from hookd.events")
    assert systemd.receive() == "READY=1\nSTATUS=consuming from hookd.events"


def test_stopping_watchdog_reloading_and_status_messages(systemd: FakeSystemd) -> None:
    """Each helper sends exactly its protocol assignment."""
    assert sdnotify.stopping()
    assert sdnotify.watchdog()
    assert sdnotify.reloading()
    assert sdnotify.status("reconnecting in 4 s")
    assert [systemd.receive() for _ in range(4)] == [
        "STOPPING=1",
        "WATCHDOG=1",
        "RELOADING=1",
        "STATUS=reconnecting in 4 s",
    ]


def test_status_is_kept_on_one_line(systemd: FakeSystemd) -> None:
    """A newline in a status cannot smuggle in another assignment such as READY=1."""
    sdnotify.status("broken\nREADY=1")
    assert systemd.receive() == "STATUS=broken READY=1"


def test_abstract_socket_address_is_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    """`@name` in $NOTIFY_SOCKET means the abstract namespace (a leading NUL byte)."""
    name = f"hookd-test-{uuid.uuid4().hex}"
    fake = FakeSystemd("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready()
        assert fake.receive() == "READY=1"
    finally:
        fake.sock.close()


def test_without_notify_socket_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside systemd nothing is sent and the helpers say so by returning False."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.ready()
    assert not sdnotify.watchdog()
    assert not sdnotify.notify("STATUS=x", environ={"NOTIFY_SOCKET": "vsock:2:1"})


def test_unreachable_socket_returns_false_instead_of_raising(tmp_path: Path) -> None:
    """A vanished notify socket must not take the daemon down."""
    assert not sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    """systemd's advice: ping at half the configured WatchdogSec."""
    assert sdnotify.watchdog_interval_s(environ={"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval_s(environ={}) is None
    assert sdnotify.watchdog_interval_s(environ={"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval_s(environ={"WATCHDOG_USEC": "junk"}) is None


def test_watchdog_is_only_for_the_process_watchdog_pid_names() -> None:
    """A child that inherited WATCHDOG_USEC must not ping for its parent."""
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.watchdog_interval_s(environ=env) == 1.0
    assert sdnotify.watchdog_interval_s(environ=env, pid=os.getpid() + 1) is None


def test_watchdog_tick_paces_pings(systemd: FakeSystemd) -> None:
    """`tick()` pings at most once per interval however often it is called."""
    dog = sdnotify.Watchdog(interval_s=60.0)
    assert dog.tick()
    assert not dog.tick()
    assert not dog.tick()
    assert systemd.pending() == ["WATCHDOG=1"]


def test_disabled_watchdog_never_pings(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WATCHDOG_USEC the watchdog is off: ticks send nothing, waits are not capped."""
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    dog = sdnotify.Watchdog.from_environment()
    assert not dog.enabled
    assert not dog.tick()
    assert dog.max_wait_s(30.0) == 30.0
    assert systemd.pending() == []


def test_max_wait_keeps_backoff_sleeps_shorter_than_the_ping_interval() -> None:
    """A reconnect back-off sleeps in slices short enough not to miss a ping."""
    dog = sdnotify.Watchdog(interval_s=15.0)
    assert dog.max_wait_s(30.0) == 7.5
    assert dog.max_wait_s(1.0) == 1.0
