"""The field rules every entry shares (subscriptions.rules): lengths, text, URLs by RFC 3986, ordered and
rate_limit; and the text pattern /openapi.json states, held to the rule it describes."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import (
    NAME_MAX,
    PASSWORD_MAX,
    TEXT_PATTERN,
    URL_MAX,
    USERNAME_MAX,
    hook_problems,
    rate_limit_problem,
    text_problem,
    url_problem,
)


def _hook(**fields: object) -> Hook:
    values: dict[str, object] = {
        "id": "1",
        "account_id": "acme",
        "url": "https://hooks.example.com/in",
        "events": ("job",),
        "secret": "s",
    }
    values.update(fields)
    return Hook(**values)  # type: ignore[arg-type]


def _fields(hook: Hook) -> dict[str, str]:
    return {p.field: p.message for p in hook_problems(hook)}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/a b",
        'https://hooks.example.com/"quoted"',
        "https://hooks.example.com/<script>",
        "https://hooks.example.com/in\r\nX-Injected: 1",
        "https://hooks.example.com/in\n",
        "https://hooks.example.com/{x}",
        "https://hooks.example.com/a|b",
        "https://hooks.example.com/%zz",
        "https://hooks.example.com:65536/",
        "https://hooks.example.com:/",
        "https://hooks example.com/",
        " https://hooks.example.com/",
        "https://hooks.example.com/\u202egpj.exe",
        "https://hooks.example.com/\x00",
    ],
)
def test_urls_that_are_not_rfc_3986_uris_are_refused(url: str) -> None:
    """Spaces, quotes, <>, braces, |, bad percent-escapes, CR/LF, NUL, U+202E and ports past 65535 are refused."""
    assert url_problem(url) is not None
    assert "url" in _fields(_hook(url=url))


def test_a_url_longer_than_the_limit_is_refused() -> None:
    """A URL of URL_MAX characters is accepted, one more is refused with the limit named."""
    base = "https://hooks.example.com/"
    assert url_problem(base + "a" * (URL_MAX - len(base))) is None
    assert f"at most {URL_MAX}" in (url_problem(base + "a" * (URL_MAX - len(base) + 1)) or "")


@given(st.text(max_size=30))
def test_the_text_pattern_of_the_spec_says_what_text_problem_says(text: str) -> None:
    """For any text within the length limit, /openapi.json's text pattern matches exactly what text_problem accepts."""
    assert (re.fullmatch(TEXT_PATTERN, text) is not None) == (text_problem(text, max_chars=NAME_MAX) is None)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("a" * (NAME_MAX + 1), f"at most {NAME_MAX} characters"),
        ("ops\x00", "control characters"),
        ("ops\x1b[31m", "control characters"),
        ("ops\u202etxt.exe", "bidirectional"),
        ("ops\u2066", "bidirectional"),
        ("ops\ud800", "unpaired surrogate"),
        (7, "must be a string"),
    ],
)
def test_names_are_bounded_plain_text(value: object, fragment: str) -> None:
    """A name longer than NAME_MAX, with a control character, a bidi override or a lone surrogate is refused."""
    assert fragment in _fields(_hook(name=value))["name"]


def test_a_name_at_the_limit_with_any_printable_text_is_accepted() -> None:
    """Emoji, accents, tabs-free punctuation and NAME_MAX characters are fine in a name."""
    assert "name" not in _fields(_hook(name="Ops 🚀 café — " + "x" * (NAME_MAX - 14)))


@pytest.mark.parametrize(
    ("auth", "field", "fragment"),
    [
        (BasicAuth("u" * (USERNAME_MAX + 1), "p"), "basic_auth.username", f"at most {USERNAME_MAX}"),
        (BasicAuth("u\r\nX: y", "p"), "basic_auth.username", "control characters"),
        (BasicAuth("u", "p" * (PASSWORD_MAX + 1)), "basic_auth.password", f"at most {PASSWORD_MAX}"),
        (BasicAuth("u", "p\x00"), "basic_auth.password", "control characters"),
        (BasicAuth("u", "\ud800"), "basic_auth.password", "unpaired surrogate"),
        (BasicAuth("", "p"), "basic_auth.username", "required"),
    ],
)
def test_basic_auth_credentials_are_bounded_plain_text(auth: BasicAuth, field: str, fragment: str) -> None:
    """Basic-auth user and password: length limits, no control characters, valid Unicode; the password never echoed."""
    assert fragment in _fields(_hook(basic_auth=auth))[field]


def test_a_refused_password_is_never_echoed() -> None:
    """The problem with a password names what is wrong, never the password itself."""
    secret = "hunter2-very-secret\x00"
    assert all(secret not in p.message for p in hook_problems(_hook(basic_auth=BasicAuth("u", secret))))


@pytest.mark.parametrize("value", [None, True, False])
def test_ordered_is_true_false_or_unset(value: bool | None) -> None:
    """ordered: True, False or None (the installation's default)."""
    assert "ordered" not in _fields(_hook(ordered=value))


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_ordered_refuses_anything_else(value: object) -> None:
    """ordered: a string or a number is refused."""
    assert "true or false" in _fields(_hook(ordered=value))["ordered"]


@pytest.mark.parametrize("value", [None, 0.5, 2, 10_000])
def test_rate_limit_accepts_positive_numbers_and_unset(value: float | None) -> None:
    """rate_limit: fractional and whole numbers above 0, up to the maximum, or None."""
    assert rate_limit_problem(value) is None


@pytest.mark.parametrize("value", [0, -1, 10_000.5, float("inf"), float("nan"), True, "2", [2]])
def test_rate_limit_refuses_zero_negative_huge_and_non_numbers(value: object) -> None:
    """rate_limit: 0, negatives, above the maximum, inf, NaN, booleans and strings are refused."""
    assert "rate_limit" in _fields(_hook(rate_limit=value))


@given(st.text(alphabet=string.printable + "\u202e\ud800é", max_size=50))
def test_text_problem_never_raises(text: str) -> None:
    """text_problem answers a reason or None for any text, surrogates included."""
    assert text_problem(text, max_chars=20) is None or isinstance(text_problem(text, max_chars=20), str)
