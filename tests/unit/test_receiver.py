"""receiver.describe: the one line the local receiver prints per delivery."""

from __future__ import annotations

import time

from hookd.receiver import _Handler, describe
from hookd.signing import sign, standard_headers

BODY = b'{"id":"j-1","state":"failed"}'
SECRET = "s3cr3t-value"


def _headers(signature: str | None) -> dict[str, str]:
    headers = {
        "X-Hook-Event": "job.failed",
        "X-Hook-ID": "42",
        "X-Hook-Delivery": "d-1",
        "X-Hook-Attempt": "2",
    }
    if signature is not None:
        headers["X-Hook-Signature"] = signature
    return headers


def _secrets(hook_id: str) -> list[str]:
    return {"42": ["old-secret", SECRET]}.get(hook_id, [])


def test_verified_line_format() -> None:
    """A correctly signed delivery prints `EVENT hook=ID delivery=DID attempt=N signature verified`."""
    assert describe(_headers(sign(SECRET, BODY)), BODY, _secrets) == (
        True,
        "job.failed hook=42 delivery=d-1 attempt=2 signature verified",
    )


def test_any_known_secret_verifies() -> None:
    """A signature made with any of the hook's secrets (rotation) verifies."""
    assert describe(_headers(sign("old-secret", BODY)), BODY, _secrets)[0]


def test_missing_signature_header() -> None:
    """A delivery without X-Hook-Signature fails and says so."""
    verified, line = describe(_headers(None), BODY, _secrets)
    assert not verified
    assert line == "job.failed hook=42 delivery=d-1 attempt=2 signature FAILED: no X-Hook-Signature header"


def test_unknown_hook() -> None:
    """A delivery for a hook without a known secret fails and names the hook."""
    headers = {**_headers(sign(SECRET, BODY)), "X-Hook-ID": "99"}
    verified, line = describe(headers, BODY, _secrets)
    assert not verified
    assert line.endswith("signature FAILED: no secret known for hook 99")


def test_signature_mismatch() -> None:
    """A delivery whose body was altered fails as a mismatch."""
    verified, line = describe(_headers(sign(SECRET, BODY)), BODY + b" ", _secrets)
    assert not verified
    assert line == "job.failed hook=42 delivery=d-1 attempt=2 signature FAILED: mismatch (wrong secret or altered body)"


def test_missing_descriptive_headers_print_question_marks() -> None:
    """Absent event, hook, delivery and attempt headers are shown as `?`."""
    verified, line = describe({"X-Hook-Signature": "abc"}, BODY, lambda _hook: [])
    assert not verified
    assert line.startswith("? hook=? delivery=? attempt=? signature FAILED")


def test_non_ascii_signature_is_a_mismatch() -> None:
    """A garbled (non-ASCII) signature header is reported as a mismatch rather than raising."""
    verified, line = describe(_headers("sïgnature"), BODY, _secrets)
    assert not verified
    assert line.endswith("mismatch (wrong secret or altered body)")


def test_line_never_contains_secret_or_body() -> None:
    """The printed line shows neither the secret nor the body."""
    _verified, line = describe(_headers(sign(SECRET, BODY)), BODY, _secrets)
    assert SECRET not in line
    assert "j-1" not in line


def test_standard_webhooks_headers_are_verified_too() -> None:
    """With the Standard Webhooks headers present, they must verify as well as X-Hook-Signature."""
    headers = {**_headers(sign(SECRET, BODY)), **standard_headers([SECRET], "d-1", BODY)}
    assert describe(headers, BODY, _secrets) == (True, "job.failed hook=42 delivery=d-1 attempt=2 signature verified")
    forged = {**headers, "webhook-signature": standard_headers(["not-the-secret"], "d-1", BODY)["webhook-signature"]}
    verified, line = describe(forged, BODY, _secrets)
    assert not verified
    assert line.endswith("signature FAILED: webhook-signature mismatch (wrong secret, altered body or old timestamp)")


def test_a_stale_standard_webhooks_timestamp_fails() -> None:
    """A webhook-timestamp far from now (a replay) does not verify, even with the right secret."""
    old = standard_headers([SECRET], "d-1", BODY, timestamp=int(time.time()) - 3600)
    verified, _line = describe({**_headers(sign(SECRET, BODY)), **old}, BODY, _secrets)
    assert not verified


def test_the_receiver_answers_without_nagle_delays() -> None:
    """The handler turns Nagle's algorithm off: a keep-alive client would otherwise wait ~40 ms per answer."""
    assert _Handler.disable_nagle_algorithm is True
