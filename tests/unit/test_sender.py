"""delivery.Sender and its HTTP/1.1 client, against receivers on loopback that answer exactly as scripted:
the deadline bounds every step, bodies are read only to the cap, connections are reused only when clean."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from support.scripted import Script, ScriptedReceiver, read_request
from support.syncsender import SyncSender

from hookd.messages import Delivery
from hookd.outcomes import Verdict
from hookd.subscriptions.model import Hook

BODY = b'{"id": 7, "status": "failed"}'
SECRET = "s3cr3t-value-1234"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def sender() -> Iterator[SyncSender]:
    made = SyncSender(timeout_s=1.0, max_response_bytes=64)
    yield made
    made.close()


def _hook(url: str, **fields: object) -> Hook:
    return Hook(id="h1", account_id="acme", url=url, events=("job",), secret=SECRET, **fields)  # type: ignore[arg-type]


def _delivery() -> Delivery:
    return Delivery("h1", "job.failed", "evt-1", "acme", "d-1", BODY)


def _answer(response: bytes) -> Script:
    def script(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(response)

    return script


def test_a_delivery_is_posted_signed_and_answered(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """The request carries the body byte for byte, the hook's headers and a verifiable signature."""
    receiver = serve(_answer(OK))
    result = sender.attempt(_hook(receiver.url("/in?x=1")), _delivery(), 3)
    assert (result.verdict, result.status, result.excerpt) == (Verdict.DELIVERED, 200, "ok")
    [request] = receiver.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert lines[0] == "POST /in?x=1 HTTP/1.1"
    assert body == BODY
    assert headers["host"] == f"127.0.0.1:{receiver.port}"
    assert headers["x-hook-attempt"] == "3" and headers["x-hook-delivery"] == "d-1"
    assert headers["x-hook-signature"] == hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def test_a_kept_alive_connection_is_reused(serve: Callable[[Script], ScriptedReceiver], sender: SyncSender) -> None:
    """Two attempts to the same receiver share one connection when the answer allows keep-alive."""

    def two(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(OK)
        if read_request(conn):
            conn.sendall(OK)

    receiver = serve(two)
    for number in (1, 2):
        assert sender.attempt(_hook(receiver.url()), _delivery(), number).verdict is Verdict.DELIVERED
    assert receiver.accepted == 1 and sender.sender.pool.reused == 1


def test_a_connection_the_receiver_closed_while_idle_is_replaced_without_a_failed_attempt(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """A pooled connection closed by the receiver is retried once on a new one, inside the same attempt."""
    receiver = serve(_answer(OK))  # answers one request per connection, then closes it
    assert sender.attempt(_hook(receiver.url()), _delivery(), 1).verdict is Verdict.DELIVERED
    assert receiver.wait_closed(1)  # the connection in the pool is closed on the other end now
    assert sender.attempt(_hook(receiver.url()), _delivery(), 2).verdict is Verdict.DELIVERED
    assert receiver.accepted == 2


def test_a_body_past_the_cap_is_cut_and_the_connection_not_reused(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """Only the cap (64 bytes here) is read; the rest is dropped with the connection."""
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000
    receiver = serve(_answer(big))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.DELIVERED and result.error is None
    assert sender.sender.pool.reused == 0
    assert sender.attempt(_hook(receiver.url()), _delivery(), 2).verdict is Verdict.DELIVERED
    assert receiver.accepted == 2


def test_chunked_answers_after_an_informational_one_are_read(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """A 100 Continue before the answer, and a chunked body, are both understood."""
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"
    )
    receiver = serve(_answer(answer))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status, result.excerpt, result.retry_after_s) == (
        Verdict.RETRYABLE,
        503,
        "busy",
        7.0,
    )


def test_a_trickling_body_is_cut_at_the_deadline_and_the_answer_still_counts(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """The status arrived in time: the delivery counts, and its error says the deadline cut the body."""

    def trickle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        for _ in range(40):
            conn.sendall(b"x")
            time.sleep(0.1)

    receiver = serve(trickle)
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.DELIVERED and result.status == 200
    assert (result.error or "").startswith("timeout: deadline of 1 s exceeded while reading the response body after ")
    assert (result.error or "").endswith(" of 40 body bytes")


def test_a_receiver_that_never_answers_times_out(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """No status before the deadline: a retryable timeout."""
    receiver = serve(lambda _conn, _request: time.sleep(3))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE and result.status is None
    assert result.error == "timeout: deadline of 1 s exceeded"


def test_the_deadline_bounds_name_resolution(serve: Callable[[Script], ScriptedReceiver]) -> None:
    """A resolver that answers only after the deadline is cut by it: the attempt is a timeout, not a success."""
    receiver = serve(_answer(OK))

    def slow_dns(_host: str, _port: int, _allow_private: bool) -> list[str]:
        time.sleep(2)
        return ["127.0.0.1"]

    with SyncSender(timeout_s=0.5, address_check=slow_dns) as slow:
        result = slow.attempt(_hook(f"http://slow.example:{receiver.port}/in"), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE and result.error == "timeout: deadline of 0.5 s exceeded"
    assert receiver.accepted == 0


def test_the_deadline_bounds_the_tls_handshake(serve: Callable[[Script], ScriptedReceiver], sender: SyncSender) -> None:
    """A server that accepts the connection but never speaks TLS holds the attempt only until the deadline."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        result = sender.attempt(_hook(f"https://127.0.0.1:{port}/in"), _delivery(), 1)
    finally:
        listener.close()
    assert result.verdict is Verdict.RETRYABLE and result.error == "timeout: deadline of 1 s exceeded"


def test_a_malformed_answer_is_retryable(serve: Callable[[Script], ScriptedReceiver], sender: SyncSender) -> None:
    """Bytes that are not HTTP are a protocol error: retryable, with the reason."""
    receiver = serve(_answer(b"SSH-2.0-OpenSSH\r\n\r\n"))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE and (result.error or "").startswith("ProtocolError: malformed response")


def test_a_header_value_with_a_line_break_is_refused_before_sending(
    serve: Callable[[Script], ScriptedReceiver], sender: SyncSender
) -> None:
    """A hook id that would split a header is a permanent failure, and nothing is sent."""
    receiver = serve(_answer(OK))
    hook = Hook(id="h1\r\nX-Evil: 1", account_id="acme", url=receiver.url(), events=("job",), secret=SECRET)
    result = sender.attempt(hook, _delivery(), 1)
    assert result.verdict is Verdict.PERMANENT and receiver.accepted == 0


def test_a_refused_connection_is_retryable(sender: SyncSender) -> None:
    """Nobody listening: a retryable connection error."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    result = sender.attempt(_hook(f"http://127.0.0.1:{port}/in"), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE and "cannot connect" in (result.error or "")
