"""The attempt deadline: a blocked read is cut at the deadline, never earlier, never another attempt's."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from hookd.deadline import Watchdog


class Conn:
    """A stand-in for a urllib3 connection: all the watchdog touches is `sock`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.settimeout(5)
    yield ours, peer
    ours.close()
    peer.close()


def _in_thread(target: object) -> None:
    """Run `target` on a thread of its own (each thread has its own watch slot) and wait for it."""
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_a_read_blocked_past_the_deadline_returns_at_the_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _peer = pair
    dog = Watchdog()
    watch = dog.arm(0.2)
    dog.bind(watch, Conn(ours))
    assert ours.recv(10) == b""  # the peer never wrote: only the shutdown at the deadline ends this
    assert dog.disarm(watch) is True


def test_an_attempt_finished_in_time_leaves_its_connection_alone(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = pair
    dog = Watchdog()
    watch = dog.arm(0.2)
    dog.bind(watch, Conn(ours))
    assert dog.disarm(watch) is False
    threading.Event().wait(0.5)  # well past the deadline it had
    peer.sendall(b"still open")
    assert ours.recv(10) == b"still open"


def test_binding_after_the_deadline_cuts_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _peer = pair
    dog = Watchdog()
    watch = dog.arm(0.0)
    dog.bind(watch, Conn(ours))
    assert ours.recv(10) == b""
    assert dog.disarm(watch) is True


def test_a_connection_taken_over_by_a_later_attempt_is_not_cut_by_the_earlier_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """urllib3 pools a connection as soon as its body is read, before that attempt is disarmed; the
    next attempt to bind it owns it from then on."""
    ours, peer = pair
    conn = Conn(ours)
    dog = Watchdog()
    fired: list[bool] = []

    def earlier() -> None:
        watch = dog.arm(1.0)
        dog.bind(watch, conn)
        bound.set()
        handed_over.wait(5)
        threading.Event().wait(watch.remaining() + 0.3)  # its deadline passes while the later one holds it
        fired.append(dog.disarm(watch))

    def later() -> None:
        bound.wait(5)
        watch = dog.arm(10.0)
        dog.bind(watch, conn)
        handed_over.set()
        threading.Event().wait(1.6)
        dog.disarm(watch)

    bound = threading.Event()

    handed_over = threading.Event()
    first = threading.Thread(target=earlier)
    first.start()
    _in_thread(later)
    first.join(10)
    assert fired == [True]  # the earlier attempt did run out of time...
    peer.sendall(b"reply")
    assert ours.recv(10) == b"reply"  # ...but the connection it no longer owned was left alone


def test_each_thread_reuses_its_slot(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _peer = pair
    dog = Watchdog()
    first = dog.arm(5.0)
    dog.disarm(first)
    second = dog.arm(0.1)
    assert second is first
    dog.bind(second, Conn(ours))
    assert ours.recv(10) == b""  # the reused slot keeps the new, short deadline
    assert dog.disarm(second) is True
