"""hookd's daemon and client against real servers that others wrote (tests/interop/servers.py): every
answer each server can give (200, 204, 500, 429 with Retry-After, 410, chunked, close-delimited,
HTTP/1.0, 1xx before the answer) is recorded as what it is, the body arrives byte for byte and
signed; and their short keep-alive limits (1 s idle, 3 requests) never cost a failed attempt."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names

from interop.harness import DELIVERY, Cases, assert_received_as_sent
from interop.servers import Server, running

SERVERS = ("nginx", "nginx-tls", "node", "uvicorn-h11", "uvicorn-httptools", "hypercorn", "gunicorn", "waitress",
           "http.server")  # fmt: skip
#: Which answers each server can give (the table in servers.py says why the others cannot).
SUPPORTS = {
    "nginx": {"/close"},
    "nginx-tls": {"/close"},
    "node": {"/close", "/1xx"},
    "http.server": {"/close", "/http10"},
}
ANSWERS = ("/200", "/204", "/500", "/429", "/410", "/chunked", "/close", "/http10", "/1xx")
KEEP_ALIVE_RUN = 5  # deliveries in a row (past keepalive_requests 3), then an idle pause, then 2 more


@dataclass(frozen=True)
class Expected:
    outcome: str
    status: int
    error: str | None = None


EXPECTED = {
    "/200": Expected("delivered", 200),
    "/204": Expected("delivered", 204),
    "/500": Expected("retryable", 500, "HTTP 500"),
    "/429": Expected("retryable", 429, "HTTP 429"),
    "/410": Expected("gone", 410, "HTTP 410"),
    "/chunked": Expected("delivered", 200),
    "/close": Expected("delivered", 200),
    "/http10": Expected("delivered", 200),
    "/1xx": Expected("delivered", 200),
}
MATRIX = [
    (s, a)
    for s in SERVERS
    for a in ANSWERS
    if a in {"/200", "/204", "/500", "/429", "/410", "/chunked"} | SUPPORTS.get(s, set())
]


def _hook_id(server: str, path: str) -> str:
    return f"{server.replace('.', '-')}{path.replace('/', '-')}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Every server of the table, started once for the module, stopped after it."""
    with running(tmp_path_factory.mktemp("servers"), SERVERS) as started:
        yield started


@pytest.fixture(scope="module")
def cases(servers: dict[str, Server], hookd_factory: HookdFactory, amqp: Amqp, names: Names) -> Cases:
    """One hookd with a hook per (server, answer) and per server's keep-alive run; every answer's
    event is published at once and its first attempt awaited."""
    hooks = {_hook_id(s, a): Cases.hook(_hook_id(s, a), servers[s].url(a)) for s, a in MATRIX}
    hooks |= {_hook_id(s, "/ka"): Cases.hook(_hook_id(s, "/ka"), servers[s].url("/ka")) for s in SERVERS}
    ca = servers["nginx-tls"].ca
    assert ca is not None
    daemon = hookd_factory.start(list(hooks.values()), delivery=DELIVERY, env={"SSL_CERT_FILE": str(ca)})
    found = Cases(daemon, amqp, names, hooks)
    for server, answer in MATRIX:
        found.publish(_hook_id(server, answer))
    for server, answer in MATRIX:
        found.wait_attempts(_hook_id(server, answer))
    return found


# -- every answer ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("server", "answer"), MATRIX, ids=[f"{s}{a}" for s, a in MATRIX])
def test_each_answer_is_recorded_as_what_it_is(
    servers: dict[str, Server], cases: Cases, server: str, answer: str
) -> None:
    """The server got the body byte for byte and signed; hookd's attempt line says what it answered."""
    [case] = cases.sent[_hook_id(server, answer)]
    attempt = cases.attempt_for(case)
    expected = EXPECTED[answer]
    assert (attempt["outcome"], attempt["status"], attempt["error"], attempt["attempt"]) == (
        expected.outcome,
        expected.status,
        expected.error,
        1,
    ), attempt
    [request] = servers[server].received_for(attempt["delivery_id"])
    assert request["path"] == answer
    assert_received_as_sent(case, request["headers"], request["body"])
    if answer == "/429":  # Retry-After: 120 skips the in-process attempts and waits at least that long
        [scheduled] = cases.daemon.wait_log("delivery.retry_scheduled", hook_id=case.hook_id)
        assert scheduled["delay_s"] >= 120
    if answer == "/410":
        cases.daemon.wait_log("delivery.dead_lettered", hook_id=case.hook_id, reason="hook_gone")


@pytest.mark.parametrize(("server", "answer"), [m for m in MATRIX if m[1] in ("/chunked", "/close", "/http10", "/1xx")])
def test_the_server_really_frames_its_answer_so(servers: dict[str, Server], server: str, answer: str) -> None:
    """The shape under test is the one the server sent: chunked, close-delimited, HTTP/1.0, or 1xx first."""
    head = _raw_head(servers[server], answer)
    if answer == "/chunked":
        assert b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
    elif answer == "/close":
        assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
    elif answer == "/http10":
        assert head.startswith(b"HTTP/1.0 200")
    else:
        assert head.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 ")


def _raw_head(server: Server, path: str) -> bytes:
    """What the server sends first for `path`, up to the final answer's blank line."""
    scheme, rest = server.base_url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    sock = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    if scheme == "https":
        assert server.ca is not None
        sock = ssl.create_default_context(cafile=str(server.ca)).wrap_socket(sock, server_hostname=host)
    with sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\n{{}}".encode())
        data = b""
        while not _final_head_done(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def _final_head_done(data: bytes) -> bool:
    heads = data.split(b"\r\n\r\n")
    return len(heads) > 1 and any(not h.startswith(b"HTTP/1.1 1") for h in heads[:-1] if h.startswith(b"HTTP/"))


# -- short keep-alive limits ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keep_alive_runs(cases: Cases) -> None:
    """Per server, all at once: 5 deliveries in a row, an idle pause past the servers' 1 s keep-alive,
    then 2 more; each waits for the one before it."""
    failures: list[BaseException] = []

    def run(server: str) -> None:
        hook_id = _hook_id(server, "/ka")
        try:
            for number in range(KEEP_ALIVE_RUN + 2):
                if number == KEEP_ALIVE_RUN:
                    time.sleep(1.5)  # the behaviour under test: idle past the server's keep-alive timeout
                cases.publish(hook_id)
                cases.wait_attempts(hook_id, count=number + 1)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(server,), name=f"ka-{server}") for server in SERVERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.usefixtures("keep_alive_runs")
def test_short_keep_alive_limits_never_cost_a_failed_attempt(
    servers: dict[str, Server], cases: Cases, server: str
) -> None:
    """Past the server's request limit and idle timeout every delivery succeeds at once, and arrives once."""
    hook_id = _hook_id(server, "/ka")
    attempts = cases.attempts(hook_id)
    assert [(a["outcome"], a["attempt"]) for a in attempts] == [("delivered", 1)] * (KEEP_ALIVE_RUN + 2), attempts
    for case in cases.sent[hook_id]:
        [request] = servers[server].received_for(cases.attempt_for(case)["delivery_id"])
        assert_received_as_sent(case, request["headers"], request["body"])


def test_the_tls_server_was_reached_over_tls(servers: dict[str, Server]) -> None:
    """nginx-tls answers only TLS clients that trust the test's CA (so its cases went through TLS)."""
    tls = servers["nginx-tls"]
    port = int(tls.base_url.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection(
        "localhost", port, timeout=10, context=ssl.create_default_context(cafile=str(tls.ca))
    )
    connection.request("POST", "/200", body=b"{}")
    assert connection.getresponse().status == 200
    connection.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        http.client.HTTPSConnection("localhost", port, timeout=10, context=ssl.create_default_context()).request(
            "POST", "/200", body=b"{}"
        )
