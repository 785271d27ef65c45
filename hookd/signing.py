"""Signing and verifying notification bodies (pure functions, no I/O).

Every delivery carries two signature schemes over the same key, the UTF-8 bytes of the hook's secret:

- `X-Hook-Signature`: the lowercase hex HMAC-SHA256 of the raw body. hookd's original scheme; it has
  no timestamp, so it proves origin and integrity but not freshness. During a secret rotation it is
  computed with the new secret only.
- Standard Webhooks (https://www.standardwebhooks.com/): `webhook-id` (the delivery id, the same on
  every retry, so receivers can dedupe), `webhook-timestamp` (Unix seconds, per attempt) and
  `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one space-separated entry
  per valid secret (during a rotation overlap: the new secret first, then the old one). Receivers
  can verify with the `standardwebhooks` or `svix` libraries given the secret in its `whsec_` form,
  and refuse replays by the timestamp's age.

Receivers written in Python can use `verify` (X-Hook-Signature) or `verify_standard` (the
Standard Webhooks headers, with the timestamp tolerance). docs/receivers.md covers other languages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SIGNATURE_HEADER = "X-Hook-Signature"
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
WHSEC_PREFIX = "whsec_"
#: How far a `webhook-timestamp` may be from the receiver's clock (either way) before it is refused.
DEFAULT_TOLERANCE_S = 300
_MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658: longer values are not timestamps


def sign(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 digest of `body` keyed with `secret` (X-Hook-Signature)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """True when `signature` (an X-Hook-Signature value) signs `body` under `secret`; constant time."""
    if not signature:
        return False
    expected = sign(secret, body).encode("ascii")
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def whsec(secret: str) -> str:
    """The secret in the Standard Webhooks form: `whsec_` + base64 of its UTF-8 bytes (the HMAC key).

    This is what the `standardwebhooks` and `svix` libraries take; it is the same key as the raw
    secret, only spelled differently.
    """
    return WHSEC_PREFIX + base64.b64encode(secret.encode("utf-8")).decode("ascii")


def standard_signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64>` per secret (current first), space-separated.

    Duplicates are dropped, so a rotation to the same value does not sign twice.
    """
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    content = _signed_content(msg_id, str(int(timestamp)), body)
    keys = dict.fromkeys(s.encode("utf-8") for s in secrets)
    return " ".join(f"v1,{_b64_hmac(key, content)}" for key in keys)


def standard_headers(
    secrets: Sequence[str], msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` (now, unless given) and `webhook-signature` for one attempt."""
    moment = int(time.time()) if timestamp is None else int(timestamp)
    return {
        WEBHOOK_ID: msg_id,
        WEBHOOK_TIMESTAMP: str(moment),
        WEBHOOK_SIGNATURE: standard_signature(secrets, msg_id, moment, body),
    }


def signature_headers(
    secrets: Sequence[str], msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Every signature header of one attempt: X-Hook-Signature (current secret only) and the standard three.

    `secrets` is the hook's current secret followed by those still valid during a rotation overlap
    (`Hook.signing_secrets()`); `msg_id` is the delivery id.
    """
    standard = standard_headers(secrets, msg_id, body, timestamp=timestamp)  # ValueError without a secret
    return {SIGNATURE_HEADER: sign(secrets[0], body), **standard}


def verify_standard(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when the Standard Webhooks headers sign `body` under `secret` and the timestamp is fresh.

    `secret` is the raw secret, its `whsec_` form, or the key bytes themselves (for a raw secret
    that happens to begin with `whsec_`). Header names are matched case-insensitively. A timestamp
    further than `tolerance_s` from `now` (default: the current time) is refused, which bounds
    replays; receivers should also remember `webhook-id` values they processed and drop repeats.
    Never raises for malformed headers: they just do not verify.
    """
    lowered = {str(name).lower(): value for name, value in headers.items()}
    msg_id = lowered.get(WEBHOOK_ID)
    stamp = lowered.get(WEBHOOK_TIMESTAMP)
    signatures = lowered.get(WEBHOOK_SIGNATURE)
    if not (isinstance(msg_id, str) and isinstance(stamp, str) and isinstance(signatures, str)):
        return False
    if not msg_id or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    key = _key(secret)
    if key is None:
        return False
    expected = hmac.new(key, _signed_content(msg_id, stamp, body), hashlib.sha256).digest()
    return any(hmac.compare_digest(expected, given) for given in _v1_signatures(signatures))


def _key(secret: str | bytes) -> bytes | None:
    """The HMAC key: bytes as given, a `whsec_` string decoded, any other string as UTF-8."""
    if isinstance(secret, bytes):
        return secret or None
    if secret.startswith(WHSEC_PREFIX):
        try:
            key = base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            return None
        return key or None
    return secret.encode("utf-8") or None


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded `v1` entries of a `webhook-signature` value; other versions and junk are skipped."""
    found = []
    for entry in header.split():
        version, comma, value = entry.partition(",")
        if version != "v1" or not comma:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    # surrogatepass: a header value can hold any code point; it must not verify, but not raise either.
    return f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body


def _b64_hmac(key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")
