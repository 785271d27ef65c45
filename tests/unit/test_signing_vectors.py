"""signing: the Standard Webhooks headers, checked against the standardwebhooks library (an independent verifier)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookd.signing import (
    SIGNATURE_HEADER,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    sign,
    signature_headers,
    standard_headers,
    standard_signature,
    verify,
    verify_standard,
    whsec,
)

SECRET = "XP_bXIFLbBngvoCGxhywFDBi7iV5DzZBJrbbwiKbmsk"
OLD = "old-secret-still-valid-during-the-overlap"
BODY = b'{"id":"j-1","state":"failed","note":"caf\xc3\xa9"}'
MSG_ID = "6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11"
FUZZ = settings(max_examples=200, deadline=None)


def test_whsec_is_prefix_plus_base64_of_the_key_bytes() -> None:
    """whsec() is `whsec_` followed by the base64 of the secret's UTF-8 bytes."""
    assert whsec("clé") == "whsec_" + base64.b64encode("clé".encode()).decode()


def test_standard_signature_known_answer() -> None:
    """webhook-signature is v1, then base64 HMAC-SHA256 of "id.timestamp.body", computed independently."""
    expected = hmac.new(SECRET.encode(), f"{MSG_ID}.1700000000.".encode() + BODY, hashlib.sha256).digest()
    assert standard_signature([SECRET], MSG_ID, 1700000000, BODY) == "v1," + base64.b64encode(expected).decode()


def test_standard_signature_carries_one_entry_per_secret_current_first() -> None:
    """During an overlap the value holds the current secret's signature, then the old one's, space-separated."""
    both = standard_signature([SECRET, OLD], MSG_ID, 1700000000, BODY).split(" ")
    assert both == [
        standard_signature([SECRET], MSG_ID, 1700000000, BODY),
        standard_signature([OLD], MSG_ID, 1700000000, BODY),
    ]


def test_standard_signature_drops_duplicate_secrets() -> None:
    """A secret listed twice signs once."""
    assert " " not in standard_signature([SECRET, SECRET], MSG_ID, 1, BODY)


def test_standard_signature_needs_a_secret() -> None:
    """Signing with no secret at all is a programming error."""
    with pytest.raises(ValueError, match="at least one secret"):
        standard_signature([], MSG_ID, 1, BODY)


def test_standard_headers_names_and_values() -> None:
    """standard_headers gives webhook-id (the delivery id), webhook-timestamp and webhook-signature."""
    headers = standard_headers([SECRET], MSG_ID, BODY, timestamp=1700000000)
    assert headers == {
        WEBHOOK_ID: MSG_ID,
        WEBHOOK_TIMESTAMP: "1700000000",
        WEBHOOK_SIGNATURE: standard_signature([SECRET], MSG_ID, 1700000000, BODY),
    }
    assert (WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE) == (
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    )


def test_standard_headers_timestamp_defaults_to_now() -> None:
    """Without a timestamp, the attempt is stamped with the current Unix time in seconds."""
    before = int(time.time())
    stamp = int(standard_headers([SECRET], MSG_ID, BODY)[WEBHOOK_TIMESTAMP])
    assert before <= stamp <= int(time.time())


def test_signature_headers_sign_x_hook_signature_with_the_current_secret_only() -> None:
    """X-Hook-Signature uses the current (new) secret only; webhook-signature carries both."""
    headers = signature_headers([SECRET, OLD], MSG_ID, BODY, timestamp=1700000000)
    assert headers[SIGNATURE_HEADER] == sign(SECRET, BODY)
    assert not verify(OLD, BODY, headers[SIGNATURE_HEADER])
    assert len(headers[WEBHOOK_SIGNATURE].split(" ")) == 2


# -- the independent verifier --------------------------------------------------------------------------------
def test_standardwebhooks_library_verifies_hookd_headers() -> None:
    """The standardwebhooks library, given the whsec_ form, verifies hookd's headers and body."""
    headers = standard_headers([SECRET], MSG_ID, BODY)
    assert Webhook(whsec(SECRET)).verify(BODY, headers, json_parse=False) is None


def test_standardwebhooks_library_verifies_either_secret_during_an_overlap() -> None:
    """A receiver holding the old secret and one holding the new one both verify an overlap delivery."""
    headers = standard_headers([SECRET, OLD], MSG_ID, BODY)
    Webhook(whsec(SECRET)).verify(BODY, headers, json_parse=False)
    Webhook(whsec(OLD)).verify(BODY, headers, json_parse=False)


def test_standardwebhooks_library_rejects_another_secret() -> None:
    """A receiver holding neither secret refuses the delivery."""
    headers = standard_headers([SECRET, OLD], MSG_ID, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec("somebody-else")).verify(BODY, headers, json_parse=False)


def test_standardwebhooks_library_rejects_an_old_timestamp() -> None:
    """The library refuses a delivery stamped more than five minutes ago (replay)."""
    headers = standard_headers([SECRET], MSG_ID, BODY, timestamp=int(time.time()) - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(whsec(SECRET)).verify(BODY, headers, json_parse=False)


def test_verify_standard_accepts_what_the_library_signs() -> None:
    """hookd's verify_standard accepts a signature made by the standardwebhooks library."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    signature = Webhook(whsec(SECRET)).sign(MSG_ID, now, BODY.decode())
    headers = {"Webhook-Id": MSG_ID, "Webhook-Timestamp": str(int(now.timestamp())), "Webhook-Signature": signature}
    assert verify_standard(SECRET, headers, BODY)


# -- verify_standard ---------------------------------------------------------------------------------------------
def _headers(timestamp: int = 1700000000, secrets: tuple[str, ...] = (SECRET,)) -> dict[str, str]:
    return standard_headers(list(secrets), MSG_ID, BODY, timestamp=timestamp)


@pytest.mark.parametrize("key", [SECRET, whsec(SECRET), SECRET.encode()])
def test_verify_standard_takes_raw_whsec_or_key_bytes(key: str | bytes) -> None:
    """The secret may be given raw, in its whsec_ form, or as the key bytes."""
    assert verify_standard(key, _headers(), BODY, now=1700000000)


def test_verify_standard_accepts_the_old_secret_during_an_overlap() -> None:
    """A receiver still on the old secret verifies an overlap delivery."""
    assert verify_standard(OLD, _headers(secrets=(SECRET, OLD)), BODY, now=1700000000)


def test_verify_standard_matches_header_names_case_insensitively() -> None:
    """Header names may come in any case, as HTTP servers hand them over."""
    headers = {name.upper(): value for name, value in _headers().items()}
    assert verify_standard(SECRET, headers, BODY, now=1700000000)


@pytest.mark.parametrize("skew", [-301, 301])
def test_verify_standard_refuses_a_timestamp_outside_the_tolerance(skew: int) -> None:
    """A timestamp more than tolerance_s away from now, either way, is refused (replay protection)."""
    assert not verify_standard(SECRET, _headers(), BODY, now=1700000000 + skew)


def test_verify_standard_tolerance_is_adjustable() -> None:
    """tolerance_s widens or narrows the accepted clock difference."""
    assert verify_standard(SECRET, _headers(), BODY, now=1700000000 + 900, tolerance_s=1000)
    assert not verify_standard(SECRET, _headers(), BODY, now=1700000000 + 2, tolerance_s=1)


def test_verify_standard_refuses_a_changed_timestamp() -> None:
    """Moving the timestamp forward (to replay later) breaks the signature."""
    headers = _headers()
    headers[WEBHOOK_TIMESTAMP] = "1700000100"
    assert not verify_standard(SECRET, headers, BODY, now=1700000100)


def test_verify_standard_refuses_a_changed_id() -> None:
    """Changing webhook-id breaks the signature: the id is signed."""
    headers = _headers()
    headers[WEBHOOK_ID] = "another-delivery"
    assert not verify_standard(SECRET, headers, BODY, now=1700000000)


def test_verify_standard_refuses_a_changed_body() -> None:
    """One changed byte of the body breaks the signature."""
    assert not verify_standard(SECRET, _headers(), BODY.replace(b"failed", b"fail3d"), now=1700000000)


@pytest.mark.parametrize("missing", [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE])
def test_verify_standard_refuses_missing_headers(missing: str) -> None:
    """Each of the three headers is required."""
    headers = _headers()
    del headers[missing]
    assert not verify_standard(SECRET, headers, BODY, now=1700000000)


def test_verify_standard_skips_other_versions() -> None:
    """Entries of versions other than v1 are ignored, not trusted."""
    headers = _headers()
    headers[WEBHOOK_SIGNATURE] = headers[WEBHOOK_SIGNATURE].replace("v1,", "v1a,")
    assert not verify_standard(SECRET, headers, BODY, now=1700000000)


@FUZZ
@given(
    secret=st.one_of(st.text(), st.binary()),
    headers=st.dictionaries(
        st.sampled_from([WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE, "other"]) | st.text(max_size=20),
        st.text(max_size=200),
    ),
    body=st.binary(max_size=200),
)
def test_verify_standard_never_raises(secret: str | bytes, headers: dict[str, str], body: bytes) -> None:
    """verify_standard returns a bool for any secret, headers and body a receiver might get."""
    assert isinstance(verify_standard(secret, headers, body, now=1700000000), bool)


@FUZZ
@given(secret=st.text(min_size=1), body=st.binary(max_size=500), msg_id=st.text(min_size=1, max_size=60))
def test_round_trip_for_any_secret_and_body(secret: str, body: bytes, msg_id: str) -> None:
    """What standard_headers signs, verify_standard accepts, with the raw and the whsec_ secret (a raw
    secret that itself begins with `whsec_` reads as the whsec_ form, as documented: it is given as
    its key bytes instead)."""
    msg_id = msg_id.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    headers = standard_headers([secret], msg_id, body, timestamp=1700000000)
    raw: str | bytes = secret.encode("utf-8", "surrogatepass") if secret.startswith("whsec_") else secret
    assert verify_standard(raw, headers, body, now=1700000000)
    assert verify_standard(whsec(secret), headers, body, now=1700000000)
