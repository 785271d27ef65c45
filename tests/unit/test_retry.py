"""retry: classification of attempts, the durable schedule and the in-process attempt loop."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.outcomes import DeadLetter, Verdict, dead_letter_reason
from hookd.retry import Attempt, classify, delay_label, durable_delay, run_inline


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (301, Verdict.PERMANENT),
        (302, Verdict.PERMANENT),
        (400, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (408, Verdict.RETRYABLE),
        (410, Verdict.GONE),
        (429, Verdict.RETRYABLE),
        (500, Verdict.RETRYABLE),
        (503, Verdict.RETRYABLE),
        (None, Verdict.RETRYABLE),
    ],
)
def test_classify(status: int | None, verdict: Verdict) -> None:
    """2xx is delivered; no response, 408, 429 and 5xx are retryable; 410 is gone; other 3xx/4xx are permanent."""
    assert classify(status) is verdict


@given(st.integers(min_value=100, max_value=599))
def test_classify_every_status_has_a_verdict(status: int) -> None:
    """Every HTTP status maps to delivered, retryable, permanent or (410 only) gone, never blocked."""
    expected = {Verdict.GONE} if status == 410 else {Verdict.DELIVERED, Verdict.RETRYABLE, Verdict.PERMANENT}
    assert classify(status) in expected


SCHEDULE = (5.0, 300.0, 1800.0)


@pytest.mark.parametrize(("done", "delay"), [(0, 5.0), (1, 300.0), (2, 1800.0)])
def test_durable_delay_follows_the_schedule(done: int, delay: float) -> None:
    """The wait before durable retry n+1 is the schedule's n-th entry."""
    assert durable_delay(done, SCHEDULE) == delay


def test_durable_delay_is_none_when_schedule_spent() -> None:
    """Once every scheduled retry was used, there is no further delay."""
    assert durable_delay(len(SCHEDULE), SCHEDULE) is None


def test_durable_delay_is_none_for_negative_count() -> None:
    """A negative retry count does not index the schedule from its end."""
    assert durable_delay(-1, SCHEDULE) is None


def test_durable_delay_with_empty_schedule() -> None:
    """An empty schedule allows no durable retry."""
    assert durable_delay(0, ()) is None


@pytest.mark.parametrize(
    ("delay", "label"),
    [(1, "1s"), (1.0, "1s"), (1.5, "1500ms"), (300, "300s"), (0.1, "100ms"), (36000.0, "36000s"), (0.25, "250ms")],
)
def test_delay_label(delay: float, label: str) -> None:
    """Whole seconds are labelled in s, anything else in ms."""
    assert delay_label(delay) == label


@given(st.integers(min_value=1, max_value=7 * 86400 * 1000))
def test_delay_label_is_injective_on_milliseconds(millis: int) -> None:
    """Distinct whole-millisecond delays get distinct labels (the label names a queue)."""
    label = delay_label(millis / 1000)
    parsed = int(label[:-2]) if label.endswith("ms") else int(label[:-1]) * 1000
    assert parsed == millis


def _attempt(verdict: Verdict, number: int = 1, status: int | None = None) -> Attempt:
    return Attempt(number=number, verdict=verdict, duration_s=0.01, status=status)


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        (Verdict.BLOCKED, DeadLetter.SSRF_BLOCKED),
        (Verdict.PERMANENT, DeadLetter.PERMANENT_FAILURE),
        (Verdict.GONE, DeadLetter.HOOK_GONE),
        (Verdict.RETRYABLE, DeadLetter.RETRIES_EXHAUSTED),
    ],
)
def test_dead_letter_reason_of_each_final_verdict(verdict: Verdict, reason: DeadLetter) -> None:
    """Blocked, permanent, gone and retryable-but-spent deliveries each have their dead-letter reason."""
    assert dead_letter_reason(verdict) == reason


class FakeAttempts:
    """An attempt function that returns scripted verdicts and records the attempt numbers."""

    def __init__(self, verdicts: Sequence[Verdict], on_call: Callable[[int], None] | None = None) -> None:
        self.verdicts = list(verdicts)
        self.numbers: list[int] = []
        self.on_call = on_call

    async def __call__(self, number: int) -> Attempt:
        self.numbers.append(number)
        if self.on_call is not None:
            self.on_call(number)
        verdict = self.verdicts[min(len(self.numbers), len(self.verdicts)) - 1]
        return _attempt(verdict, number=number)


class Sleeps:
    """The waits run_inline asked for, recorded instead of slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _run(fake: FakeAttempts, *, attempts: int, first: int = 1, backoff: float = 0, **kw: Any) -> Attempt:
    sleep = kw.pop("sleep", Sleeps())
    return asyncio.run(run_inline(fake, first_number=first, attempts=attempts, backoff_s=backoff, sleep=sleep, **kw))


def test_run_inline_uses_no_deprecated_api() -> None:
    """run_inline emits no DeprecationWarning with the installed tenacity (tests run with warnings as errors)."""
    fake = FakeAttempts([Verdict.RETRYABLE, Verdict.DELIVERED])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        _run(fake, attempts=3, backoff=0.5)


def test_run_inline_stops_after_success() -> None:
    """The loop stops at the first delivered attempt and returns it."""
    fake = FakeAttempts([Verdict.RETRYABLE, Verdict.DELIVERED, Verdict.RETRYABLE])
    result = _run(fake, attempts=5)
    assert fake.numbers == [1, 2]
    assert result.verdict is Verdict.DELIVERED


def test_run_inline_stops_on_permanent_failure() -> None:
    """A permanent failure is not retried in process."""
    fake = FakeAttempts([Verdict.PERMANENT])
    result = _run(fake, attempts=5)
    assert fake.numbers == [1]
    assert result.verdict is Verdict.PERMANENT


def test_run_inline_stops_after_n_attempts() -> None:
    """An always-retryable delivery is attempted exactly `attempts` times; the last result is returned."""
    fake = FakeAttempts([Verdict.RETRYABLE])
    result = _run(fake, attempts=3)
    assert fake.numbers == [1, 2, 3]
    assert (result.number, result.verdict) == (3, Verdict.RETRYABLE)


def test_run_inline_numbers_start_at_first_number() -> None:
    """Attempt numbers continue from `first_number` (attempts already made elsewhere)."""
    fake = FakeAttempts([Verdict.RETRYABLE])
    _run(fake, attempts=3, first=4)
    assert fake.numbers == [4, 5, 6]


def test_run_inline_single_attempt() -> None:
    """With attempts=1 a retryable result is returned after one call, without a wait."""
    fake = FakeAttempts([Verdict.RETRYABLE])
    sleeps = Sleeps()
    result = _run(fake, attempts=1, sleep=sleeps)
    assert fake.numbers == [1]
    assert result.verdict is Verdict.RETRYABLE
    assert sleeps.waits == []


@pytest.mark.parametrize("backoff_s", [0.5, 2.0])
def test_run_inline_backoff_doubles_from_the_first_wait(backoff_s: float) -> None:
    """The waits between attempts are b, 2b, 4b (each plus up to b of jitter), capped at 8b."""
    fake = FakeAttempts([Verdict.RETRYABLE])
    sleeps = Sleeps()
    _run(fake, attempts=6, backoff=backoff_s, sleep=sleeps)
    assert fake.numbers == [1, 2, 3, 4, 5, 6]
    base = [backoff_s * factor for factor in (1, 2, 4, 8, 8)]
    assert len(sleeps.waits) == len(base)
    for wait, expected in zip(sleeps.waits, base, strict=True):
        assert expected <= wait <= expected + backoff_s


def test_run_inline_gives_up_without_waiting_when_told_to_before_the_first_retry() -> None:
    """When give_up() already holds after the first attempt (stopping, circuit open), nothing more is
    attempted and nothing waited for."""
    fake = FakeAttempts([Verdict.RETRYABLE])
    sleeps = Sleeps()
    result = _run(fake, attempts=5, backoff=30, sleep=sleeps, give_up=lambda: True)
    assert fake.numbers == [1]
    assert sleeps.waits == []
    assert result.verdict is Verdict.RETRYABLE


def test_run_inline_give_up_during_the_retries_ends_the_loop() -> None:
    """give_up() turning true after attempt 2 ends the loop with attempt 2's result."""
    fake = FakeAttempts([Verdict.RETRYABLE])
    result = _run(fake, attempts=5, give_up=lambda: len(fake.numbers) >= 2)
    assert fake.numbers == [1, 2]
    assert result.number == 2


def test_run_inline_does_not_retry_a_retry_after_in_process() -> None:
    """A 429/503 with Retry-After goes to the durable path at once: no in-process retry."""

    async def throttled(number: int) -> Attempt:
        return Attempt(number, Verdict.RETRYABLE, 0.01, status=429, retry_after_s=30.0)

    result = asyncio.run(run_inline(throttled, first_number=1, attempts=5, backoff_s=0, sleep=Sleeps()))
    assert result.number == 1 and result.retry_after_s == 30.0


def test_run_inline_propagates_exceptions() -> None:
    """An exception raised by the attempt function is not swallowed."""

    async def boom(_number: int) -> Attempt:
        raise RuntimeError("bug in attempt")

    with pytest.raises(RuntimeError, match="bug in attempt"):
        asyncio.run(run_inline(boom, first_number=1, attempts=3, backoff_s=0, sleep=Sleeps()))
