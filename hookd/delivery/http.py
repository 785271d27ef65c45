"""HTTP/1.1 exchanges on asyncio connections, and the keep-alive pool they come from.

Why hookd's own client: the delivery engine keeps thousands of attempts in flight on one event-loop
thread, and a spike (bench/README.md) measured the options on this 2-core machine: a small client on
asyncio protocols cost 0.20 ms of CPU per POST (0.13-0.15 on uvloop), aiohttp 0.39-0.52, urllib3
from 64 threads 0.77-1.04, and httpx could not keep up. hookd needs one method, bytes bodies, no
redirects, no proxies, no cookies and no decompression, so the client is small; what is hard to get
right, parsing a response a hostile receiver wrote, is llhttp's (Node.js' parser) through httptools.

A response is read only as far as the caller's cap: past it the connection is closed, never drained.
A connection goes back to the pool only after a complete response that allows keep-alive; after an
error, a timeout or a cut body it is closed, because its state is unknown. Everything here runs on the
event loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import cast

import httptools

from hookd.errors import DeliveryError

#: Response headers the sender reads; every other header is ignored without being kept.
_WANTED = frozenset({b"location", b"retry-after"})


class ProtocolError(DeliveryError):
    """The receiver broke HTTP/1.1 (a malformed response, or the connection closed mid-answer)."""


@dataclass(slots=True)
class Response:
    """What a receiver answered, as far as it was read: the status and headers, and the body up to the cap."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    cut: bool = False  # the body went past the cap (or the deadline): the rest was not read


class Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, parsed by llhttp as the bytes arrive."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._response = Response()
        self._done: asyncio.Future[bool] | None = None  # result: may the connection be reused
        self._headers_done = False
        self._keep_alive = False
        self.idle_since = time.monotonic()
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            self._abort(None)  # bytes nobody asked for: the connection is not in a known state
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        done = self._done
        if done is None or done.done():
            return
        if self._headers_done and not self._keep_alive:
            done.set_result(False)  # a body delimited by the end of the connection: it ended
        else:
            self._fail(ProtocolError(f"the receiver closed the connection{f': {exc}' if exc else ''}"))

    # -- llhttp's callbacks (httptools calls them from feed_data) ----------------------------------
    def on_message_begin(self) -> None:
        if self._done is None or self._done.done():
            self._abort(None)  # a second answer to one request: the connection cannot be trusted

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in _WANTED:
            self._response.headers[lowered.decode("ascii")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            return  # informational: the real answer follows on the same connection
        self._response.status = status
        self._headers_done = True
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, chunk: bytes) -> None:
        response = self._response
        room = self._cap + 1 - len(response.body)
        response.body += chunk[:room]
        if len(response.body) > self._cap:
            response.cut = True
            self._finish(reusable=False)

    def on_message_complete(self) -> None:
        if self._headers_done:
            self._finish(reusable=self._keep_alive)

    # -- the exchange ------------------------------------------------------------------------------
    async def exchange(self, request: bytes) -> Response:
        """Send one request and read its response (to the cap). Raises `ProtocolError` or `OSError`;
        a cancellation (the deadline) leaves what was read in `partial`."""
        if self._transport is None or self.closed:
            raise ProtocolError("the connection is closed")
        self._response = Response()
        self._headers_done = self._keep_alive = False
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        try:
            reusable = await self._done
        except BaseException:
            self.close()
            raise
        if not reusable:
            self.close()
        self.idle_since = time.monotonic()
        return self._response

    @property
    def partial(self) -> Response:
        """The response as far as it arrived (after a cancelled exchange)."""
        return self._response

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()  # no graceful shutdown: nothing more is read or written

    def _finish(self, *, reusable: bool) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(reusable)

    def _fail(self, exc: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self._abort(exc)

    def _abort(self, _exc: Exception | None) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


class Pool:
    """Idle keep-alive connections per key; the key says who may share them (scheme, host, port, and
    the hook's network policy and TLS setting), so a connection is only reused under the rules it was
    opened (and checked) under."""

    def __init__(self, *, max_idle_per_key: int, idle_timeout_s: float = 15.0) -> None:
        self._idle: dict[Hashable, deque[Connection]] = {}
        self._max = max_idle_per_key
        self._timeout_s = idle_timeout_s
        self.opened = 0
        self.reused = 0

    def take(self, key: Hashable) -> Connection | None:
        """The most recently used live idle connection for `key` (it is the least likely to be stale)."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._timeout_s:
                self.reused += 1
                return conn
            conn.close()
        return None

    def give(self, key: Hashable, conn: Connection) -> None:
        if conn.closed:
            return
        idle = self._idle.setdefault(key, deque())
        if len(idle) >= self._max:
            conn.close()
            return
        idle.append(conn)

    def sweep(self) -> None:
        """Close connections idle past the timeout (so hosts no longer delivered to hold no sockets)."""
        now = time.monotonic()
        for key in list(self._idle):
            idle = self._idle[key]
            while idle and (idle[0].closed or now - idle[0].idle_since >= self._timeout_s):
                idle.popleft().close()
            if not idle:
                del self._idle[key]

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
