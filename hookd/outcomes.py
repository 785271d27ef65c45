"""The outcome vocabulary: every word hookd uses to say how a message or a delivery ended.

These strings are part of the outside contract: they appear as AMQP headers (`reason` on
`<prefix>.dead` and `<prefix>.invalid`), in log lines, metric labels, the state database's columns
and the JSON the commands print. One home, so a new outcome is added once and every reader sees it.
Each is a `StrEnum`: a member *is* its string, so it goes into a header, a label or a column as is.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """What one HTTP attempt means for the delivery (`outcome` of the canonical attempt line)."""

    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    BLOCKED = "blocked"  # refused by the network policy before any connection
    GONE = "gone"  # 410: the receiver says the endpoint is gone for good; the hook is disabled


class Invalid(StrEnum):
    """Why a consumed message breaks the contract (header `reason` on `<prefix>.invalid`)."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_ID = "missing_id"
    MISSING_ACCOUNT = "missing_account"
    UNKNOWN_EVENT = "unknown_event"
    BAD_DELIVERY = "bad_delivery_message"  # a targeted delivery whose headers are malformed


class DeadLetter(StrEnum):
    """Why a delivery ended in `<prefix>.dead` (header `reason`)."""

    PERMANENT_FAILURE = "permanent_failure"
    RETRIES_EXHAUSTED = "retries_exhausted"
    SSRF_BLOCKED = "ssrf_blocked"
    HOOK_NOT_FOUND = "hook_not_found"
    HOOK_INACTIVE = "hook_inactive"
    HOOK_GONE = "hook_gone"
    HOOK_DISABLED = "hook_disabled"
    #: ordered delivery: the hook already had `delivery.ordered_max_waiting` deliveries waiting behind
    #: earlier ones; this one was not added to its chain (nothing lost: `hookd dlq replay` sends it)
    TOO_MANY_WAITING = "too_many_waiting"


class Parked(StrEnum):
    """Why a delivery was held on the durable retry path without an attempt (`delivery.parked`)."""

    BREAKER_OPEN = "breaker_open"
    SLOW_HOOK = "slow_hook"
    BACKLOG = "backlog"
    HOOK_LOADING = "hook_loading"  # a ping of a hook this worker has not loaded yet (reloading now)


class Disabled(StrEnum):
    """Why hookd disabled a hook by itself (`hook.disabled`, `hookd_hook_health.disabled_reason`)."""

    GONE = "gone"  # the receiver answered 410
    FAILING = "failing"  # unbroken failure for delivery.disable_after_s


class DeliveryState(StrEnum):
    """Where a delivery stands in the history (`hookd_deliveries.state`)."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"


class Circuit(StrEnum):
    """A hook's circuit breaker state (`hookd_hook_health.breaker`, `hookd_hook_breaker_state`)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Trigger(StrEnum):
    """The last trigger status of a hook's event, as the platform's hook resource shows it."""

    SUCCESS = "success"
    FAILURE = "failure"


def dead_letter_reason(verdict: Verdict) -> DeadLetter:
    """Why a delivery whose last attempt had this verdict, and was not retried, is dead-lettered."""
    if verdict is Verdict.BLOCKED:
        return DeadLetter.SSRF_BLOCKED
    if verdict is Verdict.GONE:
        return DeadLetter.HOOK_GONE
    if verdict is Verdict.PERMANENT:
        return DeadLetter.PERMANENT_FAILURE
    return DeadLetter.RETRIES_EXHAUSTED
