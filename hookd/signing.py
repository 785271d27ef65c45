"""Signing and verifying notification bodies (pure functions, no I/O).

`X-Hook-Signature` is the lowercase hex HMAC-SHA256 of the raw request body, keyed with the UTF-8
bytes of the hook's secret. Receivers recompute it over the bytes they received and compare in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hook-Signature"


def sign(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 digest of `body` keyed with `secret`."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """True when `signature` is the signature of `body` under `secret` (constant-time compare)."""
    if not signature:
        return False
    expected = sign(secret, body).encode("ascii")
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)
