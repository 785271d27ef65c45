"""HTTP/1.1 exchanges on asyncio connections: one request, one response, read as a hostile wrote it.

Why hookd's own client: the delivery engine keeps thousands of attempts in flight on one event-loop
thread, and a spike (bench/README.md) measured the options on this 2-core machine: a small client on
asyncio protocols cost 0.20 ms of CPU per POST (0.13-0.15 on uvloop), aiohttp 0.39-0.52, urllib3
from 64 threads 0.77-1.04, and httpx could not keep up. hookd needs one method, bytes bodies, no
redirects, no proxies, no cookies and no decompression, so the client is small; what is hard to get
right, parsing a response, is llhttp's (Node.js' parser, strict mode) through httptools.

A receiver is chosen by an account admin, not the operator, so every response is read by rules that
bound what it can cost every other hook (RFC 9112 where it has a word):
- **The head has a budget.** A response's status lines and headers, 1xx heads included, take at most
  `MAX_HEAD_BYTES` (64 KiB) and `MAX_HEADER_LINES` (100) header lines; past either the attempt fails
  (`ProtocolError: response headers exceed ...`) and the connection is closed. This module collects
  each head up to its blank line before llhttp sees it, because llhttp hands httptools a header
  value in pieces that httptools joins without a limit (an endless header grew hookd by 300 MB).
  A webhook's answer needs a few hundred bytes of head; Python's http.client stops at 100 headers,
  Node's server at 16 KiB. What follows the head and is not body (chunk-size lines, chunk
  extensions, trailers) has the same budget, plus 8 bytes per body byte (1-byte chunks cost 5):
  llhttp skips extensions without a limit and httptools joins trailer values like header values.
- **obs-fold is accepted** (RFC 9112 §5.2: a user agent must replace it with spaces): a header line
  continued on the next line is joined before llhttp reads the head. llhttp's own leniency for it
  would also let through characters that split headers, so it stays off.
- **One answer per request.** Parsing stops at the end of the first final response: bytes after it,
  in the same read (a second response: "200 then 500") or later, never change the answer read; the
  connection is closed, not reused.
- **Framing is strict**: Content-Length with Transfer-Encoding, a repeated or invalid Content-Length
  (smuggling shapes, RFC 9112 §6.3) make the response malformed; it is discarded (no status).
- **A complete head counts, whatever the body.** Once the final status line and headers are in,
  the answer counts (a 2xx is a delivery). A body that does not end as framed (the connection closes
  before Content-Length bytes or before the last chunk, a malformed chunk, the deadline) is
  never taken as complete silently: `Response.cut` says how it ended and the attempt's `error`
  carries it. A body with no Content-Length and no chunking ends with the connection (close-delimited,
  RFC 9112 §6.3 point 8): that is its end, not a cut.
- **Only the caller's cap** of a body is read (`delivery.max_response_bytes`); past it the connection
  is closed, never drained.
- A connection is offered back for reuse only after a complete response that allows keep-alive and
  nothing after it; after an error, a timeout or a cut body it is closed: its state is unknown.

Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from typing import cast

import httptools

from hookd.errors import DeliveryError

MAX_HEAD_BYTES = 65_536
MAX_HEADER_LINES = 100
#: Response headers the sender reads; every other header is ignored without being kept.
_WANTED = frozenset({b"location", b"retry-after", b"keep-alive"})
_FOLD = re.compile(rb"\r?\n[ \t]+")
_FINAL_STATUS_PREFIXES = frozenset({b"HTTP/1.1 ", b"HTTP/1.0 "})


class ProtocolError(DeliveryError):
    """The receiver broke HTTP/1.1 (a malformed response, or the connection closed mid-answer)."""


class _Stop(DeliveryError):
    """Not an error: raised in a parser callback to stop llhttp when the exchange has what it needs
    (the rest of the read is not wanted). It never leaves this module."""


@dataclass(slots=True)
class Response:
    """What a receiver answered, as far as it was read: the status and headers, and the body up to the cap."""

    status: int | None = None  # the final status; None until its head is complete
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    capped: bool = False  # the body went past the cap: the rest was not read (by design, not an error)
    cut: str | None = None  # how the body failed to end as framed, for the attempt's `error`; None: it did


class Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, its head collected here and parsed by llhttp."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._response = Response()
        self._done: asyncio.Future[bool] | None = None  # result: may the connection be reused
        self._head = bytearray()  # a head's bytes so far, until its blank line arrives
        self._scanned = 0  # how much of `_head` was searched for the blank line already
        self._head_bytes = 0  # head bytes taken in this exchange (1xx heads included)
        self._header_lines = 0
        self._final = False  # the final response's head is complete
        self._complete = False  # the final response is complete
        self._extra = False  # bytes came after it
        self._keep_alive = False
        self._length: int | None = None  # the final response's Content-Length
        self._chunked = False
        self._body_bytes = 0
        self._framing_bytes = 0  # bytes fed after the final head (body, chunk lines, trailers)
        self.received = 0  # bytes received in this exchange (0: the receiver said nothing)
        self.keep_alive_s: float | None = None  # what the last response's `Keep-Alive: timeout=N` said
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            self._abort()  # bytes nobody asked for: the connection is not in a known state
            return
        self.received += len(data)
        try:
            if self._final:
                self._feed_body(data)
            else:
                self._take_heads(data)
        except ProtocolError as exc:
            self._broken(str(exc))
        except httptools.HttpParserUpgrade:
            self._broken("the receiver switched protocols")
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                self._broken(str(cause))
            elif not isinstance(cause, _Stop):
                self._broken(f"malformed {'body' if self._final else 'response'}: {exc}")
        if self._complete:
            self._finish(reusable=self._keep_alive and not self._extra)
        elif self._response.capped:
            self._finish(reusable=False)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is None or self._done.done():
            return
        if self._complete or (self._final and self._length is None and not self._chunked):
            self._finish(reusable=False)  # complete, or a body delimited by the end of the connection
        elif self._final:
            self._response.cut = "body cut: " + self.body_progress("the connection closed")
            self._finish(reusable=False)
        else:
            when = "before answering" if self.received == 0 else "in the middle of the response head"
            self._fail(ProtocolError(f"the receiver closed the connection {when}{f': {exc}' if exc else ''}"))

    # -- llhttp's callbacks (httptools calls them from feed_data) ----------------------------------
    def on_message_begin(self) -> None:
        if self._complete:
            self._extra = True
            raise _Stop  # a second answer to one request: never read
        self._response.headers.clear()  # a 1xx head's headers are not the answer's
        self._length = None
        self._chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > MAX_HEADER_LINES:
            raise ProtocolError(f"response headers exceed {MAX_HEADER_LINES} lines")
        if self._final:
            return  # a trailer: counted, never read (it cannot change the answer)
        lowered = name.lower()
        if lowered in _WANTED:
            self._response.headers[lowered.decode("ascii")] = value.decode("latin-1")
        elif lowered == b"content-length":
            self._length = int(value) if value.strip().isdigit() else None  # llhttp refuses any other
        elif lowered == b"transfer-encoding":
            self._chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            return  # informational: the real answer follows on the same connection
        self._response.status = status
        self._final = True
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, chunk: bytes) -> None:
        self._body_bytes += len(chunk)
        body = self._response.body
        if len(body) <= self._cap:
            body += chunk[: self._cap + 1 - len(body)]
        if len(body) > self._cap:
            self._response.capped = True
            raise _Stop  # the rest is not read

    def on_message_complete(self) -> None:
        if self._final:
            self._complete = True

    # -- the exchange ------------------------------------------------------------------------------
    async def exchange(self, request: bytes) -> Response:
        """Send one request and read its response (to the cap). Raises `ProtocolError` or `OSError`;
        a cancellation (the deadline) leaves what was read in `partial`."""
        if self._transport is None or self.closed:
            raise ProtocolError("the connection is closed")
        self._begin()
        self._done = done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        try:
            reusable = await done
        except BaseException:
            self.close()
            raise
        if reusable:
            announced = self._response.headers.get("keep-alive")
            self.keep_alive_s = keep_alive_timeout(announced) if announced else None
        else:
            self.close()
        return self._response

    @property
    def partial(self) -> Response:
        """The response as far as it arrived (after a cancelled exchange)."""
        return self._response

    @property
    def complete(self) -> bool:
        """The final response arrived whole (its body may still have been capped)."""
        return self._complete

    def body_progress(self, how: str) -> str:
        """`how` the body ended, with how much of it arrived (for `Response.cut`)."""
        if self._chunked:
            return f"{how} before the last chunk, after {self._body_bytes} body bytes"
        if self._length is not None:
            return f"{how} after {self._body_bytes} of {self._length} body bytes"
        return f"{how} after {self._body_bytes} body bytes"

    def close(self) -> None:
        self._abort()  # no graceful shutdown: nothing more is read or written

    # -- inside ------------------------------------------------------------------------------------
    def _begin(self) -> None:
        self._response = Response()
        self._head.clear()
        self._scanned = self._head_bytes = self._header_lines = self._body_bytes = self._framing_bytes = 0
        self.received = 0
        self._final = self._complete = self._extra = self._keep_alive = self._chunked = False
        self._length = None

    def _take_heads(self, data: bytes) -> None:
        """Collect each head to its blank line (within the budget), unfold it, give it to llhttp; then the
        rest of the read. A whole response in one read (the usual case) is never copied into `_head`."""
        if not self._head and self._whole_final_head(data):
            return
        if self._head:
            self._head += data
            pending: bytes | bytearray = self._head
        else:
            pending = data
        start = 0
        while not self._final:
            end = _head_end(pending, max(start, self._scanned - 3))
            if end < 0:
                if self._head_bytes + len(pending) - start > MAX_HEAD_BYTES:
                    raise ProtocolError(f"response headers exceed {MAX_HEAD_BYTES} bytes")
                if pending is not self._head or start:
                    self._head = bytearray(pending[start:])
                self._scanned = len(self._head)
                return
            self._head_bytes += end - start
            if self._head_bytes > MAX_HEAD_BYTES:
                raise ProtocolError(f"response headers exceed {MAX_HEAD_BYTES} bytes")
            head = pending[start:end]
            if b"\n " in head or b"\n\t" in head:
                head = _unfold(bytes(head))
            start, self._scanned = end, 0
            self._parser.feed_data(head)
        rest = pending[start:]
        if pending is self._head:
            self._head = bytearray()
        self._scanned = 0
        if rest:
            self._feed_body(rest)

    def _whole_final_head(self, data: bytes) -> bool:
        """The usual case, taken in one call to llhttp: the read holds a whole final head (no 1xx first),
        within the budget and without obs-fold. False, with nothing done, for any other read."""
        end = data.find(b"\r\n\r\n")
        if (
            end < 12
            or end >= MAX_HEAD_BYTES - 4
            or data[:9] not in _FINAL_STATUS_PREFIXES
            or data[9:10] == b"1"
            or data.find(b"\n ", 0, end) >= 0
            or data.find(b"\n\t", 0, end) >= 0
        ):
            return False
        self._head_bytes = end + 4
        self._framing_bytes = -self._head_bytes  # the body's share of this read is counted by _feed_body
        self._feed_body(data)
        return True

    def _feed_body(self, data: bytes | bytearray) -> None:
        """Past the final head: llhttp reads the body. What is not body (chunk lines, extensions,
        trailers) is bounded too: llhttp skips extensions without a limit and httptools joins
        trailer values as it does header values."""
        self._framing_bytes += len(data)
        self._parser.feed_data(data)
        if not self._complete and self._framing_bytes - self._body_bytes > MAX_HEAD_BYTES + 8 * self._body_bytes:
            raise ProtocolError(f"chunk lines and trailers exceed {MAX_HEAD_BYTES} bytes")

    def _broken(self, reason: str) -> None:
        """The receiver broke HTTP/1.1: before the final head the attempt fails; after it the answer
        stands, with its body cut; after the whole answer, only the connection is given up."""
        if self._complete:
            self._extra = True  # e.g. data after `Connection: close`: the answer stands
        elif self._final:
            self._response.cut = "body cut: " + self.body_progress(reason)
            self._finish(reusable=False)
        else:
            self._fail(ProtocolError(reason))

    def _finish(self, *, reusable: bool) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(reusable)

    def _fail(self, exc: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self._abort()

    def _abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed already (see Sender.close)
                self._transport.abort()


def keep_alive_timeout(value: str | None) -> float | None:
    """The `timeout=N` of a `Keep-Alive` header (seconds), or None when absent or unreadable."""
    if not value:
        return None
    for part in value.split(","):
        name, _, number = part.partition("=")
        if name.strip().lower() == "timeout":
            number = number.strip()
            return float(number) if number.isdigit() and len(number) < 8 else None
    return None


def _head_end(pending: bytes | bytearray, start: int) -> int:
    """Where the head that begins in `pending` ends (after its blank line), or -1 while it has not."""
    end = pending.find(b"\r\n\r\n", start)
    if end >= 0:
        return end + 4
    end = pending.find(b"\n\n", start)  # bare LF lines: llhttp refuses them, with its reason
    return end + 2 if end >= 0 else -1


def _unfold(head: bytes) -> bytes:
    """RFC 9112 §5.2: each obs-fold (a line break then spaces or tabs) becomes one space; the status
    line is left as it is (a header section may not begin with a folded line)."""
    first, newline, fields = head.partition(b"\n")
    return first + newline + _FOLD.sub(b" ", fields)
