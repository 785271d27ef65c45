"""messages: targeted deliveries and dead letters, described in headers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.errors import EventError
from hookd.events import BAD_DELIVERY
from hookd.messages import Target, dead_letter_headers, delivery_id, parse_target, target_headers

TARGET = Target(
    hook_id="42",
    event="job.failed",
    event_id="evt-1",
    account_id="acme",
    delivery_id=delivery_id("evt-1", "42"),
    attempts=3,
    retries=1,
)


def _headers(**overrides: Any) -> dict[str, Any]:
    headers = target_headers(TARGET)
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


def test_delivery_id_is_stable() -> None:
    """The same (event, hook) pair always gets the same delivery id."""
    assert delivery_id("evt-1", "42") == delivery_id("evt-1", "42")


def test_delivery_id_is_a_uuid() -> None:
    """A delivery id is a UUID (version 5) in canonical text form."""
    parsed = uuid.UUID(delivery_id("evt-1", "42"))
    assert parsed.version == 5
    assert str(parsed) == delivery_id("evt-1", "42")


def test_delivery_id_differs_per_hook() -> None:
    """The same event delivered to two hooks gets two delivery ids."""
    assert delivery_id("evt-1", "42") != delivery_id("evt-1", "43")


def test_delivery_id_differs_per_event() -> None:
    """Two events delivered to one hook get two delivery ids."""
    assert delivery_id("evt-1", "42") != delivery_id("evt-2", "42")


def test_delivery_id_does_not_confuse_concatenations() -> None:
    """Moving characters between event id and hook id changes the delivery id."""
    assert delivery_id("evt-14", "2") != delivery_id("evt-1", "42")


@given(st.text(), st.text(), st.text(), st.text())
def test_delivery_id_is_injective(event_a: str, hook_a: str, event_b: str, hook_b: str) -> None:
    """Distinct (event, hook) pairs get distinct delivery ids."""
    if (event_a, hook_a) != (event_b, hook_b) and "\x00" not in event_a + event_b:
        assert delivery_id(event_a, hook_a) != delivery_id(event_b, hook_b)


def test_parse_target_round_trips_target_headers() -> None:
    """parse_target reads back exactly what target_headers wrote."""
    assert parse_target(target_headers(TARGET), None) == TARGET


@given(
    hook_id=st.text(min_size=1),
    event=st.sampled_from(["ping", "job.failed", "cluster.idled"]),
    event_id=st.text(min_size=1),
    account_id=st.text(min_size=1).filter(str.strip).map(str.strip),
    attempts=st.integers(min_value=0, max_value=100),
    retries=st.integers(min_value=0, max_value=100),
)
def test_parse_target_round_trip_property(
    *, hook_id: str, event: str, event_id: str, account_id: str, attempts: int, retries: int
) -> None:
    """For any valid target, parse_target(target_headers(t)) == t."""
    target = Target(hook_id, event, event_id, account_id, delivery_id(event_id, hook_id), attempts, retries)
    assert parse_target(target_headers(target), None) == target


def test_parse_target_accepts_bytes_headers() -> None:
    """Header values delivered as bytes are decoded."""
    headers = _headers(hook_id=b"42", event=b"job.failed", event_id=b"evt-1", account_id=b"acme")
    assert parse_target(headers, None) == TARGET


def test_parse_target_integer_ids_become_text() -> None:
    """Integer hook and account ids are read as text."""
    target = parse_target(_headers(hook_id=42, account_id=1001), None)
    assert (target.hook_id, target.account_id) == ("42", "1001")


def test_parse_target_defaults_counters_to_zero() -> None:
    """Missing attempts and retries headers mean none were made yet."""
    headers = {k: v for k, v in target_headers(TARGET).items() if k not in ("attempts", "retries")}
    target = parse_target(headers, None)
    assert (target.attempts, target.retries) == (0, 0)


def test_parse_target_falls_back_to_message_id() -> None:
    """Without an event_id header the message id is the event id."""
    headers = {k: v for k, v in target_headers(TARGET).items() if k != "event_id"}
    assert parse_target(headers, "evt-1").event_id == "evt-1"


def test_parse_target_derives_missing_delivery_id() -> None:
    """Without a delivery_id header the stable id of (event, hook) is used."""
    headers = {k: v for k, v in target_headers(TARGET).items() if k != "delivery_id"}
    assert parse_target(headers, None).delivery_id == delivery_id("evt-1", "42")


def test_parse_target_accepts_ping() -> None:
    """A ping is a valid targeted delivery."""
    assert parse_target(_headers(event="ping"), None).event == "ping"


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"hook_id": ""}, "hook_id"),
        ({"event": "job.exploded"}, "event"),
        ({"event": "job"}, "event"),
        ({"account_id": True}, "account_id"),
        ({"account_id": " "}, "account_id"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": "3"}, "attempts"),
        ({"retries": True}, "retries"),
        ({"retries": 1.5}, "retries"),
    ],
)
def test_malformed_header_is_bad_delivery_message(overrides: dict[str, Any], missing: str) -> None:
    """A missing or invalid header raises EventError(bad_delivery_message) naming it."""
    with pytest.raises(EventError) as info:
        parse_target(_headers(**overrides), None)
    assert info.value.reason == BAD_DELIVERY
    assert missing in info.value.detail


def test_every_malformed_header_is_named() -> None:
    """All missing headers are named in one error."""
    with pytest.raises(EventError) as info:
        parse_target({}, None)
    assert info.value.reason == BAD_DELIVERY
    for name in ("hook_id", "event", "event_id", "account_id"):
        assert name in info.value.detail


def test_missing_event_id_with_empty_message_id_is_bad_delivery_message() -> None:
    """No event_id header and an empty message id is refused with EventError, not an AssertionError."""
    headers = {k: v for k, v in target_headers(TARGET).items() if k != "event_id"}
    with pytest.raises(EventError) as info:
        parse_target(headers, "")
    assert info.value.reason == BAD_DELIVERY


_header_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), st.binary(max_size=10))


@given(
    headers=st.fixed_dictionaries(
        {},
        optional={key: st.one_of(st.just(value), _header_values) for key, value in target_headers(TARGET).items()},
    ),
    message_id=st.one_of(st.none(), st.text(max_size=5)),
)
def test_parse_target_raises_only_event_error(headers: dict[str, Any], message_id: str | None) -> None:
    """On arbitrary headers parse_target returns a Target or raises EventError(bad_delivery_message)."""
    try:
        parse_target(headers, message_id)
    except EventError as exc:
        assert exc.reason == BAD_DELIVERY


NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_dead_letter_headers_content() -> None:
    """Dead-letter headers carry the target, the reason, the time, the last status and the error."""
    headers = dead_letter_headers(TARGET, reason="retries_exhausted", last_status=503, error="boom", now=NOW)
    assert headers == {
        **target_headers(TARGET),
        "reason": "retries_exhausted",
        "dead_lettered_at": "2024-05-01T12:30:15+00:00",
        "last_status": 503,
        "error": "boom",
    }


def test_dead_letter_headers_replay_as_target() -> None:
    """A dead letter's headers parse back to the same target, so it can be replayed."""
    headers = dead_letter_headers(TARGET, reason="permanent_failure", last_status=410, error=None, now=NOW)
    assert parse_target(headers, None) == TARGET


def test_dead_letter_headers_omit_absent_status_and_error() -> None:
    """Without a response or an error message those headers are left out."""
    headers = dead_letter_headers(TARGET, reason="ssrf_blocked", last_status=None, error="", now=NOW)
    assert "last_status" not in headers
    assert "error" not in headers


def test_dead_letter_error_is_truncated() -> None:
    """A long error message is cut to 500 characters."""
    headers = dead_letter_headers(TARGET, reason="retries_exhausted", last_status=None, error="x" * 2000, now=NOW)
    assert headers["error"] == "x" * 500


def test_dead_letter_time_defaults_to_now_utc() -> None:
    """Without `now`, dead_lettered_at is the current UTC time."""
    before = datetime.now(UTC).replace(microsecond=0)
    headers = dead_letter_headers(TARGET, reason="retries_exhausted", last_status=None, error=None)
    stamp = datetime.fromisoformat(headers["dead_lettered_at"])
    assert stamp.utcoffset() is not None
    assert before <= stamp <= datetime.now(UTC)
