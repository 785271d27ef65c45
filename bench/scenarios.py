"""The rows of the table, as records: who sends, to which hooks, what load, judged against what.

`catalogue(sizes)` is the whole bench as data; `--only` picks groups of it; the harness runs each
record and knows nothing of any particular row. bench/README.md describes every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bench.load import HookSet
from bench.targets import (
    AllDelivered,
    FasterThan,
    NoneOutOfOrder,
    Note,
    P99Below,
    RateAtLeast,
    Reference,
    Relative,
    RssBelow,
    Target,
)

#: Who sends: hookd (this tree or the `--compare-rev` one), the peers of bench/peers/, the ceilings.
Contender = Literal["hookd", "hookd-prev", "naive", "aio", "node", "raw", "wrk"]
#: Contenders that consume the broker; `raw` and `wrk` POST directly.
BROKER_FREE: frozenset[str] = frozenset({"raw", "wrk"})


@dataclass(frozen=True)
class Load:
    """What is sent.

    `backlog`: the events are published first, then the contender starts and drains them.
    `burst`: the contender runs first, then the events are published at once (publish-to-receipt).
    `paced`: the contender runs; events are published steadily at `fraction` of row `rate_of`'s
    deliveries/s (or `--max-rate`) for `seconds`. `direct`: no broker (raw, wrk), for `seconds`
    (wrk) or `events` x hooks POSTs (raw). `jobs`: the events are jobs of three (issue 19).
    """

    kind: Literal["backlog", "burst", "paced", "direct"]
    events: int = 0
    jobs: bool = False
    seconds: float = 0.0
    fraction: float = 0.5
    rate_of: str = "fast-1p"


@dataclass(frozen=True)
class Scenario:
    name: str  # the row
    group: str  # what --only selects
    contender: Contender
    hooks: HookSet
    load: Load
    processes: int = 1
    on_cluster: bool = False  # a private three-node cluster instead of the machine's broker
    ordered: bool | None = None  # delivery.ordered_default for the row; None: hookd's default
    capture_order: bool = False  # count jobs out of order at the receiver
    window_s: float | None = None  # cap after the first receipt; None: --max-window
    profile: bool = False  # hookd under py-spy (its figures then measure py-spy too)
    targets: tuple[Target, ...] = field(default_factory=tuple)

    @property
    def reference(self) -> bool:
        return any(isinstance(t, Reference) for t in self.targets)


@dataclass(frozen=True)
class Sizes:
    """The sizes the command line sets (defaults: issue 22's measured shape, 5,000 events x 4 hooks)."""

    events: int = 5000
    hooks: int = 4
    slow_events: int = 300
    slow_ms: int = 100
    naive_window: float = 10.0
    naive_prefetch: int = 1
    latency_seconds: float = 15.0
    max_rate: float = 0.0
    backlog_events: int = 50_000
    backlog_window: float = 20.0
    max_window: float = 120.0
    jobs: int = 1000
    jitter_ms: int = 40
    ceiling_seconds: float = 10.0


def catalogue(s: Sizes, *, compare_rev: str | None = None, profile: bool = False) -> list[Scenario]:
    """Every row, in the order they run (cluster rows last: they share one private cluster)."""
    fast = HookSet(s.hooks)
    backlog = Load("backlog", s.events)
    jobs_fast = Load("backlog", s.jobs, jobs=True)
    rows = [
        Scenario(
            "receiver-ceiling",
            "ceiling",
            "wrk",
            fast,
            Load("direct", seconds=s.ceiling_seconds),
            targets=(Reference("the receiver's limit"),),
        ),
        Scenario("raw-ceiling", "raw", "raw", fast, Load("direct", s.events), targets=(Reference(),)),
        Scenario("naive-fast", "fast", "naive", fast, backlog, targets=(Reference(),)),
        Scenario("peer-aio", "peers", "aio", fast, backlog, targets=(Reference(),)),
        Scenario("peer-node", "peers", "node", fast, backlog, targets=(Reference(),)),
        Scenario(
            "fast-1p", "fast", "hookd", fast, backlog, targets=(Relative("naive-fast", 1.0), Relative("peer-node", 1.0))
        ),
    ]
    if compare_rev:
        rows.append(Scenario("fast-1p-prev", "fast", "hookd-prev", fast, backlog, targets=(Relative("fast-1p"),)))
    if profile:
        rows.append(
            Scenario(
                "fast-1p-profile",
                "profile",
                "hookd",
                fast,
                backlog,
                profile=True,
                targets=(Note("under py-spy: see the profile table"),),
            )
        )
    slow = HookSet(s.hooks, path=f"slow/{s.slow_ms}")
    hang = HookSet(10, hanging=1)  # one of ten never answers, whatever --hooks says
    rows += [
        Scenario("fast-2p", "2p", "hookd", fast, backlog, processes=2, targets=(Relative("fast-1p", 1.5),)),
        Scenario(
            "naive-slow",
            "slow",
            "naive",
            slow,
            Load("backlog", s.slow_events),
            window_s=s.naive_window,
            targets=(Reference(),),
        ),
        Scenario(
            "slow-1p", "slow", "hookd", slow, Load("backlog", s.slow_events), targets=(Relative("naive-slow", 20.0),)
        ),
        Scenario(
            "hang-10pct", "hang", "hookd", hang, Load("backlog", s.events // 2), targets=(Relative("fast-1p", 0.8),)
        ),
        Scenario(
            "latency-half-max",
            "latency",
            "hookd",
            fast,
            Load("paced", seconds=s.latency_seconds),
            window_s=s.latency_seconds + 30,
            targets=(P99Below(250),),
        ),
        Scenario(
            "rss-50k-backlog",
            "rss",
            "hookd",
            fast,
            Load("backlog", s.backlog_events),
            window_s=s.backlog_window,
            targets=(RssBelow(150),),
        ),
    ]
    many = HookSet(200, path="slow/1000")
    rows.append(
        Scenario(
            "slow-many", "slow-many", "hookd", many, Load("burst", 10), targets=(RateAtLeast(1000), P99Below(3000))
        )
    )
    if compare_rev:
        rows.append(
            Scenario(
                "slow-many-prev",
                "slow-many",
                "hookd-prev",
                many,
                Load("burst", 10),
                window_s=60,
                targets=(Relative("slow-many"),),
            )
        )
    rows.append(
        Scenario(
            "slow-1000",
            "slow-1000",
            "hookd",
            HookSet(1000, path="slow/2000"),
            Load("burst", 10),
            targets=(AllDelivered(), RssBelow(300)),
        )
    )
    jitter = HookSet(s.hooks, path=f"jitter/{s.jitter_ms}")
    rows += [
        Scenario(
            "jobs-ordered",
            "jobs",
            "hookd",
            jitter,
            Load("burst", s.jobs, jobs=True),  # published with hookd running: publish-to-receipt p99
            ordered=True,
            capture_order=True,
            targets=(NoneOutOfOrder(), AllDelivered()),
        ),
        Scenario(
            "jobs-unordered",
            "jobs",
            "hookd",
            jitter,
            Load("burst", s.jobs, jobs=True),
            ordered=False,
            capture_order=True,
            targets=(Note("control: the count is real"),),
        ),
        Scenario(
            "order-on-1p",
            "ordering",
            "hookd",
            fast,
            jobs_fast,
            ordered=True,
            capture_order=True,
            targets=(Relative("order-off-1p", 0.8),),
        ),
        Scenario(
            "order-off-1p",
            "ordering",
            "hookd",
            fast,
            jobs_fast,
            ordered=False,
            capture_order=True,
            targets=(Note("ordering off"),),
        ),
    ]
    rows += [
        Scenario(
            f"cluster-{n}p",
            "cluster",
            "hookd",
            fast,
            backlog,
            processes=n,
            on_cluster=True,
            targets=(Relative("cluster-1p"),) if n > 1 else (Note("3-node broker CPU"),),
        )
        for n in (1, 2, 3)
    ]
    rows += [
        Scenario(
            "cluster-order-on-1p",
            "ordering",
            "hookd",
            fast,
            jobs_fast,
            on_cluster=True,
            ordered=True,
            capture_order=True,
            targets=(Note("ordering on, one process"),),
        ),
        Scenario(
            "cluster-order-on-3p",
            "ordering",
            "hookd",
            fast,
            jobs_fast,
            processes=3,
            on_cluster=True,
            ordered=True,
            capture_order=True,
            targets=(FasterThan("cluster-order-on-1p"), Relative("cluster-order-off-3p")),
        ),
        Scenario(
            "cluster-order-off-3p",
            "ordering",
            "hookd",
            fast,
            jobs_fast,
            processes=3,
            on_cluster=True,
            ordered=False,
            capture_order=True,
            targets=(Note("ordering off"),),
        ),
    ]
    return rows


def groups(rows: list[Scenario]) -> list[str]:
    """The `--only` names, in running order."""
    return list(dict.fromkeys(row.group for row in rows))
