"""The admin API's and console's pure pieces: cross-site refusal, paging and `since` bounds, the request
body rules, the console form's group/event rule, plain words, the 24-hour picture; and ordered and
rate_limit through the hooks file and the config."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hookd.api import chart, crosssite, wording
from hookd.api.bodies import NO_CREDENTIALS, api_changes, form_changes
from hookd.api.errors import ApiError
from hookd.api.paging import MAX_OFFSET, page, since_parameter
from hookd.config import parse_settings
from hookd.errors import ConfigError
from hookd.events import CATALOGUE, GROUPS
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.yaml_store import dump_hooks, parse_hooks

OWN = "http://127.0.0.1:8780/"


# -- cross-site ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:8781"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://attacker.example"},
    ],
)
def test_requests_a_browser_marks_as_cross_site_are_refused(headers: dict[str, str]) -> None:
    """Sec-Fetch-Site other than same-origin/none, or a foreign (or null) Origin, is refused."""
    assert crosssite.refusal(headers, OWN) is not None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Origin": "http://127.0.0.1:8780"}],
)
def test_programs_and_this_origin_pass(headers: dict[str, str]) -> None:
    """No fetch metadata (curl, requests), this origin's own pages and typed URLs pass."""
    assert crosssite.refusal(headers, OWN) is None


def test_a_browser_is_never_challenged_with_basic() -> None:
    """A request with fetch metadata or accepting HTML looks like a browser's; a plain client does not."""
    assert crosssite.is_browser({"Sec-Fetch-Mode": "navigate"})
    assert crosssite.is_browser({"Accept": "text/html,application/xhtml+xml"})
    assert not crosssite.is_browser({"Accept": "application/json"})
    assert "Basic" not in crosssite.BROWSER_CHALLENGE


@pytest.mark.parametrize(("mimetype", "json"), [("application/json", True), ("application/vnd.x+json", True),
                                                ("text/plain", False), ("application/x-www-form-urlencoded", False),
                                                ("multipart/form-data", False), ("", False)])  # fmt: skip
def test_only_json_types_count_as_json(mimetype: str, json: bool) -> None:
    """application/json and +json types are JSON; the types a form can send without a preflight are not."""
    assert crosssite.is_json(mimetype) is json


# -- paging and since -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        {"offset": "9223372036854775808"},
        {"offset": str(MAX_OFFSET + 1)},
        {"offset": ""},
        {"offset": "-1"},
        {"offset": "²"},
        {"offset": " 5"},
        {"limit": "0"},
        {"limit": ""},
        {"sort": ""},
        {"direction": "up"},
    ],
)
def test_paging_numbers_are_bounded_and_empty_values_refused(args: dict[str, str]) -> None:
    """Offsets past MAX_OFFSET (or 2^63), empty, negative or non-ASCII numbers are a 422, never a 500."""
    with pytest.raises(ApiError) as info:
        page(args)
    assert info.value.status == 422


def test_a_huge_limit_is_served_as_the_maximum() -> None:
    """A limit of any size, even past what int() reads, is clamped to MAX_LIMIT."""
    assert page({"limit": "9" * 5000}).limit == page({"limit": "101"}).limit == 100


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-29T03:00:00Z", datetime(2026, 11, 29, 3, tzinfo=UTC)),
        ("2026-11-29T05:00:00+02:00", datetime(2026, 11, 29, 3, tzinfo=UTC)),
        ("2026-11-29t03:00:00.5z", datetime(2026, 11, 29, 3, 0, 0, 500000, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("0000-01-01T00:00:00Z", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59-05:00", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_since_reads_rfc_3339_times(raw: str, expected: datetime) -> None:
    """since: RFC 3339 with an offset; leap seconds and years out of Python's range are clamped."""
    assert since_parameter(raw) == expected


@pytest.mark.parametrize("raw", ["", "2026-11-29", "2026-11-29T03:00:00", "2026-02-30T00:00:00Z", "yesterday",
                                 "\uff12\uff10\uff12\uff16-11-29T03:00:00Z", "2026-11-29T03:00:00+24:00"])  # fmt: skip
def test_since_refuses_what_is_not_rfc_3339(raw: str) -> None:
    """since: empty, date-only, no offset, impossible dates and non-ASCII digits are not times."""
    assert since_parameter(raw) is None


@given(st.text(max_size=40))
def test_since_never_raises(raw: str) -> None:
    """since_parameter answers a time or None for any text."""
    assert since_parameter(raw) is None or since_parameter(raw).tzinfo is not None  # type: ignore[union-attr]


# -- request bodies -------------------------------------------------------------------------------------
def _current(**fields: object) -> Hook:
    values: dict[str, object] = {"id": "1", "account_id": "a", "url": "https://x.example/", "events": ("job",)}
    return Hook(secret="s", **{**values, **fields})  # type: ignore[arg-type]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_basic_auth_false_with_data_is_refused() -> None:
    """basic_auth false beside basic_auth_data is a problem, not silently ignored."""
    read = api_changes({"settings": {"basic_auth": False, "basic_auth_data": _b64("u:p")}}, current=_current())
    assert [p.field for p in read.problems] == ["settings.basic_auth_data"]


def test_basic_auth_true_on_a_hook_without_credentials_is_a_conflict() -> None:
    """PUT basic_auth true without data: keeps existing credentials; a hook without any is a 409 conflict."""
    assert api_changes({"settings": {"basic_auth": True}}, current=_current()).conflict == NO_CREDENTIALS
    kept = api_changes({"settings": {"basic_auth": True}}, current=_current(basic_auth=BasicAuth("u", "p")))
    assert kept.conflict is None and kept.changes == {} and kept.problems == []


@pytest.mark.parametrize("value", [None, 1, "yes"])
def test_non_boolean_basic_auth_is_refused(value: object) -> None:
    """basic_auth: null, numbers and strings are refused (null is not "absent")."""
    assert api_changes({"settings": {"basic_auth": value}}, current=_current()).problems


def test_values_are_taken_as_sent() -> None:
    """Names, URLs and events are not trimmed: the rules judge what was sent, as the spec does."""
    read = api_changes({"name": " ops ", "events": ["job", "job"], "settings": {"url": " https://x.example/"}})
    assert read.changes["name"] == " ops " and read.changes["url"] == " https://x.example/"
    assert read.changes["events"] == ["job"]


def test_ordered_and_rate_limit_pass_through_with_null_meaning_default() -> None:
    """settings.ordered and settings.rate_limit are changes; null resets them."""
    read = api_changes({"settings": {"ordered": False, "rate_limit": 0.5}}, current=_current())
    assert read.changes == {"ordered": False, "rate_limit": 0.5}
    read = api_changes({"settings": {"ordered": None, "rate_limit": None}}, current=_current())
    assert read.changes == {"ordered": None, "rate_limit": None}


# -- the console form -----------------------------------------------------------------------------------
def _form(*events: str, shown: tuple[str, ...] = (), **more: str) -> dict[str, list[str]]:
    form = {"url": ["https://x.example/"], "events": list(events), "shown_events": [",".join(shown)]}
    form.update({k: [v] for k, v in more.items()})
    return form


def test_unticking_one_event_of_a_ticked_group_stores_the_rest() -> None:
    """The group box still ticked, one of its shown events unticked: the other events are stored one by one."""
    jobs = [e.name for e in CATALOGUE[0].events]
    posted = _form("job", *jobs[1:], shown=("job", *jobs))
    assert form_changes(posted, ordered_default=True)["events"] == list(jobs[1:])


def test_a_ticked_group_stands_for_itself() -> None:
    """A group ticked on a new form (its events not shown ticked before) is the group, whatever else is ticked."""
    assert form_changes(_form("job", "job.failed"), ordered_default=True)["events"] == ["job"]
    every = _form("job", *sorted(GROUPS["job"]), shown=("job", *GROUPS["job"]))
    assert form_changes(every, ordered_default=True)["events"] == ["job"]


def test_the_ordered_box_keeps_the_default_unless_changed() -> None:
    """A box left as the installation's default stores no choice; the opposite stores one."""
    assert form_changes(_form("job", ordered="on"), ordered_default=True)["ordered"] is None
    assert form_changes(_form("job"), ordered_default=True)["ordered"] is False
    assert form_changes(_form("job", ordered="on"), ordered_default=True, current=_current(ordered=False))["ordered"]


def test_the_rate_limit_field_is_a_number_or_empty() -> None:
    """Empty: no limit; a number: the limit; text: handed to the rules as is (they refuse it)."""
    assert form_changes(_form("job", rate_limit=""), ordered_default=True)["rate_limit"] is None
    assert form_changes(_form("job", rate_limit="0.5"), ordered_default=True)["rate_limit"] == 0.5
    assert form_changes(_form("job", rate_limit="fast"), ordered_default=True)["rate_limit"] == "fast"


# -- words and the picture ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        ("gaierror: [Errno -2] Name or service not known", None, "host name does not resolve"),
        ("OSError: cannot connect to x:1: [Errno 111] Connection refused", None, "connection refused"),
        (
            "SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "Hostname mismatch, certificate is not valid for 'x'.",
            None,
            "TLS certificate not valid for this host",
        ),
        ("timeout: deadline of 10 s exceeded", None, "timed out after 10 s"),
        ("HTTP 503", 503, "HTTP 503"),
        (None, 500, "HTTP 500"),
    ],
)
def test_errors_in_plain_words(error: str | None, status: int | None, words: str) -> None:
    """The sender's raw errors read as what happened."""
    assert wording.plain_error(error, status) == words


def test_times_read_as_how_long_ago() -> None:
    """Minutes, hours and days ago; "just now" under a minute."""
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert wording.ago(now - timedelta(seconds=10), now) == "just now"
    assert wording.ago(now - timedelta(minutes=3), now) == "3 min ago"
    assert wording.ago(now - timedelta(hours=5), now) == "5 h ago"
    assert wording.ago(now - timedelta(days=2), now) == "2 days ago"
    assert wording.exact(now) == "2026-11-29 12:00:00 UTC"


def test_the_picture_has_one_bar_per_hour_with_its_counts() -> None:
    """24 hours, oldest first; each hour's group carries its delivered and failed counts; totals on the svg."""
    now = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    counts = {datetime(2026, 11, 29, 12, tzinfo=UTC): (3, 1), datetime(2026, 11, 28, 13, tzinfo=UTC): (0, 2)}
    window = chart.hours(counts, now)
    assert len(window) == 24 and window[0].start == datetime(2026, 11, 28, 13, tzinfo=UTC)
    drawn = str(chart.svg(window, ident="c"))
    bars = re.findall(r'data-hour="([^"]+)" data-delivered="(\d+)" data-failed="(\d+)"', drawn)
    assert len(bars) == 24
    assert ("2026-11-29T12", "3", "1") in bars and ("2026-11-28T13", "0", "2") in bars
    assert 'data-delivered="3" data-failed="3"' in drawn and "<script" not in drawn and "style=" not in drawn


# -- ordered and rate_limit through the hooks file and the config ---------------------------------------
def test_the_hooks_file_reads_and_writes_ordered_and_rate_limit() -> None:
    """ordered and rate_limit parse from the hooks file and export round-trips them (unset stays unset)."""
    entry = {"account_id": "a", "url": "https://x.example/", "events": ["job"], "secret": "s"}
    doc = {"hooks": [{"id": 1, **entry, "ordered": False, "rate_limit": 0.5}, {"id": 2, **entry}]}
    hooks = list(parse_hooks(yaml.safe_dump(doc), source="t", base_dir=Path("/"), environ={}))
    assert (hooks[0].ordered, hooks[0].rate_limit, hooks[1].ordered, hooks[1].rate_limit) == (False, 0.5, None, None)
    again = list(parse_hooks(dump_hooks(hooks), source="t", base_dir=Path("/"), environ={}))
    assert again == hooks


def test_the_hooks_file_refuses_bad_ordered_and_rate_limit() -> None:
    """ordered must be a boolean, rate_limit a positive number."""
    doc = {"hooks": [{"id": 1, "account_id": "a", "url": "https://x.example/", "events": ["job"], "secret": "s",
                      "ordered": "yes", "rate_limit": 0}]}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_hooks(yaml.safe_dump(doc), source="t", base_dir=Path("/"), environ={})
    assert {p.split(":")[0] for p in info.value.problems} == {"hooks[0].ordered", "hooks[0].rate_limit"}


def test_ordered_default_is_true_and_must_be_a_boolean() -> None:
    """delivery.ordered_default defaults to true; a non-boolean is a config error naming the key."""
    base = {"subscriptions": {"path": "hooks.yaml"}}
    assert parse_settings(base, path=Path("/etc/h.yaml"), environ={}).delivery.ordered_default is True
    off = parse_settings({**base, "delivery": {"ordered_default": False}}, path=Path("/etc/h.yaml"), environ={})
    assert off.delivery.ordered_default is False
    with pytest.raises(ConfigError) as info:
        parse_settings({**base, "delivery": {"ordered_default": "sometimes"}}, path=Path("/etc/h.yaml"), environ={})
    assert any("delivery.ordered_default" in p for p in info.value.problems)
