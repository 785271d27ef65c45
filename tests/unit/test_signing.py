"""signing: X-Hook-Signature is the hex HMAC-SHA256 of the raw body keyed with the secret."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from hookd.signing import SIGNATURE_HEADER, sign, verify

SECRET = "It's a Secret to Everybody"
BODY = b'{"id":"j-1","state":"failed"}'


def test_signature_matches_independent_hmac() -> None:
    """sign() equals an HMAC-SHA256 computed independently over the same secret and body."""
    expected = hmac.new(SECRET.encode("utf-8"), BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY) == expected


def test_signature_known_answer() -> None:
    """sign() matches a fixed known answer (RFC 4231 test case 2: key 'Jefe')."""
    body = b"what do ya want for nothing?"
    assert sign("Jefe", body) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_signature_is_lowercase_hex_sha256() -> None:
    """The signature is 64 lowercase hexadecimal characters."""
    signature = sign(SECRET, BODY)
    assert len(signature) == 64
    assert signature == signature.lower()
    int(signature, 16)


def test_non_ascii_secret_is_keyed_as_utf8() -> None:
    """A non-ASCII secret is keyed with its UTF-8 bytes."""
    expected = hmac.new("clé-secrète".encode(), BODY, hashlib.sha256).hexdigest()
    assert sign("clé-secrète", BODY) == expected


def test_header_name() -> None:
    """The signature travels in the X-Hook-Signature header."""
    assert SIGNATURE_HEADER == "X-Hook-Signature"


def test_verify_accepts_own_signature() -> None:
    """verify() is true for the signature sign() produced."""
    assert verify(SECRET, BODY, sign(SECRET, BODY))


def test_verify_rejects_wrong_secret() -> None:
    """verify() is false for a signature made with another secret."""
    assert not verify(SECRET, BODY, sign("another secret", BODY))


def test_verify_rejects_tampered_body() -> None:
    """verify() is false when one byte of the body changed."""
    signature = sign(SECRET, BODY)
    assert not verify(SECRET, BODY.replace(b"failed", b"fail3d"), signature)


def test_verify_rejects_empty_signature() -> None:
    """verify() is false for an empty signature."""
    assert not verify(SECRET, BODY, "")


def test_verify_rejects_truncated_signature() -> None:
    """verify() is false for a prefix of the right signature."""
    assert not verify(SECRET, BODY, sign(SECRET, BODY)[:32])


def test_verify_tolerates_uppercase_hex() -> None:
    """verify() accepts the signature in uppercase hex."""
    assert verify(SECRET, BODY, sign(SECRET, BODY).upper())


def test_verify_tolerates_surrounding_whitespace() -> None:
    """verify() accepts the signature with surrounding whitespace, as some proxies add it."""
    assert verify(SECRET, BODY, f"  {sign(SECRET, BODY)}\t\n")


def test_verify_returns_false_for_non_ascii_signature() -> None:
    """verify() returns False (not TypeError) for a header value with non-ASCII characters."""
    assert verify(SECRET, BODY, "é" * 64) is False


@given(secret=st.text(min_size=1), body=st.binary())
def test_sign_verify_round_trip(secret: str, body: bytes) -> None:
    """For any secret and body, verify() accepts what sign() produced."""
    assert verify(secret, body, sign(secret, body))


@given(secret=st.text(min_size=1), body=st.binary(), extra=st.binary(min_size=1))
def test_verify_rejects_any_appended_bytes(secret: str, body: bytes, extra: bytes) -> None:
    """For any body, a signature does not verify once bytes are appended to the body."""
    assert not verify(secret, body + extra, sign(secret, body))


@given(secret=st.text(min_size=1), body=st.binary(), signature=st.text())
def test_verify_never_raises(secret: str, body: bytes, signature: str) -> None:
    """verify() returns a bool for any header value a receiver might get."""
    assert isinstance(verify(secret, body, signature), bool)
