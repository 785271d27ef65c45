"""messages: targeted deliveries and dead letters, described in headers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.errors import EventError
from hookd.messages import Delivery, dead_letter_headers, delivery_headers, delivery_id, parse_delivery
from hookd.outcomes import Invalid

DELIVERY = Delivery(
    hook_id="42",
    event="job.failed",
    event_id="evt-1",
    account_id="acme",
    delivery_id=delivery_id("evt-1", "42"),
    attempts=3,
    retries=1,
)


def _headers(**overrides: Any) -> dict[str, Any]:
    headers = delivery_headers(DELIVERY)
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


def test_parse_delivery_round_trips_delivery_headers() -> None:
    """parse_delivery reads back exactly what delivery_headers wrote."""
    assert parse_delivery(delivery_headers(DELIVERY), None) == DELIVERY


@given(
    hook_id=st.text(min_size=1),
    event=st.sampled_from(["ping", "job.failed", "cluster.idled"]),
    event_id=st.text(min_size=1),
    account_id=st.text(min_size=1).filter(str.strip).map(str.strip),
    attempts=st.integers(min_value=0, max_value=100),
    retries=st.integers(min_value=0, max_value=100),
)
def test_parse_delivery_round_trip_property(
    *, hook_id: str, event: str, event_id: str, account_id: str, attempts: int, retries: int
) -> None:
    """For any valid delivery, parse_delivery(delivery_headers(t)) == t."""
    delivery = Delivery(hook_id, event, event_id, account_id, delivery_id(event_id, hook_id), b"{}", attempts, retries)
    assert parse_delivery(delivery_headers(delivery), None, b"{}") == delivery


def test_parse_delivery_accepts_bytes_headers() -> None:
    """Header values delivered as bytes are decoded."""
    headers = _headers(hook_id=b"42", event=b"job.failed", event_id=b"evt-1", account_id=b"acme")
    assert parse_delivery(headers, None) == DELIVERY


def test_parse_delivery_integer_ids_become_text() -> None:
    """Integer hook and account ids are read as text."""
    delivery = parse_delivery(_headers(hook_id=42, account_id=1001), None)
    assert (delivery.hook_id, delivery.account_id) == ("42", "1001")


def test_parse_delivery_defaults_counters_to_zero() -> None:
    """Missing attempts and retries headers mean none were made yet."""
    headers = {k: v for k, v in delivery_headers(DELIVERY).items() if k not in ("attempts", "retries")}
    delivery = parse_delivery(headers, None)
    assert (delivery.attempts, delivery.retries) == (0, 0)


def test_parse_delivery_falls_back_to_message_id() -> None:
    """Without an event_id header the message id is the event id."""
    headers = {k: v for k, v in delivery_headers(DELIVERY).items() if k != "event_id"}
    assert parse_delivery(headers, "evt-1").event_id == "evt-1"


def test_parse_delivery_derives_missing_delivery_id() -> None:
    """Without a delivery_id header the stable id of (event, hook) is used."""
    headers = {k: v for k, v in delivery_headers(DELIVERY).items() if k != "delivery_id"}
    assert parse_delivery(headers, None).delivery_id == delivery_id("evt-1", "42")


def test_parse_delivery_accepts_ping() -> None:
    """A ping is a valid deliveryed delivery."""
    assert parse_delivery(_headers(event="ping"), None).event == "ping"


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
        parse_delivery(_headers(**overrides), None)
    assert info.value.reason == Invalid.BAD_DELIVERY
    assert missing in info.value.detail


def test_every_malformed_header_is_named() -> None:
    """All missing headers are named in one error."""
    with pytest.raises(EventError) as info:
        parse_delivery({}, None)
    assert info.value.reason == Invalid.BAD_DELIVERY
    for name in ("hook_id", "event", "event_id", "account_id"):
        assert name in info.value.detail


def test_missing_event_id_with_empty_message_id_is_bad_delivery_message() -> None:
    """No event_id header and an empty message id is refused with EventError, not an AssertionError."""
    headers = {k: v for k, v in delivery_headers(DELIVERY).items() if k != "event_id"}
    with pytest.raises(EventError) as info:
        parse_delivery(headers, "")
    assert info.value.reason == Invalid.BAD_DELIVERY


_header_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), st.binary(max_size=10))


@given(
    headers=st.fixed_dictionaries(
        {},
        optional={key: st.one_of(st.just(value), _header_values) for key, value in delivery_headers(DELIVERY).items()},
    ),
    message_id=st.one_of(st.none(), st.text(max_size=5)),
)
def test_parse_delivery_raises_only_event_error(headers: dict[str, Any], message_id: str | None) -> None:
    """On arbitrary headers parse_delivery returns a Delivery or raises EventError(bad_delivery_message)."""
    try:
        parse_delivery(headers, message_id)
    except EventError as exc:
        assert exc.reason == Invalid.BAD_DELIVERY


NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_dead_letter_headers_content() -> None:
    """Dead-letter headers carry the delivery, the reason, the time, the last status and the error."""
    headers = dead_letter_headers(DELIVERY, reason="retries_exhausted", last_status=503, error="boom", now=NOW)
    assert headers == {
        **delivery_headers(DELIVERY),
        "reason": "retries_exhausted",
        "dead_lettered_at": "2024-05-01T12:30:15+00:00",
        "last_status": 503,
        "error": "boom",
    }


def test_dead_letter_headers_replay_as_target() -> None:
    """A dead letter's headers parse back to the same delivery, so it can be replayed."""
    headers = dead_letter_headers(DELIVERY, reason="permanent_failure", last_status=410, error=None, now=NOW)
    assert parse_delivery(headers, None) == DELIVERY


def test_dead_letter_headers_omit_absent_status_and_error() -> None:
    """Without a response or an error message those headers are left out."""
    headers = dead_letter_headers(DELIVERY, reason="ssrf_blocked", last_status=None, error="", now=NOW)
    assert "last_status" not in headers
    assert "error" not in headers


def test_dead_letter_error_is_truncated() -> None:
    """A long error message is cut to 500 characters."""
    headers = dead_letter_headers(DELIVERY, reason="retries_exhausted", last_status=None, error="x" * 2000, now=NOW)
    assert headers["error"] == "x" * 500


def test_dead_letter_time_defaults_to_now_utc() -> None:
    """Without `now`, dead_lettered_at is the current UTC time."""
    before = datetime.now(UTC).replace(microsecond=0)
    headers = dead_letter_headers(DELIVERY, reason="retries_exhausted", last_status=None, error=None)
    stamp = datetime.fromisoformat(headers["dead_lettered_at"])
    assert stamp.utcoffset() is not None
    assert before <= stamp <= datetime.now(UTC)


@given(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
)
def test_a_delivery_id_is_the_uuid5_of_event_and_hook(event_id: str, hook_id: str) -> None:
    """The delivery id is exactly `uuid.uuid5(namespace, "event NUL hook")`: stable across versions."""
    namespace = uuid.UUID("5b0c1d2e-8f43-4c57-9a31-6d1e2f3a4b5c")
    assert delivery_id(event_id, hook_id) == str(uuid.uuid5(namespace, f"{event_id}\x00{hook_id}"))
