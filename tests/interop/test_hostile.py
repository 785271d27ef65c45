"""hookd's daemon against hostile receivers (tests/interop/hostile.py), all at once, beside a healthy
hook: each is recorded as the rules of hookd/delivery/http.py say, the request each got was the
body byte for byte and signed, hookd's memory stays bounded, and the healthy hook is delivered to,
every time, before the slowest hostile attempt even ends (its deadline)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, wait_until

from interop import hostile
from interop.harness import DELIVERY, Cases, assert_received_as_sent, peak_rss_kib

HEALTHY = "healthy"
HEALTHY_EVENTS = 10
#: How much hookd's peak resident set may grow over the whole storm: the budgets allow a few hundred
#: KiB per hostile connection; the endless header alone used to add 300 MB.
RSS_GROWTH_LIMIT_KIB = 48 * 1024

#: path -> (outcome, status, error or the start of it) of the attempt hookd records.
EXPECTED: dict[str, tuple[str, int | None, str | None]] = {
    "/endless-header": ("retryable", None, "ProtocolError: response headers exceed 65536 bytes"),
    "/endless-headers": ("retryable", None, "ProtocolError: response headers exceed 65536 bytes"),
    "/endless-1xx": ("retryable", None, "ProtocolError: response headers exceed 65536 bytes"),
    "/many-headers": ("retryable", None, "ProtocolError: response headers exceed 100 lines"),
    "/200-then-500": ("delivered", 200, None),
    "/503-then-200": ("retryable", 503, "HTTP 503"),
    "/cut-keep-alive": ("delivered", 200, "body cut: the connection closed after 10 of 1000 body bytes"),
    "/cut-close": ("delivered", 200, "body cut: the connection closed after 10 of 1000 body bytes"),
    "/cut-chunked": ("delivered", 200, "body cut: the connection closed before the last chunk, after 5 body bytes"),
    "/obs-fold": ("delivered", 200, None),
    "/cl-te": ("retryable", None, "ProtocolError: malformed response: Transfer-Encoding can't be present with"),
    "/duplicate-cl": ("retryable", None, "ProtocolError: malformed response: Duplicate Content-Length"),
    "/1xx-then-http10": ("delivered", 200, None),
    "/trickle-head": ("retryable", None, "timeout: deadline of 5 s exceeded"),
}


def _hook_id(path: str) -> str:
    return "hostile" + path.replace("/", "-")


@pytest.fixture(scope="module")
def server() -> Iterator[hostile.Hostile]:
    started = hostile.start()
    yield started
    started.close()


@pytest.fixture(scope="module")
def healthy() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def storm(
    server: hostile.Hostile, healthy: Receiver, hookd_factory: HookdFactory, amqp: Amqp, names: Names
) -> tuple[Cases, int, int]:
    """hookd with every hostile hook and a healthy one: one healthy delivery first (the baseline of its
    memory), then every hostile event at once and, once the trickle has begun, the healthy events.
    Returns the cases and hookd's peak RSS (KiB) before and after."""
    hooks = {_hook_id(path): Cases.hook(_hook_id(path), server.url(path)) for path in hostile.SCRIPTS}
    hooks[HEALTHY] = Cases.hook(HEALTHY, healthy.url("/healthy"))
    daemon = hookd_factory.start(list(hooks.values()), delivery=DELIVERY)
    cases = Cases(daemon, amqp, names, hooks)
    cases.publish(HEALTHY)
    cases.wait_attempts(HEALTHY)
    before = peak_rss_kib(daemon.pid)
    for path in hostile.SCRIPTS:
        cases.publish(_hook_id(path))
    wait_until(lambda: "/trickle-head" in server.started, what="the trickling answer to begin")
    for _ in range(HEALTHY_EVENTS):
        cases.publish(HEALTHY)
    for path in hostile.SCRIPTS:
        cases.wait_attempts(_hook_id(path))
    cases.wait_attempts(HEALTHY, count=1 + HEALTHY_EVENTS)
    return cases, before, peak_rss_kib(daemon.pid)


@pytest.mark.parametrize("path", list(hostile.SCRIPTS))
def test_each_hostile_answer_is_recorded_by_the_rules(
    server: hostile.Hostile, storm: tuple[Cases, int, int], path: str
) -> None:
    """The attempt line says what the rules make of the answer; the request was the body, signed."""
    cases = storm[0]
    [case] = cases.sent[_hook_id(path)]
    attempt = cases.attempt_for(case)
    outcome, status, error = EXPECTED[path]
    assert (attempt["outcome"], attempt["status"]) == (outcome, status), attempt
    assert attempt["error"] == error or (error is not None and str(attempt["error"]).startswith(error)), attempt
    [(headers, body)] = [(h, b) for h, b in server.requests_to(path) if h["x-hook-delivery"] == attempt["delivery_id"]]
    assert_received_as_sent(case, headers, body)


def test_endless_answers_are_cut_off_early(server: hostile.Hostile, storm: tuple[Cases, int, int]) -> None:
    """hookd hangs up on an endless answer long before it ends: the receiver could not send 256 MB."""
    assert storm
    for path in ("/endless-header", "/endless-headers", "/endless-1xx"):
        wait_until(lambda p=path: p in server.sent, what=f"{path} to notice hookd hung up")
        assert server.sent[path] < hostile.ENDLESS_LIMIT


def test_hookd_memory_stays_bounded(storm: tuple[Cases, int, int]) -> None:
    """Every hostile answer at once costs hookd less than RSS_GROWTH_LIMIT_KIB of peak resident memory."""
    _cases, before, after = storm
    assert after - before < RSS_GROWTH_LIMIT_KIB, (before, after)


def test_the_healthy_hook_is_delivered_to_while_the_hostile_ones_run(
    server: hostile.Hostile, healthy: Receiver, storm: tuple[Cases, int, int]
) -> None:
    """Healthy events published during the storm arrive at the first attempt, before the trickle's deadline."""
    cases = storm[0]
    wait_until(lambda: "/trickle-head" in server.ended, what="the trickle to end")
    trickle_ended = server.ended["/trickle-head"]
    received = {r.delivery: r for r in healthy.requests("/healthy")}
    for case in cases.sent[HEALTHY]:
        attempt = cases.attempt_for(case)
        assert (attempt["outcome"], attempt["attempt"]) == ("delivered", 1), attempt
        request = received[attempt["delivery_id"]]
        assert_received_as_sent(case, {k.lower(): v for k, v in request.headers.items()}, request.body)
        assert request.at < trickle_ended
