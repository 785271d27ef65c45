"""What a row is judged against: small records, each judging one outcome given the others of the run.

Every ratio is taken within one run (the same broker, receiver and minute), which is what makes a
ratio comparable across runs when the absolute rates are not. A target that needs a row the run did
not have says `n/a`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bench.measure import Outcome


@dataclass(frozen=True)
class Judgement:
    text: str
    ok: bool | None  # None: nothing to pass or miss


class Target(Protocol):
    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement: ...


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 2)


@dataclass(frozen=True)
class Reference:
    """A reference row (a peer, a ceiling): nothing to judge."""

    text: str = "reference"

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        return Judgement(self.text, None)


@dataclass(frozen=True)
class Relative:
    """The rate (per process with `per_process`) against another row's; judged when `at_least` is set."""

    row: str
    at_least: float | None = None
    per_process: bool = False

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        other = rows.get(self.row)
        mine = outcome.per_s / outcome.processes if self.per_process else outcome.per_s
        found = ratio(mine, other.per_s if other else None)
        shown = "n/a" if found is None else f"{found}x"
        if self.at_least is None:
            return Judgement(f"{shown} of {self.row}", None)
        ok = None if found is None else found >= self.at_least
        return Judgement(f">={self.at_least}x {self.row}: {shown}", ok)


@dataclass(frozen=True)
class FasterThan:
    """Strictly faster than another row (issue 19: three processes on the cluster faster than one)."""

    row: str

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        other = rows.get(self.row)
        found = ratio(outcome.per_s, other.per_s if other else None)
        return Judgement(f"> {self.row}: {found}x", None if found is None else found > 1.0)


@dataclass(frozen=True)
class RateAtLeast:
    per_s_per_process: float

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        ok = outcome.per_s / outcome.processes >= self.per_s_per_process
        return Judgement(f">={self.per_s_per_process:g}/s per process", ok)


@dataclass(frozen=True)
class P99Below:
    ms: float

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        p99 = (outcome.latency_ms or {}).get("p99")
        return Judgement(f"p99 < {self.ms:g} ms", None if p99 is None else p99 < self.ms and outcome.complete)


@dataclass(frozen=True)
class RssBelow:
    mb: float

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        rss = outcome.peak_rss_mb
        return Judgement(f"peak RSS < {self.mb:g} MB", None if rss is None else rss < self.mb)


@dataclass(frozen=True)
class AllDelivered:
    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        return Judgement("all delivered", outcome.complete)


@dataclass(frozen=True)
class NoneOutOfOrder:
    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        found = outcome.jobs_out_of_order
        return Judgement("0 jobs out of order", None if found is None else found == 0)


@dataclass(frozen=True)
class Note:
    """Words for the target column, judging nothing."""

    text: str

    def judge(self, outcome: Outcome, rows: Mapping[str, Outcome]) -> Judgement:
        return Judgement(self.text, None)


def verdict(judgements: list[Judgement], *, reference: bool) -> str:
    """`ref` for references, `PASS`/`MISS` when anything was judged, else `info`."""
    if reference:
        return "ref"
    judged = [j.ok for j in judgements if j.ok is not None]
    if not judged:
        return "info"
    return "PASS" if all(judged) else "MISS"
