"""The keep-alive pool: idle connections per key, and how long each may wait for its next request.

How long a connection stays idle (`idle_limit`): `DEFAULT_IDLE_S`, 4 s, unless the server's last
response announced less with `Keep-Alive: timeout=N`. 4 s sits under the idle timeouts most
receivers run with (Node's http, uvicorn, hypercorn and Apache: 5 s; nginx 75 s, waitress 120 s), so
a pooled connection is rarely one the server is closing at that moment. An announced timeout is
honoured with a margin, `N - min(1, N/2)` (1 s gives 0.5 s, 5 s gives 4 s, 0 keeps nothing),
because the server's clock started before the response reached us; a shorter one that is not
announced (gunicorn's threaded workers: 2 s) is met by the resend below. A burst to one hook reuses
its connections; a hook delivered to every few minutes opens a fresh one each time.

A server may still close an idle connection just as it is reused (a race no timeout removes): the
sender then sends the request once more on a new connection (`delivery.sender` says when, and why
receivers dedupe on `X-Hook-Delivery`).

The key says who may share a connection (scheme, host, port, the hook's network policy and TLS
setting), so a connection is only reused under the rules it was opened (and checked) under.
Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

from hookd.delivery.http import Connection

DEFAULT_IDLE_S = 4.0


def idle_limit(keep_alive_s: float | None, default_s: float = DEFAULT_IDLE_S) -> float:
    """How long a connection may stay idle: `default_s`, or less when the server announced less."""
    if keep_alive_s is None:
        return default_s
    return max(0.0, min(default_s, keep_alive_s - min(1.0, keep_alive_s / 2)))


class Pool:
    """Idle keep-alive connections per key, the most recently used taken first. `clock` is a seam for
    tests (monotonic seconds)."""

    def __init__(
        self,
        *,
        max_idle_per_key: int,
        idle_timeout_s: float = DEFAULT_IDLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle: dict[Hashable, deque[tuple[float, Connection]]] = {}  # (expires at, connection)
        self._max = max_idle_per_key
        self._timeout_s = idle_timeout_s
        self._clock = clock
        self.opened = 0
        self.reused = 0

    def take(self, key: Hashable) -> Connection | None:
        """The most recently used live idle connection for `key` (it is the least likely to be stale)."""
        idle = self._idle.get(key)
        now = self._clock()
        while idle:
            expires, conn = idle.pop()
            if not conn.closed and now < expires:
                self.reused += 1
                return conn
            conn.close()
        return None

    def give(self, key: Hashable, conn: Connection) -> None:
        """Keep `conn` for the next request to `key`, unless it is closed, may not idle, or the key is full."""
        limit = idle_limit(conn.keep_alive_s, self._timeout_s)
        if conn.closed or limit <= 0:
            conn.close()
            return
        idle = self._idle.setdefault(key, deque())
        if len(idle) >= self._max:
            conn.close()
            return
        idle.append((self._clock() + limit, conn))

    def sweep(self) -> None:
        """Close connections idle past their limit (so hosts no longer delivered to hold no sockets)."""
        now = self._clock()
        for key in list(self._idle):
            kept: deque[tuple[float, Connection]] = deque()
            for expires, conn in self._idle[key]:
                if not conn.closed and now < expires:
                    kept.append((expires, conn))
                else:
                    conn.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    def close(self) -> None:
        """Close every idle connection (the sender's `close`)."""
        for idle in self._idle.values():
            for _expires, conn in idle:
                conn.close()
        self._idle.clear()

    @property
    def idle(self) -> int:
        """How many connections wait in the pool."""
        return sum(len(idle) for idle in self._idle.values())
