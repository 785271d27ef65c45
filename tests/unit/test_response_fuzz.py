"""Fuzzing the response path: any bytes a receiver sends, split across reads at any points, give an answer
or a ProtocolError, never another exception, and never more memory than the budgets allow.

The connection is driven without a socket (a stand-in transport records writes and aborts), so
thousands of responses cost seconds. `HOOKD_FUZZ_EXAMPLES` sets how many examples each property
runs (default 300, what `make test` runs); a longer run, e.g. before a release or after touching
hookd/delivery/http.py:

    HOOKD_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/unit/test_response_fuzz.py
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookd.delivery.http import MAX_HEAD_BYTES, Connection, ProtocolError

FUZZ = settings(
    max_examples=int(os.environ.get("HOOKD_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CAP = 64


class _Wire:
    """The transport's part a connection uses: writes are kept, an abort is remembered."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True


@dataclass(frozen=True)
class Read:
    """What one exchange came to: an answer (status, body as read, capped, cut or not) or an error."""

    status: int | None
    body: bytes
    capped: bool
    cut: bool
    error: str | None
    reusable: bool


def read(chunks: Iterable[bytes], *, eof: bool = True) -> Read:
    """Drive one exchange over `chunks` (one read each); then the end of the connection (`eof`) or,
    when the exchange is still waiting, the deadline."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_exchange(chunks, eof))
    finally:
        loop.close()


async def _exchange(chunks: Iterable[bytes], eof: bool) -> Read:
    conn = Connection(CAP)
    wire = _Wire()
    conn.connection_made(wire)  # type: ignore[arg-type]
    task = asyncio.ensure_future(conn.exchange(b"POST / HTTP/1.1\r\n\r\n"))
    await asyncio.sleep(0)
    for chunk in chunks:
        if wire.aborted or task.done():
            break  # an aborted transport delivers nothing more; a finished exchange reads no more
        conn.data_received(chunk)
    if wire.aborted or (eof and not task.done()):
        conn.connection_lost(None)
    await asyncio.sleep(0)
    if not task.done():
        task.cancel()  # the deadline: what arrived is all there is
    try:
        response = await task
    except ProtocolError as exc:
        return Read(None, b"", False, False, str(exc), False)
    except asyncio.CancelledError:
        response = conn.partial
        if response.status is None:
            return Read(None, b"", False, False, "deadline", False)
        return Read(response.status, bytes(response.body), response.capped, not conn.complete, None, False)
    return Read(response.status, bytes(response.body), response.capped, response.cut is not None, None, not conn.closed)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a] or [b""]


# -- responses that follow a grammar, with an oracle --------------------------------------------------------
_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda n: n.strip("-") and n.lower() not in ("content-length", "transfer-encoding", "connection", "keep-alive")
)
_values = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ;=,/", max_size=30).map(str.strip)


@st.composite
def _responses(draw: st.DrawFn) -> tuple[bytes, int, bytes, bool]:
    """A valid response: (bytes, status, body, framed). Headers may be folded, the body framed by
    Content-Length, chunks or the end of the connection, and 1xx answers may come first."""
    status = draw(st.sampled_from([200, 201, 202, 204, 301, 400, 404, 410, 429, 500, 503]))
    body = b"" if status == 204 else draw(st.binary(max_size=200))
    framing = "none" if status == 204 else draw(st.sampled_from(["length", "chunked", "close"]))
    lines = [f"HTTP/1.1 {status} Reason"]
    for name, value in draw(st.lists(st.tuples(_tokens, _values), max_size=8)):
        folded = draw(st.booleans()) and value
        lines.append(f"{name}: {value[:3]}\r\n {value[3:]}" if folded else f"{name}: {value}")
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
    elif framing == "close":
        lines.append("Connection: close")
    head = "".join(line + "\r\n" for line in lines).encode() + b"\r\n"
    if framing == "chunked":
        sizes = draw(st.lists(st.integers(1, 50), max_size=10))
        pieces, at = [], 0
        for size in sizes:
            if at >= len(body):
                break
            pieces.append(body[at : at + size])
            at += size
        if at < len(body):
            pieces.append(body[at:])
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        encoded = body
    informational = b"HTTP/1.1 100 Continue\r\n\r\n" * draw(st.integers(0, 2))
    return informational + head + encoded, status, body, framing != "close"


@FUZZ
@given(_responses(), st.lists(st.integers(0, 10_000), max_size=6))
def test_a_valid_response_is_read_the_same_however_it_is_split(
    response: tuple[bytes, int, bytes, bool], cuts: list[int]
) -> None:
    """Status and body come out as sent, complete (not cut), whatever the reads' boundaries."""
    data, status, body, _framed = response
    got = read(_split(data, cuts))
    assert (got.status, got.error, got.cut) == (status, None, False)
    assert got.body == body[: CAP + 1]
    assert got.capped == (len(body) > CAP)


@FUZZ
@given(_responses(), _responses(), st.lists(st.integers(0, 10_000), max_size=4))
def test_a_second_response_never_changes_the_first(
    first: tuple[bytes, int, bytes, bool], second: tuple[bytes, int, bytes, bool], cuts: list[int]
) -> None:
    """What follows a complete framed response never becomes its answer, and the connection is not reused."""
    data, status, body, framed = first
    if not framed:
        return  # a close-delimited body swallows what follows: that is its framing
    got = read(_split(data + second[0], cuts))
    assert (got.status, got.body, got.error) == (status, body[: CAP + 1], None)
    assert not got.reusable


@FUZZ
@given(_responses(), st.data())
def test_a_response_cut_anywhere_is_an_error_or_an_answer_that_says_so(
    response: tuple[bytes, int, bytes, bool], data: st.DataObject
) -> None:
    """Cut in the head: an error. Cut in a framed body: the status counts and the cut is reported."""
    raw, status, body, framed = response
    at = data.draw(st.integers(0, len(raw) - 1))
    got = read([raw[:at]])
    if got.status is None:
        assert got.error is not None
        return
    assert got.status == status
    assert body.startswith(got.body) or got.capped
    if framed and not got.capped:
        assert got.cut or got.body == body[: CAP + 1]


# -- any bytes at all -------------------------------------------------------------------------------------------
_junk = st.one_of(
    st.binary(max_size=600),
    st.lists(
        st.sampled_from(
            [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 100 X\r\n", b"Content-Length: 5\r\n", b"Content-Length: 9\r\n",
             b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n", b" folded\r\n", b"\r\n", b"\n", b"5\r\n",
             b"hello", b"0\r\n", b"X: y\r\n", b"HTTP/1.1 500 E\r\n", b"Keep-Alive: timeout=3\r\n", b"\x00", b"ff;x\r\n"]
        ),
        max_size=25,
    ).map(b"".join),
)  # fmt: skip


@FUZZ
@given(_junk, st.lists(st.integers(0, 10_000), max_size=6), st.booleans())
def test_any_bytes_give_an_answer_or_a_protocol_error(data: bytes, cuts: list[int], eof: bool) -> None:
    """No byte sequence, split anyhow, makes the client raise anything but ProtocolError; bodies stay capped."""
    got = read(_split(data, cuts), eof=eof)
    assert got.status is not None or got.error is not None
    assert len(got.body) <= CAP + 1


@FUZZ
@given(_junk, st.lists(st.integers(0, 10_000), max_size=6))
def test_the_reads_boundaries_never_change_the_answer(data: bytes, cuts: list[int]) -> None:
    """The same bytes give the same status, body and cut whether they come in one read or many."""
    whole, split = read([data]), read(_split(data, cuts))
    assert (whole.status, whole.body, whole.cut, whole.error is None) == (
        split.status,
        split.body,
        split.cut,
        split.error is None,
    )


# -- memory ----------------------------------------------------------------------------------------------------
def _stream(prefix: bytes, piece: bytes, total: int) -> Iterator[bytes]:
    yield prefix
    for _ in range(total // len(piece)):
        yield piece


@pytest.mark.parametrize(
    ("prefix", "piece"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536),  # one endless header value
        (b"HTTP/1.1 200 OK\r\n", b"X-Many: 1\r\n" * 4096),  # endless short headers
        (b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 2048),  # endless informational answers
        (b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a"),  # a header trickled one byte per read
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", b"e" * 65536),  # endless chunk extension
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ", b"t" * 65536),  # endless trailer
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", b"b" * 65536),  # endless body
    ],
)
def test_endless_responses_cost_bounded_memory(prefix: bytes, piece: bytes) -> None:
    """Offered 16 MB (or 64 KiB a byte at a time), the client stops early and holds at most a few budgets."""
    total = 65_536 if len(piece) == 1 else 16 * 1024 * 1024
    tracemalloc.start()
    try:
        got = read(_stream(prefix, piece, total), eof=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.error is not None or got.cut or got.capped
    assert peak < 4 * MAX_HEAD_BYTES + 4 * len(piece) + 256 * 1024, peak
