"""The retry policy: what is retryable, the quick in-process attempts, and the durable schedule.

Classification and scheduling are pure functions of values. The in-process loop uses tenacity
(`AsyncRetrying`, on the delivery engine's event loop), with a sleep that wakes up when the daemon is
asked to stop, so draining never waits on a backoff.
"""

from __future__ import annotations

import email.utils
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import tenacity

from hookd.outcomes import Verdict

#: Durable waits other than the schedule's (Retry-After, parking) are rounded up to one of these, so
#: a handful of TTL queues serves every value.
DELAY_BUCKETS_S = (
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    86400.0,
    172800.0,
    604800.0,
)


class Attempt(NamedTuple):
    """The result of one HTTP attempt; `status` is None when no response arrived (a named tuple:
    immutable, and built once per attempt at a fraction of a frozen dataclass's cost)."""

    number: int
    verdict: Verdict
    duration_s: float
    status: int | None = None
    error: str | None = None
    excerpt: str | None = None  # the start of the response body, for delivery status
    retry_after_s: float | None = None  # what a 429/503 asked for, already clamped


def classify(status: int | None) -> Verdict:
    """2xx delivered; no response, 408, 429 and 5xx retryable; anything else (3xx, 4xx) permanent."""
    if status is None:
        return Verdict.RETRYABLE
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if status in (408, 429) or status >= 500:
        return Verdict.RETRYABLE
    return Verdict.PERMANENT


def durable_delay(retries_done: int, schedule: Sequence[float]) -> float | None:
    """The wait before durable retry number `retries_done + 1`, or None when the schedule is spent."""
    if 0 <= retries_done < len(schedule):
        return schedule[retries_done]
    return None


def delay_label(delay_s: float) -> str:
    """Queue-name suffix for a delay: `5s`, `300s`, `1500ms` (the delay is part of the queue's identity)."""
    millis = round(delay_s * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def parse_retry_after(value: str | None, *, now: datetime, maximum_s: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or HTTP date), clamped to [1, maximum_s].

    None when absent or unparseable: the normal schedule applies then.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 1.0), maximum_s)


def bucket_delay(delay_s: float, schedule: Sequence[float] = ()) -> float:
    """The shortest delay queue that waits at least `delay_s` (schedule delays or standard buckets)."""
    candidates = sorted(set(schedule) | set(DELAY_BUCKETS_S))
    return next((c for c in candidates if c >= delay_s), candidates[-1])


def jittered_ms(delay_s: float, jitter: float, rng: Callable[[], float]) -> int:
    """Per-message expiration: between (1 - jitter) and 1 x the delay, so retries of many deliveries
    that failed together do not all come back in the same instant."""
    return max(1, round(delay_s * 1000 * (1.0 - jitter * rng())))


async def run_inline(
    attempt: Callable[[int], Awaitable[Attempt]],
    *,
    first_number: int,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], Awaitable[None]],
    give_up: Callable[[], bool] = lambda: False,
) -> Attempt:
    """Await `attempt(n)` up to `attempts` times while it is retryable; return the last result.

    The waits between attempts are `backoff_s`, then 2x, 4x... (at most 8x), each plus up to
    `backoff_s` of jitter, slept with `sleep` (the engine's wakes up when the daemon stops). Once
    `give_up()` holds (stopping, the hook's circuit opened) no further attempt is made and the last
    retryable result is returned, so the caller hands it to the durable retry path.
    """
    first = await attempt(first_number)
    if attempts <= 1 or not _retry_inline(first):
        return first  # the common case, delivered or final at once: no retry machinery on the hot path
    numbers = iter(range(first_number, first_number + attempts))
    last: list[Attempt] = []

    async def once() -> Attempt:
        number = next(numbers)
        if not last:
            last.append(first)  # tenacity's first call is the attempt already made
        elif give_up():
            return last[-1]  # stopping, or the circuit opened: no further attempt
        else:
            last.append(await attempt(number))
        return last[-1]

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(attempts) | _StopWhen(give_up),
        wait=tenacity.wait_exponential(multiplier=backoff_s, max=backoff_s * 8) + tenacity.wait_random(0, backoff_s),
        # A Retry-After goes straight to the durable path: the receiver asked for a wait.
        retry=tenacity.retry_if_result(_retry_inline),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    result: Attempt = await retrying(once)
    return result


def _retry_inline(result: Attempt) -> bool:
    """Retryable, and the receiver did not ask for a wait (a Retry-After goes to the durable path)."""
    return result.verdict is Verdict.RETRYABLE and result.retry_after_s is None


class _StopWhen(tenacity.stop.stop_base):
    """Stop retrying as soon as `condition()` holds (e.g. the hook's circuit opened)."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        self._condition = condition

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._condition()
