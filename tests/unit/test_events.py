"""events.decode: the scheduler message contract and its reason codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd import events
from hookd.errors import EventError
from hookd.events import decode
from hookd.outcomes import Invalid

BODY = b'{"id": "j-1", "state": "failed", "note": "caf\xc3\xa9"}'
LIMIT = 1024


def _decode(
    routing_key: str = "job.failed",
    body: bytes = BODY,
    message_id: str | None = "evt-1",
    headers: dict[str, Any] | None = None,
    max_bytes: int = LIMIT,
) -> events.Event:
    return decode(
        routing_key,
        body,
        message_id,
        {"account_id": "acme"} if headers is None else headers,
        max_bytes=max_bytes,
    )


def _reason(**kwargs: Any) -> str:
    with pytest.raises(EventError) as info:
        _decode(**kwargs)
    return info.value.reason


def test_valid_message_decodes_to_event() -> None:
    """A message that honours the contract becomes an Event with name, id and account."""
    event = _decode()
    assert (event.name, event.event_id, event.account_id) == ("job.failed", "evt-1", "acme")


def test_body_is_kept_byte_for_byte() -> None:
    """The decoded event keeps the exact body bytes, not a re-serialisation."""
    body = b'{ "b":1,\n  "a" : "\\u00e9" }'
    assert _decode(body=body).body is body


def test_integer_account_id_is_normalised_to_text() -> None:
    """An integer account_id header is compared as text."""
    assert _decode(headers={"account_id": 1001}).account_id == "1001"


def test_bytes_account_id_is_decoded() -> None:
    """A bytes account_id header (as pika may deliver it) is decoded as UTF-8 text."""
    assert _decode(headers={"account_id": b"acme"}).account_id == "acme"


def test_message_id_and_account_are_stripped() -> None:
    """Surrounding whitespace on the event id and account id is dropped."""
    event = _decode(message_id="  evt-1 ", headers={"account_id": " acme "})
    assert (event.event_id, event.account_id) == ("evt-1", "acme")


def test_body_at_the_limit_is_accepted() -> None:
    """A body exactly `max_bytes` long is accepted."""
    assert _decode(max_bytes=len(BODY)).body == BODY


def test_body_over_the_limit_is_too_large() -> None:
    """A body one byte over `max_bytes` is refused as too_large."""
    assert _reason(max_bytes=len(BODY) - 1) == Invalid.TOO_LARGE


def test_too_large_is_checked_before_parsing() -> None:
    """An oversized body is refused as too_large even when it is not JSON."""
    assert _reason(body=b"x" * (LIMIT + 1)) == Invalid.TOO_LARGE


@pytest.mark.parametrize("routing_key", ["job.exploded", "", "job", "cluster", "ping", "JOB.FAILED"])
def test_unknown_routing_key_is_unknown_event(routing_key: str) -> None:
    """A routing key that is not a catalogue event (groups and ping included) is unknown_event."""
    assert _reason(routing_key=routing_key) == Invalid.UNKNOWN_EVENT


@pytest.mark.parametrize("name", sorted(events.EVENTS))
def test_every_catalogue_event_is_accepted(name: str) -> None:
    """Every job and cluster event of the catalogue decodes."""
    assert _decode(routing_key=name).name == name


@pytest.mark.parametrize("message_id", [None, "", "   "])
def test_missing_message_id_is_missing_id(message_id: str | None) -> None:
    """A missing, empty or blank message_id is refused as missing_id."""
    assert _reason(message_id=message_id) == Invalid.MISSING_ID


@pytest.mark.parametrize(
    "headers",
    [{}, {"account_id": None}, {"account_id": ""}, {"account_id": "  "}, {"account_id": True}, {"account_id": False}],
    ids=["absent", "none", "empty", "blank", "true", "false"],
)
def test_missing_or_invalid_account_is_missing_account(headers: dict[str, Any]) -> None:
    """An absent, empty, blank or boolean account_id header is refused as missing_account."""
    assert _reason(headers=headers) == Invalid.MISSING_ACCOUNT


def test_no_headers_at_all_is_missing_account() -> None:
    """A message without a headers table is refused as missing_account."""
    with pytest.raises(EventError) as info:
        decode("job.failed", BODY, "evt-1", None, max_bytes=LIMIT)
    assert info.value.reason == Invalid.MISSING_ACCOUNT


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"not json", b"{}garbage"])
def test_malformed_json_is_not_json(body: bytes) -> None:
    """A body that does not parse as JSON is refused as not_json."""
    assert _reason(body=body) == Invalid.NOT_JSON


def test_invalid_utf8_is_not_json() -> None:
    """A body that is not valid UTF-8 is refused as not_json."""
    assert _reason(body=b'{"a": "\xff\xfe"}') == Invalid.NOT_JSON


def test_utf16_json_is_not_json() -> None:
    """A JSON object encoded as UTF-16 is refused as not_json: the contract is UTF-8 JSON."""
    assert _reason(body='{"a": 1}'.encode("utf-16")) == Invalid.NOT_JSON


def test_deeply_nested_json_is_refused_with_event_error() -> None:
    """A pathologically nested (but small enough) body is refused with EventError, not RecursionError."""
    with pytest.raises(EventError):
        _decode(body=b"[" * 100_000, max_bytes=1_048_576)


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_not_object(body: bytes) -> None:
    """Valid JSON that is not an object is refused as not_object."""
    assert _reason(body=body) == Invalid.NOT_OBJECT


def test_checks_run_in_contract_order() -> None:
    """With several faults, the first in contract order (size, event, id, account, JSON) is reported."""
    assert _reason(routing_key="nope", message_id=None, headers={}, body=b"[") == Invalid.UNKNOWN_EVENT
    assert _reason(message_id=None, headers={}, body=b"[") == Invalid.MISSING_ID
    assert _reason(headers={}, body=b"[") == Invalid.MISSING_ACCOUNT


_header_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(), st.lists(st.integers(), max_size=3)
)


@given(
    routing_key=st.one_of(st.sampled_from(sorted(events.EVENTS)), st.text(max_size=30)),
    body=st.one_of(st.binary(max_size=200), st.text(max_size=120).map(str.encode)),
    message_id=st.one_of(st.none(), st.text(max_size=20)),
    headers=st.one_of(st.none(), st.dictionaries(st.sampled_from(["account_id", "x"]), _header_values)),
)
def test_decode_raises_only_event_error(
    routing_key: str, body: bytes, message_id: str | None, headers: dict[str, Any] | None
) -> None:
    """On arbitrary bytes and headers decode either returns an Event or raises EventError."""
    try:
        event = decode(routing_key, body, message_id, headers, max_bytes=100)
    except EventError as exc:
        assert exc.reason in {
            Invalid.TOO_LARGE,
            Invalid.UNKNOWN_EVENT,
            Invalid.MISSING_ID,
            Invalid.MISSING_ACCOUNT,
            Invalid.NOT_JSON,
            Invalid.NOT_OBJECT,
        }
    else:
        assert event.body == body


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c, max_size=3)))
def test_json_object_bodies_always_decode(payload: object) -> None:
    """Any JSON object body under the limit decodes and keeps its bytes."""
    body = json.dumps({"payload": payload}).encode()
    assert _decode(body=body, max_bytes=len(body)).body == body


def test_a_routed_event_is_rebuilt_from_its_headers_without_parsing_the_body() -> None:
    """A partition's message carries what the router decoded: the body (even one that is not JSON)
    is taken as it is; a header missing sends the caller back to `decode`."""
    from hookd.events import routed

    headers = {"account_id": 27, "ordering_entity": "job:7"}
    event = routed("job.started", b"not parsed", "evt-1", headers, entity_header="ordering_entity")
    assert event is not None
    assert (event.name, event.account_id, event.entity, event.body) == ("job.started", "27", "job:7", b"not parsed")
    assert routed("job.started", b"{}", None, headers, entity_header="ordering_entity") is None
    assert routed("nope", b"{}", "evt-1", headers, entity_header="ordering_entity") is None
    notice = routed("hook.failing", b'{"hook": {"id": "5"}}', "evt-2", headers, entity_header="ordering_entity")
    assert notice is not None and notice.subject == "5"
