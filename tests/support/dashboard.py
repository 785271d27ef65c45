"""What a Grafana dashboard's queries need from a scrape: every metric name and label each panel's
PromQL (and each query variable) uses, checked against a Prometheus exposition.

Not a PromQL parser, on purpose: hookd's panels use one metric per query, so the rule is simple and
strict. A selector `name{label=...}` needs `label` on `name`; a label in `by (...)`/`without (...)`,
in `label_values(name, label)` or in a legend's `{{label}}` needs to be on every metric of the query.
Labels Prometheus adds when it scrapes (`instance`, `job`) are not in an exposition and always pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: Labels the Prometheus server attaches to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})

_SELECTOR = re.compile(r"\b((?:hookd|process)_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


@dataclass(frozen=True, slots=True)
class Use:
    """One metric a panel's query uses, with the labels the query needs it to have."""

    panel: str
    metric: str
    labels: frozenset[str]


def scrape_labels(exposition: str) -> dict[str, set[str]]:
    """Sample name -> every label name it carries, from a Prometheus text exposition."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, expr, legend) of every panel target (rows' nested panels too) and query variable."""
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r}", str(target.get("expr", "")), str(target.get("legendFormat", ""))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            yield f"variable ${variable.get('name')}", text, ""


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def uses(dashboard: Mapping[str, Any]) -> list[Use]:
    """Every metric every query uses, with the labels it needs."""
    found: list[Use] = []
    for where, expr, legend in queries(dashboard):
        shared = {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()}
        shared |= set(_LEGEND.findall(legend))
        for metric, label in _LABEL_VALUES.findall(expr):
            found.append(Use(where, metric, frozenset({label})))
        for metric, braces in _SELECTOR.findall(expr):
            own = set(_MATCHER.findall(braces or ""))
            found.append(Use(where, metric, frozenset(own | shared)))
    return found


def problems(dashboard: Mapping[str, Any], scraped: Mapping[str, set[str]]) -> list[str]:
    """One line per metric a query uses that the scrape lacks, or label it lacks on that metric."""
    lines = []
    for use in uses(dashboard):
        if use.metric not in scraped:
            lines.append(f"{use.panel}: metric {use.metric} is not in the scrape")
            continue
        missing = sorted(use.labels - scraped[use.metric] - TARGET_LABELS)
        if missing:
            lines.append(f"{use.panel}: {use.metric} has no label {', '.join(missing)}")
    return sorted(set(lines))
