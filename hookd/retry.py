"""The retry policy: what is retryable, the quick in-process attempts, and the durable schedule.

Classification and scheduling are pure functions of values. The in-process loop uses tenacity, with
a sleep that wakes up when the daemon is asked to stop so draining never waits on a backoff.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tenacity


class Verdict(enum.Enum):
    """What one HTTP attempt means for the delivery."""

    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    BLOCKED = "blocked"  # refused by the network policy before any connection


# Dead-letter reasons (header `reason` on `<prefix>.dead`).
PERMANENT_FAILURE = "permanent_failure"
RETRIES_EXHAUSTED = "retries_exhausted"
SSRF_BLOCKED = "ssrf_blocked"
HOOK_NOT_FOUND = "hook_not_found"
HOOK_INACTIVE = "hook_inactive"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one HTTP attempt; `status` is None when no response arrived."""

    number: int
    verdict: Verdict
    duration_s: float
    status: int | None = None
    error: str | None = None
    excerpt: str | None = None  # the start of the response body, for delivery status


def classify(status: int | None) -> Verdict:
    """2xx delivered; no response, 408, 429 and 5xx retryable; anything else (3xx, 4xx) permanent."""
    if status is None:
        return Verdict.RETRYABLE
    if 200 <= status < 300:
        return Verdict.DELIVERED
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


def dead_letter_reason(last: Attempt) -> str:
    """Why a delivery whose last attempt was not retried ends in the dead-letter queue."""
    if last.verdict is Verdict.BLOCKED:
        return SSRF_BLOCKED
    if last.verdict is Verdict.PERMANENT:
        return PERMANENT_FAILURE
    return RETRIES_EXHAUSTED


def run_inline(
    attempt: Callable[[int], Attempt],
    *,
    first_number: int,
    attempts: int,
    backoff_s: float,
    stop: threading.Event,
) -> Attempt:
    """Call `attempt(n)` up to `attempts` times while it is retryable; return the last result.

    Waits grow exponentially from `backoff_s` with jitter. When `stop` is set the loop ends at once
    and the last retryable result is returned, so the caller hands it to the durable retry path.
    """
    counter = iter(range(first_number, first_number + attempts))
    last: list[Attempt] = []

    def once() -> Attempt:
        if last and stop.is_set():
            return last[-1]  # woken from a backoff by stop: no further attempt
        last.append(attempt(next(counter)))
        return last[-1]

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_when_event_set(stop),
        wait=tenacity.wait_exponential(multiplier=backoff_s, max=backoff_s * 8) + tenacity.wait_random(0, backoff_s),
        retry=tenacity.retry_if_result(lambda result: result.verdict is Verdict.RETRYABLE),
        sleep=lambda seconds: _interruptible_sleep(stop, seconds),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    result: Attempt = retrying(once)
    return result


def _interruptible_sleep(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)
