"""What every command shares: exit codes, argument types, parser building blocks, action dispatch.

Argument types raise `argparse.ArgumentTypeError`, which argparse reports as a usage error (exit 2)
before anything runs: durations, times, booleans, rates and limits are parsed here, once. A bad
argument found later (it needs the settings or the store) raises `UsageError`; `run_action` and
`cli.main` report it as exit code 2 as well. Runtime failures (`StoreError`, `BrokerError`) are
exit code 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from hookd.config import Settings, load_settings
from hookd.errors import HookNotFound, UsageError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Action = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_DURATION = re.compile(r"(\d{1,12})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/\s*([sm]))?")
#: Longer than any duration a command needs; `timedelta` itself overflows near 2.7 million years.
MAX_DURATION = timedelta(days=365 * 1000)
#: The longest rotation overlap: an old secret that never expires defeats the rotation.
MAX_OVERLAP = timedelta(days=30)


# -- argument types ------------------------------------------------------------------------------------
def duration(value: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """`90s`, `15m`, `2h`, `7d`, `1w`: more than zero and at most `maximum`."""
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30m, 24h or 7d, got {value!r}")
    amount = int(match[1])
    try:
        span = timedelta(**{_UNITS[match[2]]: amount})
    except OverflowError:
        span = None
    if span is None or not timedelta(0) < span <= maximum:
        raise argparse.ArgumentTypeError(
            f"the duration must be more than 0 and at most {_shown(maximum)}, got {value!r}"
        )
    return span


def overlap(value: str) -> timedelta:
    """A secret rotation overlap: a duration of at most 30 days."""
    return duration(value, maximum=MAX_OVERLAP)


def since(value: str, *, now: datetime | None = None) -> datetime:
    """`2026-11-29T03:00:00Z`, `2026-11-29` (midnight UTC), or a duration ago: `90s`, `15m`, `2h`, `7d`.

    A time without a zone is UTC.
    """
    text = value.strip()
    if _DURATION.fullmatch(text.lower()):
        return (now or datetime.now(UTC)) - duration(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time (2026-11-29T03:00:00Z, 2026-11-29) or a duration (15m, 2h, 7d), got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def boolean(value: str) -> bool:
    """`true`/`false` (also yes/no, on/off, 1/0)."""
    text = value.strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def rate(value: str) -> float:
    """`10/s`, `2.5/s`, `300/m` or a bare `10` (per second) as messages per second."""
    match = _RATE.fullmatch(value.strip())
    number = float(match[1]) if match else 0.0
    if not match or number <= 0:
        raise argparse.ArgumentTypeError(f"expected a rate like 10/s, 0.5/s or 300/m, got {value!r}")
    return number / 60 if match[2] == "m" else number


def limit(value: str) -> int:
    """A whole number from 1 to 100,000."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100000, got {value!r}")
    return number


def _shown(span: timedelta) -> str:
    return f"{span.days}d" if span.days else f"{int(span.total_seconds())}s"


# -- parsers -------------------------------------------------------------------------------------------
def common_options(*, json_output: bool = True, config_required: bool = True) -> argparse.ArgumentParser:
    """The options every action takes, as a parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", required=config_required, type=Path, metavar="PATH", help="path to hookd.yaml")
    if json_output:
        parent.add_argument("--json", action="store_true", help="print JSON instead of a table (for scripts)")
    return parent


def add_command(sub: Subparsers, name: str, *, help_text: str, epilog: str, handler: Action) -> argparse.ArgumentParser:
    """A single command (`hookd NAME ...`) whose arguments the caller adds."""
    parser = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=_Formatter)
    parser.set_defaults(handler=handler)
    return parser


def add_group(sub: Subparsers, name: str, *, help_text: str, epilog: str, actions: Mapping[str, Action]) -> Subparsers:
    """A command group (`hookd NAME ACTION ...`) and the subparsers of its actions."""
    group = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=_Formatter)
    group.set_defaults(handler=lambda args: run_action(name, actions, args))
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_action(
    actions: Subparsers, name: str, *, help_text: str, example: str, parents: list[argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    return actions.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        parents=parents,
        formatter_class=_Formatter,
    )


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's example lines as written."""


def run_action(group: str, actions: Mapping[str, Action], args: argparse.Namespace) -> int:
    """Run `args.action` of `group`; report usage errors (and unknown hook ids) as exit code 2."""
    where = f"{group} {args.action}"
    try:
        return actions[args.action](args)
    except UsageError as exc:
        for problem in exc.problems:
            print(f"hookd: {where}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except HookNotFound as exc:
        print(f"hookd: {where}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def settings_from(args: argparse.Namespace) -> Settings:
    path: Path = args.config
    return load_settings(path)
