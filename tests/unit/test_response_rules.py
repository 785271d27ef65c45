"""The rules the delivery client reads a response by (hookd/delivery/http.py), each against a raw-socket
receiver on loopback that breaks HTTP/1.1 in one way: the head's budget, one answer per request, cut
bodies, obs-fold, smuggling shapes, Keep-Alive, the resend on a reused connection, stored URLs."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from support.scripted import Script, ScriptedReceiver, read_request, wait_for_hangup
from support.syncsender import SyncSender

from hookd.delivery import Sender
from hookd.delivery.http import MAX_HEAD_BYTES, MAX_HEADER_LINES
from hookd.messages import Delivery
from hookd.outcomes import Verdict
from hookd.subscriptions.model import Hook

Serve = Callable[[Script], ScriptedReceiver]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture(scope="module")
def sender() -> Iterator[SyncSender]:
    """One sender for the module (each test's receiver has a port, hence a pool key, of its own)."""
    made = SyncSender(timeout_s=5.0, max_response_bytes=64)
    yield made
    made.close()


def _hook(url: str) -> Hook:
    return Hook(id="h1", account_id="acme", url=url, events=("job",), secret="s3cr3t-value-1234")


def _delivery() -> Delivery:
    return Delivery("h1", "job.failed", "evt-1", "acme", "d-1", b'{"id": 7}')


def _answer(response: bytes) -> Script:
    def script(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(response)

    return script


def _endless(head: bytes, piece: bytes, sent: list[int]) -> Script:
    """Send `head`, then `piece` again and again until the client hangs up (or 64 MB went out)."""

    def script(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(head)
        total = len(head)
        try:
            while total < 64 * 1024 * 1024:
                conn.sendall(piece)
                total += len(piece)
        finally:
            sent.append(total)

    return script


def _keep_answering(answer: bytes) -> Script:
    def script(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(answer)
        while read_request(conn):
            conn.sendall(answer)

    return script


# -- 1. the head's budget ----------------------------------------------------------------------------------
def test_an_endless_header_fails_the_attempt_at_the_budget(serve: Serve, sender: SyncSender) -> None:
    """A header value that never ends stops being read at 64 KiB: a retryable attempt that says why."""
    sent: list[int] = []
    receiver = serve(_endless(b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536, sent))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE and result.status is None
    assert result.error == f"ProtocolError: response headers exceed {MAX_HEAD_BYTES} bytes"
    receiver.close()
    assert sent and sent[0] < 64 * 1024 * 1024  # the receiver's writes failed: hookd hung up


def test_too_many_headers_fail_the_attempt(serve: Serve, sender: SyncSender) -> None:
    """More than 100 header lines, however short, fail the attempt: the count is budgeted too."""
    receiver = serve(_answer(b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 150 + b"Content-Length: 2\r\n\r\nok"))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE
    assert result.error == f"ProtocolError: response headers exceed {MAX_HEADER_LINES} lines"


def test_endless_informational_answers_fail_the_attempt(serve: Serve, sender: SyncSender) -> None:
    """1xx heads count against the same budget: endless 100 Continue lines end the attempt."""
    sent: list[int] = []
    receiver = serve(_endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 100, sent))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert result.verdict is Verdict.RETRYABLE and "response headers exceed" in (result.error or "")


def test_endless_trailers_cut_the_body_of_an_answer_that_counts(serve: Serve, sender: SyncSender) -> None:
    """After a complete head, endless chunk extensions or trailers are budgeted: the 200 counts, cut."""
    sent: list[int] = []
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: "
    receiver = serve(_endless(head, b"t" * 65536, sent))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status) == (Verdict.DELIVERED, 200)
    assert (result.error or "").startswith("body cut: chunk lines and trailers exceed")


# -- 2. one answer per request -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("both", "verdict", "status"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" b"HTTP/1.1 500 No\r\nContent-Length: 0\r\n\r\n",
         Verdict.DELIVERED, 200),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n" b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
         Verdict.RETRYABLE, 503),
        (b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n" b"HTTP/1.1 500 No\r\n\r\n",
         Verdict.DELIVERED, 204),
    ],
)  # fmt: skip
def test_a_second_response_in_the_same_write_never_replaces_the_first(
    serve: Serve, sender: SyncSender, both: bytes, verdict: Verdict, status: int
) -> None:
    """Two answers in one write: the first is the answer, and the connection is not reused."""
    receiver = serve(_keep_answering(both))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status) == (verdict, status)
    sender.attempt(_hook(receiver.url()), _delivery(), 2)
    assert receiver.accepted == 2


# -- 3. cut bodies -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
         "body cut: the connection closed after 10 of 1000 body bytes"),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
         "body cut: the connection closed after 10 of 1000 body bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
         "body cut: the connection closed before the last chunk, after 5 body bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
         "body cut: malformed body: Invalid character in chunk size before the last chunk, after 5 body bytes"),
        (b"HTTP/1.0 200 OK\r\n\r\nclose-delimited", None),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited", None),
    ],
)  # fmt: skip
def test_a_complete_head_counts_and_a_cut_body_is_said_in_error(
    serve: Serve, sender: SyncSender, answer: bytes, error: str | None
) -> None:
    """A 2xx with a complete head is a delivery whatever its body; a body cut short is never silent."""
    receiver = serve(_answer(answer))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status, result.error) == (Verdict.DELIVERED, 200, error)


def test_a_cut_body_does_not_change_a_failure_status(serve: Serve, sender: SyncSender) -> None:
    """A 500 with a cut body stays a retryable 500, and its error names both."""
    receiver = serve(_answer(b"HTTP/1.1 500 Oops\r\nContent-Length: 50\r\n\r\nshort"))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status) == (Verdict.RETRYABLE, 500)
    assert result.error == "HTTP 500; body cut: the connection closed after 5 of 50 body bytes"


def test_a_head_cut_short_is_no_answer(serve: Serve, sender: SyncSender) -> None:
    """A connection closed in the middle of the head is no response: retryable, without a status."""
    receiver = serve(_answer(b"HTTP/1.1 200 OK\r\nContent-Le"))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status) == (Verdict.RETRYABLE, None)
    assert "in the middle of the response head" in (result.error or "")


# -- 5. obs-fold; smuggling shapes ---------------------------------------------------------------------------
def test_a_folded_header_is_accepted_and_unfolded(serve: Serve, sender: SyncSender) -> None:
    """obs-fold (RFC 9112 §5.2) is read as spaces: the 429's folded Retry-After is honoured."""
    answer = b"HTTP/1.1 429 Slow\r\nX-Long: a\r\n b\r\n\tc\r\nRetry-After:\r\n 120\r\nContent-Length: 0\r\n\r\n"
    receiver = serve(_answer(answer))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status, result.retry_after_s) == (Verdict.RETRYABLE, 429, 120.0)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\n",
    ],
)
def test_ambiguous_framing_is_a_malformed_answer(serve: Serve, sender: SyncSender, head: bytes) -> None:
    """Smuggling shapes (CL with TE, repeated or invalid CL, bare LF) are discarded: no status, retryable."""
    receiver = serve(_answer(head + b"2\r\nok\r\n0\r\n\r\n"))
    result = sender.attempt(_hook(receiver.url()), _delivery(), 1)
    assert (result.verdict, result.status) == (Verdict.RETRYABLE, None)
    assert (result.error or "").startswith("ProtocolError: malformed response")


# -- 7. keep-alive -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("timeout", "connections"), [(b"0", 2), (b"5", 1)])
def test_keep_alive_timeout_is_honoured(serve: Serve, timeout: bytes, connections: int) -> None:
    """`Keep-Alive: timeout=0` keeps nothing idle; `timeout=5` lets the next attempt reuse the connection."""
    receiver = serve(_keep_answering(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=" + timeout + b"\r\n" + OK[17:]))
    with SyncSender(timeout_s=5.0) as sender:  # its own: closing it hangs up the kept connection
        for number in (1, 2):
            assert sender.attempt(_hook(receiver.url()), _delivery(), number).verdict is Verdict.DELIVERED
    assert receiver.accepted == connections


def test_a_reused_connection_that_answered_a_byte_is_not_resent(serve: Serve, sender: SyncSender) -> None:
    """A reused connection that began to answer and then closed is a failed attempt, never resent."""

    def then_half(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(OK)
        if read_request(conn):
            conn.sendall(b"HTTP/1.1 20")

    receiver = serve(then_half)
    assert sender.attempt(_hook(receiver.url()), _delivery(), 1).verdict is Verdict.DELIVERED
    result = sender.attempt(_hook(receiver.url()), _delivery(), 2)
    assert (result.verdict, result.status) == (Verdict.RETRYABLE, None)
    assert receiver.accepted == 1 and len(receiver.requests) == 1  # the second request went on the first connection


# -- 4 and 6. what is stored is what is sent ----------------------------------------------------------------
def test_an_international_name_is_resolved_and_sent_as_its_idna_2008_form(serve: Serve) -> None:
    """https://faß.de/ goes to xn--fa-hia.de (never fass.de): in the lookup and in the Host header."""
    receiver = serve(_answer(OK))
    looked_up: list[str] = []

    def dns(host: str, _port: int, _allow_private: bool) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    with SyncSender(timeout_s=5.0, address_check=dns) as idna_sender:
        result = idna_sender.attempt(_hook(f"http://faß.de:{receiver.port}/in"), _delivery(), 1)
    assert result.verdict is Verdict.DELIVERED
    assert looked_up == ["xn--fa-hia.de"]
    assert f"\r\nHost: xn--fa-hia.de:{receiver.port}\r\n".encode() in receiver.requests[0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/in\r\nX-Evil: 1", "must not contain a carriage return"),
        ("http://127.0.0.1:{port}/i\tn", "must not contain a tab"),
        ("  http://127.0.0.1:{port}/in", "must not contain a space"),
        ("http://2130706433:{port}/in", "write it as 127.0.0.1"),
        ("http://exa mple.com:{port}/in", "must not contain a space"),
    ],
)
def test_a_stored_url_the_rules_refuse_is_a_permanent_failure_without_a_connection(
    serve: Serve, sender: SyncSender, url: str, reason: str
) -> None:
    """An old row whose URL the rules now refuse is never stripped and sent: permanent, with the rule."""
    receiver = serve(_answer(OK))
    result = sender.attempt(_hook(url.format(port=receiver.port)), _delivery(), 1)
    assert result.verdict is Verdict.PERMANENT and (result.error or "").startswith("url: ")
    assert reason in (result.error or "")
    assert receiver.accepted == 0


def test_the_request_target_is_sent_exactly_as_stored(serve: Serve, sender: SyncSender) -> None:
    """Path and query go on the request line byte for byte as the URL has them, percent-escapes included."""
    receiver = serve(_answer(OK))
    sender.attempt(_hook(receiver.url("/a%2Fb/c;d=1?x=%41&y=~!$'()*+,;=:@/?")), _delivery(), 1)
    assert receiver.requests[0].startswith(b"POST /a%2Fb/c;d=1?x=%41&y=~!$'()*+,;=:@/? HTTP/1.1\r\n")


# -- closing ---------------------------------------------------------------------------------------------------
def test_close_closes_the_pooled_connections_and_the_dns_threads(serve: Serve) -> None:
    """close(), called after the loop stopped, hangs up every kept-alive connection and stops dns threads."""
    hung_up: list[bool] = []

    def answer_then_wait(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(OK)
        hung_up.append(wait_for_hangup(conn))

    receiver = serve(answer_then_wait)
    made = SyncSender(timeout_s=5.0, address_check=lambda _host, _port, _allow: ["127.0.0.1"])
    assert made.attempt(_hook(receiver.url(host="localhost")), _delivery(), 1).verdict is Verdict.DELIVERED
    assert made.sender.pool.idle == 1 and made.sender.resolver is not None and made.sender.resolver.threads == 1
    made.close()
    receiver.close()  # joins the script's thread, which returns once hookd hung up (or after its 5 s timeout)
    assert hung_up == [True]
    assert made.sender.pool.idle == 0 and made.sender.resolver.threads == 0


def test_close_from_another_thread_hands_the_work_to_the_running_loop(serve: Serve) -> None:
    """close() called on the main thread while the engine's loop runs elsewhere closes the pool on that loop."""
    hung_up: list[bool] = []

    def answer_then_wait(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(OK)
        hung_up.append(wait_for_hangup(conn))

    receiver = serve(answer_then_wait)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-engine")
    thread.start()
    try:
        made = Sender(timeout_s=5.0)
        delivered = asyncio.run_coroutine_threadsafe(made.attempt(_hook(receiver.url()), _delivery(), 1), loop)
        assert delivered.result(10).verdict is Verdict.DELIVERED and made.pool.idle == 1
        made.close()
        assert made.pool.idle == 0
        receiver.close()
        assert hung_up == [True]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
