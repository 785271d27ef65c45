"""`hookd deliveries list` and `show` read the history the daemon recorded in the state database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import Cli, Recorder, attempt, settlement

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def deliveries(capsys: pytest.CaptureFixture[str], yaml_config: Path, record: Recorder) -> Cli:
    """`hookd` on a state database holding three deliveries: d-old (failed), d-mid (retrying), d-new."""
    record(
        attempt("d-old", status=500, outcome="retryable", at=NOW - timedelta(days=3)),
        attempt("d-old", number=2, status=None, outcome="retryable", error="timed out", at=NOW - timedelta(days=2)),
        settlement("d-old", "failed", 2, at=NOW - timedelta(days=2)),
        attempt(
            "d-mid", hook_id="43", event="cluster.error", status=503, outcome="retryable", at=NOW - timedelta(hours=3)
        ),
        settlement("d-mid", "retrying", 1, hook_id="43", event="cluster.error", at=NOW - timedelta(hours=3)),
        attempt("d-new", at=NOW - timedelta(minutes=5)),
    )
    return Cli(capsys, yaml_config)


def _ids(cli: Cli, *argv: str) -> list[str]:
    return [row["delivery_id"] for row in cli("deliveries", "list", *argv, "--json").json()]


def test_list_is_newest_first(deliveries: Cli) -> None:
    """list returns every delivery, most recently updated first."""
    assert _ids(deliveries) == ["d-new", "d-mid", "d-old"]


def test_list_prints_one_line_per_delivery(deliveries: Cli) -> None:
    """The table has a header, then one line per delivery: id, hook, event, state, attempts, status, time."""
    lines = deliveries("deliveries", "list").out.splitlines()
    assert lines[0].split() == ["DELIVERY", "HOOK", "EVENT", "STATE", "ATTEMPTS", "LAST", "STATUS", "UPDATED"]
    assert lines[2].split() == ["d-mid", "43", "cluster.error", "retrying", "1", "503", lines[2].split()[-1]]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[2].split()[-1]) and len(lines) == 4


def test_list_filters_by_hook(deliveries: Cli) -> None:
    """--hook keeps only that hook's deliveries."""
    assert _ids(deliveries, "--hook", "43") == ["d-mid"]


def test_list_filters_by_status(deliveries: Cli) -> None:
    """--status keeps only deliveries in that state."""
    assert _ids(deliveries, "--status", "failed") == ["d-old"]
    assert _ids(deliveries, "--status", "delivered") == ["d-new"]


def test_list_since_accepts_a_relative_duration(deliveries: Cli) -> None:
    """--since 4h keeps deliveries updated in the last four hours."""
    assert _ids(deliveries, "--since", "4h") == ["d-new", "d-mid"]
    assert _ids(deliveries, "--since", "15m") == ["d-new"]


def test_list_since_accepts_iso_8601(deliveries: Cli) -> None:
    """--since takes an ISO 8601 time with Z, and a date (midnight UTC)."""
    since = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _ids(deliveries, "--since", since) == ["d-new", "d-mid"]
    assert _ids(deliveries, "--since", (NOW + timedelta(days=1)).date().isoformat()) == []


def test_list_limit(deliveries: Cli) -> None:
    """--limit N returns the N newest."""
    assert _ids(deliveries, "--limit", "2") == ["d-new", "d-mid"]


@pytest.mark.parametrize("argv", [["--since", "yesterday"], ["--limit", "0"], ["--status", "lost"]])
def test_list_refuses_bad_filters(deliveries: Cli, argv: list[str]) -> None:
    """A filter that cannot be understood exits 2 naming the option."""
    result = deliveries("deliveries", "list", *argv)
    assert result.code == 2 and f"argument {argv[0]}" in result.err


def test_show_lists_every_attempt(deliveries: Cli) -> None:
    """show prints the delivery and each attempt in order with status, duration, outcome and error."""
    shown = deliveries("deliveries", "show", "d-old", "--json").json()
    assert shown["state"] == "failed" and shown["attempts"] == 2 and shown["hook_id"] == "42"
    log = shown["attempt_log"]
    assert [(a["attempt"], a["status"], a["outcome"], a["error"]) for a in log] == [
        (1, 500, "retryable", None),
        (2, None, "retryable", "timed out"),
    ]
    assert log[0]["duration_ms"] == 12.5 and log[0]["response_excerpt"] == "answer 500"


def test_show_prints_attempts_for_people(deliveries: Cli) -> None:
    """The human show has the delivery block and an attempts table with the error text."""
    out = deliveries("deliveries", "show", "d-old").out
    assert out.startswith("delivery d-old\n") and "state        failed" in out
    assert "12.5 ms" in out and "timed out" in out


def test_show_unknown_delivery_is_refused(deliveries: Cli) -> None:
    """show of an id that was never recorded exits 2."""
    result = deliveries("deliveries", "show", "nope")
    assert result.code == 2 and "no delivery with id 'nope'" in result.err


def test_list_without_a_state_database_is_empty(yaml_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before anything was delivered, list says so and does not create the state database."""
    result = Cli(capsys, yaml_config)("deliveries", "list")
    assert result.code == 0 and result.out == "no deliveries\n"
