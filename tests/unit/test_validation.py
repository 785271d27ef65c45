"""subscriptions.validation: the URL and events rules shared by every hook source."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.events import EVENTS, GROUPS
from hookd.subscriptions.rules import events_problems, url_problem


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "http://hooks.example.com:8080/in?x=1",
        "https://[2001:db8::1]/in",
        "https://faß.de/in",
    ],
)
def test_acceptable_urls(url: str) -> None:
    """http(s) URLs with a valid host and no userinfo are acceptable (url_problem is hookd.urls' rule)."""
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://hooks.example.com/", "must use http or https, not 'ftp'"),
        ("hooks.example.com/in", "must use http or https, not 'no scheme'"),
        ("https:///in", "must name a host"),
        ("https://u:p@hooks.example.com/", "must not carry credentials"),
        ("https://u@hooks.example.com/", "must not carry credentials"),
        ("https://hooks.example.com:http/", "a port is a number"),
        ("https://[::1/", "without its closing ']'"),
        ("  https://padded.example.com/  ", "must not contain a space"),
        ("https://hooks.example.com/in\r\n", "must not contain a carriage return"),
        ("", "must be a non-empty http or https URL"),
        ("   ", "must be a non-empty http or https URL"),
        (None, "must be a non-empty http or https URL"),
    ],
)
def test_unacceptable_urls(url: object, fragment: str) -> None:
    """Each unacceptable URL is refused with a specific reason."""
    problem = url_problem(url)
    assert problem is not None
    assert fragment in problem


@given(st.one_of(st.text(), st.from_regex(r"\Ahttps?://[^/]*(/.*)?\Z"), st.none(), st.integers(), st.binary()))
def test_url_problem_never_raises(url: object) -> None:
    """url_problem returns None or a reason for any input; it never raises."""
    result = url_problem(url)
    assert result is None or isinstance(result, str)


@given(st.lists(st.sampled_from(sorted(EVENTS | set(GROUPS))), min_size=1))
def test_known_events_and_groups_have_no_problems(events: list[str]) -> None:
    """Any non-empty list of catalogue events and groups is acceptable."""
    assert events_problems(events) == []


def test_each_unknown_event_is_reported() -> None:
    """Every unknown entry gets its own problem."""
    problems = events_problems(["job.failed", "nope", 3])
    assert len(problems) == 2
    assert problems[0].startswith("unknown event 'nope'")
    assert problems[1].startswith("unknown event 3")


@pytest.mark.parametrize("events", [[], (), "job", b"job", None, 5, {"job": 1}])
def test_events_must_be_a_non_empty_sequence(events: object) -> None:
    """An empty list, a string or a non-sequence is one problem."""
    assert len(events_problems(events)) == 1
