"""`make bench`: hookd against its peers and the receiver's own ceiling, in one run, on one broker
and one receiver. See bench/README.md for the rows, the columns and the targets.

    .venv/bin/python -m bench [--events 5000] [--hooks 4] [--only fast,peers,...] [--profile]

Not a test: nothing here asserts a time. Exit code 0 whatever the figures (1 only if the harness
itself could not run: broker unreachable, receiver not starting).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.brokers import local_broker
from bench.contenders import HookdBuild
from bench.harness import Harness
from bench.hookd_setup import settings_summary
from bench.load import ROOT
from bench.profile import merge
from bench.profile import table as profile_table
from bench.receiving import ReceiverProcess
from bench.report import RESULTS, evaluate, load_average, table, write
from bench.scenarios import Sizes, catalogue, groups
from hookd import __version__
from hookd.config import AMQP_URL_ENV, DEFAULT_AMQP_URL, Settings, amqp_urls

_SIZE_HELP = {
    "events": "events per fast backlog; each matches every hook",
    "hooks": "hooks every event of the fast rows matches, each on a host of its own",
    "slow_events": "events for the slow receiver",
    "slow_ms": "the slow receiver's delay",
    "naive_window": "seconds the naive baseline runs against the slow receiver",
    "naive_prefetch": "the naive baseline's prefetch",
    "latency_seconds": "seconds of paced publishing in latency-half-max",
    "max_rate": "deliveries/s latency-half-max takes as the maximum (0: fast-1p's, measured)",
    "backlog_events": "backlog of rss-50k-backlog",
    "backlog_window": "seconds hookd runs against it",
    "max_window": "cap of a run after its first receipt, seconds",
    "jobs": "jobs (of three events each) in the jobs and ordering rows",
    "jitter_ms": "the jobs rows' receiver answers after a random 0..this ms",
    "ceiling_seconds": "seconds wrk runs against the receiver",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Sizes):
        default = f.default
        assert isinstance(default, int | float)
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, type=type(default), default=default, help=f"{_SIZE_HELP[f.name]} (default {default})")
    every = groups(catalogue(Sizes(), compare_rev="REV", profile=True))
    default_only = [g for g in every if g != "profile"]
    parser.add_argument("--only", default=",".join(default_only), help=f"comma-separated subset of: {', '.join(every)}")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a hookd setting in every hookd run, e.g. --set state.history=false",
    )
    parser.add_argument("--compare-rev", metavar="REV", help="also run hookd at git revision REV (fast, slow-many)")
    parser.add_argument("--output", type=Path, default=None, help="JSON path (default bench/results/<timestamp>.json)")
    parser.add_argument(
        "--profile",
        nargs="?",
        const=RESULTS / "profile",
        default=None,
        type=Path,
        metavar="DIR",
        help="add the fast row once more with hookd under py-spy; the summary is printed, the collapsed stacks "
        "go to DIR (default bench/results/profile)",
    )
    args = parser.parse_args(argv)
    args.overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in {f.name for f in fields(Settings)}:
            parser.error(f"--set {item!r}: expected SECTION.KEY=VALUE with a section of hookd's config")
        args.overrides.setdefault(section, {})[name] = yaml.safe_load(value)
    selected = args.only.split(",")
    if args.profile is not None and "profile" not in selected:
        selected.append("profile")
    if "profile" in selected and args.profile is None:
        args.profile = RESULTS / "profile"
    if unknown := set(selected) - set(every):
        parser.error(f"unknown --only groups: {', '.join(sorted(unknown))}")
    args.selected = selected
    return args


@contextmanager
def previous_build(revision: str | None) -> Iterator[HookdBuild | None]:
    """`--compare-rev`: a temporary worktree at `revision` whose hookd runs the `-prev` rows."""
    if revision is None:
        yield None
        return
    tree = Path(tempfile.mkdtemp(prefix="hookd-bench-prev-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True, capture_output=True
    )
    try:
        yield HookdBuild(tree, revision)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        shutil.rmtree(tree.parent, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes(**{f.name: getattr(args, f.name) for f in fields(Sizes)})
    url = amqp_urls(os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL)[0]
    broker = local_broker(url)
    if (why := broker.reachable()) is not None:
        print(f"bench: cannot reach RabbitMQ at {url}: {why}", file=sys.stderr)
        return 1
    scenarios = [s for s in catalogue(sizes, compare_rev=args.compare_rev, profile=True) if s.group in args.selected]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    started, load_before = datetime.now(UTC), load_average()
    receiver = ReceiverProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="hookd-bench-") as tmp, previous_build(args.compare_rev) as prev:
            harness = Harness(
                sizes,
                receiver,
                broker,
                Path(tmp),
                args.overrides,
                previous=prev,
                profile_dir=args.profile.resolve() if args.profile else None,
            )
            harness.run_all(scenarios)
    finally:
        receiver.close()
    rows = evaluate(scenarios, harness.results)
    text = table(rows)
    profile_text = None
    if harness.profiles:
        profile_text = profile_table(merge([p for p, _ in harness.profiles]), sum(n for _, n in harness.profiles))
    seen = harness.settings_seen.get("hookd")
    settings: dict[str, Any] = settings_summary(seen) if isinstance(seen, Settings) else {}
    settings["overrides"] = args.overrides
    cli_args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out = write(
        args.output,
        started=started,
        finished=datetime.now(UTC),
        args=cli_args,
        hookd_settings=settings,
        rows=rows,
        text=text,
        profile_text=profile_text,
        load_before=load_before,
    )
    print()
    print(text)
    if profile_text:
        print()
        print(profile_text)
    history = "on" if settings.get("state", {}).get("history", True) else "off"
    overrides = f", overrides {args.overrides}" if args.overrides else ""
    print(
        f"\nhookd {__version__}, state.history {history}, {os.cpu_count()} CPUs, load average "
        f"{load_before} before / {load_average()} after{overrides}; results: {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
