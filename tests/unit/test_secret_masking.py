"""logs: secrets, basic-auth data and Authorization values are masked wherever they would appear."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from hookd import logs
from hookd.logs import MASK, configure, get_logger, redact, register_secrets, scrub
from hookd.signing import whsec
from hookd.subscriptions.model import BasicAuth, Hook

SECRET = "XP_bXIFLbBngvoCGxhywFDBi7iV5DzZBJrbbwiKbmsk"
PASSWORD = "hunter2-correct-horse"

pytestmark = pytest.mark.usefixtures("secrets_registry")


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    """hookd's JSON logging into a buffer; structlog's defaults restored afterwards."""
    stream = io.StringIO()
    configure(fmt="json", level="debug", stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def _hook() -> Hook:
    return Hook(
        id="42",
        account_id="acme",
        url="https://hooks.example.com/in",
        events=("job",),
        secret=SECRET,
        basic_auth=BasicAuth("ops", PASSWORD),
        old_secrets=("previous-secret-value",),
    )


def test_registered_secret_inside_an_error_message_is_masked() -> None:
    """A registered secret quoted inside any string field is replaced by the mask."""
    register_secrets([SECRET])
    event = redact(None, "info", {"error": f"receiver said: bad key {SECRET}!"})
    assert event["error"] == f"receiver said: bad key {MASK}!"


def test_every_form_of_a_hooks_credentials_is_masked() -> None:
    """Secret, old secret, their whsec_ forms, the password and the basic-auth base64 are all masked."""
    hook = _hook()
    register_secrets(hook.sensitive_values())
    pair = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    values = [SECRET, whsec(SECRET), "previous-secret-value", whsec("previous-secret-value"), PASSWORD, pair]
    for value in values:
        assert value not in scrub(f"x {value} y"), value


def test_short_values_are_not_registered() -> None:
    """Values shorter than MIN_SECRET_CHARS are ignored, so ordinary words survive."""
    register_secrets(["ab", "ok"])
    assert scrub("ok, ab") == "ok, ab"


def test_masking_works_with_many_registered_secrets() -> None:
    """With thousands of secrets registered (the indexed path), each is still found."""
    values = [uuid.uuid4().hex for _ in range(3000)]
    register_secrets(values)
    assert scrub(f"a {values[1234]} b {values[2999]}") == f"a {MASK} b {MASK}"


class _CountingIndex(dict[str, tuple[str, ...]]):
    """The registry's prefix index, counting the values it hands out as candidates to check."""

    handed_out = 0

    def __getitem__(self, prefix: str) -> tuple[str, ...]:
        values = super().__getitem__(prefix)
        self.handed_out += len(values)
        return values


def test_masking_many_secrets_checks_only_the_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 10 000 secrets registered, a line is checked only against the values whose first characters
    occur in it (its length's worth of work, not the registry's size): what keeps scrubbing cheap."""
    values = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(10_000)]
    register_secrets(values)
    index = _CountingIndex(logs._secrets.by_prefix)
    monkeypatch.setattr(logs, "_secrets", dataclasses.replace(logs._secrets, by_prefix=index))
    line = f"HTTPConnectionPool(host='hooks.example.com', port=443): Read timed out. {values[1234]} (read timeout=10)"
    assert scrub(line) == line.replace(values[1234], MASK)
    width = logs.MIN_SECRET_CHARS
    windows = {line[i : i + width] for i in range(len(line) - width + 1)}
    sharing_a_window = sum(1 for v in values if v[:width] in windows)
    assert 1 <= index.handed_out <= sharing_a_window < len(values) // 10


def test_registering_again_is_cheap_and_idempotent() -> None:
    """Registering the same values again changes nothing."""
    register_secrets([SECRET])
    register_secrets([SECRET])
    assert scrub(SECRET) == MASK


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("headers={'Authorization': 'Basic b3BzOmh1bnRlcjI='}", "b3BzOmh1bnRlcjI="),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("proxy-authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("sent Basic b3BzOmh1bnRlcjI= to the receiver", "b3BzOmh1bnRlcjI="),
        ("token is Bearer abcdef0123456789", "abcdef0123456789"),
        ("amqp://hookd:s3cr3tpw@broker:5672/%2F", "s3cr3tpw"),
        ("postgresql://app:pg-pass-123@db/hooks", "pg-pass-123"),
    ],
)
def test_credential_patterns_are_masked_without_registration(text: str, leak: str) -> None:
    """Authorization values, Basic/Bearer credentials and URL passwords are masked even when unregistered."""
    assert leak not in scrub(text)


@pytest.mark.parametrize("text", ["basic auth failed", "Basic authentication is configured", "see https://x.example/"])
def test_prose_is_left_alone(text: str) -> None:
    """Words like 'basic auth' and plain URLs are not mistaken for credentials."""
    assert scrub(text) == text


def test_nested_values_are_scrubbed_without_mutating_the_input() -> None:
    """Strings inside nested mappings, lists and tuples are masked in a copy; the caller's objects stay as they were."""
    register_secrets([SECRET])
    problems = [f"hooks[0].url: contains {SECRET}", ("x", SECRET)]
    event = redact(None, "info", {"problems": problems, "detail": {"inner": [SECRET]}})
    assert event == {"problems": [f"hooks[0].url: contains {MASK}", ("x", MASK)], "detail": {"inner": [MASK]}}
    assert problems[0] == f"hooks[0].url: contains {SECRET}"


@pytest.mark.parametrize("key", ["salt", "secret_whsec", "old_secrets", "api_key", "Cookie", "credentials"])
def test_more_sensitive_keys_are_masked(key: str) -> None:
    """Keys naming a salt, whsec, old secrets, API key, cookie or credentials are masked whole."""
    assert redact(None, "info", {key: "value"})[key] == MASK


def test_traceback_text_is_scrubbed(json_stream: io.StringIO) -> None:
    """A secret inside an exception message does not reach the rendered traceback."""
    register_secrets([SECRET])
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        get_logger("t").exception("delivery.internal_error")
    assert SECRET not in json_stream.getvalue()
    assert "failed with ***" in json.loads(json_stream.getvalue())["exception"]


def test_message_and_context_variables_are_scrubbed(json_stream: io.StringIO) -> None:
    """Registered secrets are masked in the message itself and in bound context variables."""
    register_secrets([SECRET])
    structlog.contextvars.bind_contextvars(note=f"ctx {SECRET}")
    get_logger("t").info(f"msg {SECRET}")
    line: dict[str, Any] = json.loads(json_stream.getvalue())
    assert (line["msg"], line["note"]) == (f"msg {MASK}", f"ctx {MASK}")


def test_console_renderer_output_is_scrubbed() -> None:
    """The console format is masked the same way."""
    register_secrets([SECRET])
    stream = io.StringIO()
    configure(fmt="console", stream=stream)
    try:
        get_logger("t").warning("delivery.attempt", error=f"x {SECRET}")
    finally:
        structlog.reset_defaults()
    assert SECRET not in stream.getvalue()


def test_clear_secrets_forgets_everything() -> None:
    """clear_secrets() empties the registry (test isolation)."""
    register_secrets([SECRET])
    logs.clear_secrets()
    assert scrub(SECRET) == SECRET
