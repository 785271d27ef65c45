"""Retryable failures: the durable schedule is followed to the dead-letter queue, and Retry-After is honoured."""

from __future__ import annotations

import math
import threading
from email.utils import formatdate
from typing import Any

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, settle

from .harness import dead_letters, delivery, publish_events, wait_accepted
from .ledger import DeadLetter, classify
from .receiver import FaultReceiver, Reply, Request, Script

RETRY_DELAYS_S = [1, 2]
INLINE_ATTEMPTS = 2
JITTER = 0.2


def test_failing_hook_follows_the_schedule_then_dead_letters(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """500 forever: 2 inline attempts per step of a [1, 2] s schedule (6 in all), then retries_exhausted."""
    receiver.on("/down", Script(then=500))
    daemon = hookd.start(
        [hook_entry("down", receiver.url("/down"))],
        delivery=delivery(retry_delays_s=RETRY_DELAYS_S, inline_attempts=INLINE_ATTEMPTS, retry_jitter=JITTER),
    )
    [event_id] = publish_events(amqp, prefix, 1)

    [got] = amqp.wait_messages(prefix.dead, 1, timeout_s=20)
    settle(0.5)  # a seventh attempt would show up now
    tries = receiver.requests("/down")
    assert [r.attempt for r in tries] == [1, 2, 3, 4, 5, 6]
    assert len({r.delivery for r in tries}) == 1
    # the gap before each durable step: from the last attempt of a group to the first of the next
    gaps = [tries[(step + 1) * INLINE_ATTEMPTS].at - tries[(step + 1) * INLINE_ATTEMPTS - 1].at for step in range(2)]
    print(f"gaps before the durable retries: {[round(g, 2) for g in gaps]} s for delays {RETRY_DELAYS_S} s")
    for gap, delay in zip(gaps, RETRY_DELAYS_S, strict=True):
        assert gap >= delay * (1 - JITTER)

    letter = DeadLetter.from_headers(got.headers)
    assert letter.reason == "retries_exhausted"
    assert got.headers.get("attempts") == 6
    daemon.wait_log("delivery.dead_lettered", hook_id="down", reason="retries_exhausted")
    tally = classify([(event_id, "down")], receiver.receipts(), [letter], label="500 forever")
    assert tally.counts() == {"delivered": 0, "duplicated": 0, "lost": 0, "dead_lettered": 1}


RETRY_AFTER_CASES = [(429, "seconds"), (429, "http-date"), (503, "seconds")]


class BusyUntilDate:
    """Answers the first request `status` with a Retry-After HTTP-date 3 to 4 s after that request
    (HTTP-dates have whole seconds), every later one 200. The date is taken when the request comes,
    not when the test starts: how long hookd took to get there is not the delay under test."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.not_before: float | None = None
        self._lock = threading.Lock()

    def respond(self, handler: Any, request: Request) -> None:
        with self._lock:
            first = self.not_before is None
            if first:
                self.not_before = math.ceil(request.wall) + 4
        if first:
            assert self.not_before is not None
            reply = Reply(self.status, {"Retry-After": formatdate(self.not_before, usegmt=True)})
            Script(reply).respond(handler, request)
        else:
            Script().respond(handler, request)


@pytest.mark.parametrize("case", RETRY_AFTER_CASES, ids=["429-s", "429-date", "503-s"])
def test_retry_after_is_honoured(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names, case: tuple[int, str]
) -> None:
    """A 429 or 503 with Retry-After (3 s, or an HTTP-date 3-4 s ahead) is retried no earlier than asked."""
    status, form = case
    busy: BusyUntilDate | None = None
    if form == "seconds":
        receiver.on("/busy", Script(Reply(status, {"Retry-After": "3"})))
    else:
        busy = receiver.on("/busy", BusyUntilDate(status))
    hookd.start(
        [hook_entry("busy", receiver.url("/busy"))],
        delivery=delivery(retry_delays_s=RETRY_DELAYS_S, inline_attempts=INLINE_ATTEMPTS),
    )
    [event_id] = publish_events(amqp, prefix, 1)

    wait_accepted(receiver, [(event_id, "busy")], timeout_s=20)
    first, second = receiver.requests("/busy")[:2]
    print(f"Retry-After ({form}): next attempt {second.at - first.at:.2f} s later")
    assert second.at - first.at >= 3.0
    if busy is not None:
        assert busy.not_before is not None
        assert second.wall >= busy.not_before - 0.05  # wall clock from monotonic: a few ms of slack
    tally = classify([(event_id, "busy")], receiver.receipts(), dead_letters(amqp, prefix), label="retry-after")
    assert tally.counts() == {"delivered": 1, "duplicated": 0, "lost": 0, "dead_lettered": 0}
