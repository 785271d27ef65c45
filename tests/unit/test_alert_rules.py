"""The alerting rules' promises that need no rule engine: every alert carries a summary, a description
naming its hook or queue, and a runbook link to a section of docs/operations.md that exists; and the
promtool test file has, for every alert, a case that fires it and a case that does not."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "hookd-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "hookd-rules.test.yml"
GUIDE = ROOT / "docs" / "operations.md"
RUNBOOK = "file:///usr/share/doc/hookd/operations.md#"


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def slug(heading: str) -> str:
    """A Markdown heading's anchor as GitHub (and most renderers) make it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def sections() -> dict[str, str]:
    """Anchor -> the text of that section of the guide, up to the next heading."""
    found: dict[str, str] = {}
    anchor = None
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            anchor = slug(line.lstrip("#"))
            found[anchor] = ""
        elif anchor is not None:
            found[anchor] += line + "\n"
    return found


def test_the_rules_file_has_the_alerts_the_issue_lists() -> None:
    """No worker, broker, events and retry backlog, dead letters, circuit, disabled, p99, history, ordering."""
    names = {rule["alert"] for rule in alerts()}
    assert names == {
        "HookdNoWorkerConsuming",
        "HookdBrokerDisconnected",
        "HookdEventsBacklogGrowing",
        "HookdPartitionBacklogGrowing",
        "HookdRetryQueueGrowing",
        "HookdDeadLetters",
        "HookdCircuitOpen",
        "HookdHookDisabled",
        "HookdDeliveryLatencyHigh",
        "HookdHistoryDropped",
        "HookdOrderedWaitingGrowing",
    }


def test_every_alert_has_a_summary_a_description_and_a_runbook_that_says_what_to_do() -> None:
    """The runbook link points at a section of operations.md with a "What to do" of its own."""
    guide = sections()
    for rule in alerts():
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), rule["alert"]
        assert notes["runbook_url"].startswith(RUNBOOK), rule["alert"]
        anchor = notes["runbook_url"].removeprefix(RUNBOOK)
        assert anchor == slug(rule["alert"]), rule["alert"]
        assert anchor in guide, f"{rule['alert']}: no section #{anchor} in docs/operations.md"
        assert "What to do" in guide[anchor], f"{rule['alert']}: its runbook section says no 'What to do'"


def test_a_per_hook_or_per_queue_alert_names_its_hook_or_queue() -> None:
    """An alert grouped by hook or queue says which, in its summary and description."""
    for rule in alerts():
        for label in ("hook_id", "queue", "instance"):
            grouped = f"by ({label})" in rule["expr"] or (label == "instance" and "by (" not in rule["expr"])
            if grouped and "absent(" not in rule["expr"] and "histogram_quantile" not in rule["expr"]:
                for key in ("summary", "description"):
                    assert f"$labels.{label}" in rule["annotations"][key], (rule["alert"], key)


def test_every_alert_has_a_firing_and_a_quiet_case_in_the_promtool_tests() -> None:
    """Each alert is expected to fire in one test case and expected silent in another."""
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert cases["rule_files"] == [RULES.name]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases["tests"]:
        assert case["input_series"], case["name"]
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fires == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a quiet case"
