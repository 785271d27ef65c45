"""What every admin command shares: the usage error, action dispatch, settings and databases.

A bad argument raises `UsageError` before anything is written; `run_action` reports it on stderr
and returns exit code 2. Runtime failures (`StoreError`, `BrokerError`) propagate to `cli.main`,
which prints them without a traceback and returns 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from hookd.broker import BrokerConnection, connect
from hookd.config import Settings, load_settings, redact_url
from hookd.errors import BrokerError, HookdError
from hookd.state.db import Database
from hookd.state.migrations import LATEST_VERSION
from hookd.subscriptions.sql_store import HookNotFound

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Action = Callable[[argparse.Namespace], int]


class UsageError(HookdError):
    """A bad argument or a request the configuration forbids: exit code 2, nothing changed."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


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


def common_options(*, json_output: bool = True) -> argparse.ArgumentParser:
    """The options every action takes, as a parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", required=True, type=Path, metavar="PATH", help="path to hookd.yaml")
    if json_output:
        parent.add_argument("--json", action="store_true", help="print JSON instead of a table (for scripts)")
    return parent


def add_group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, *, help_text: str, epilog: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A command group (`hookd NAME ACTION ...`) and the subparsers of its actions."""
    group = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=_Formatter)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help_text: str,
    example: str,
    parents: list[argparse.ArgumentParser],
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


def sqlite_file_missing(url: str) -> bool:
    """True for a `sqlite:///` URL whose file does not exist yet (reading it must not create it)."""
    return url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()


@contextmanager
def open_database(url: str, *, create: bool) -> Iterator[Database | None]:
    """A database migrated to the current schema, closed afterwards.

    With `create=False` (read-only commands), a SQLite file that does not exist yet is not created:
    the block gets None, meaning "nothing recorded yet".
    """
    if not create and sqlite_file_missing(url):
        yield None
        return
    with Database.from_url(url) as db:
        if db.version() < LATEST_VERSION:
            db.migrate()
        yield db


@contextmanager
def broker_connection(settings: Settings, *, name: str) -> Iterator[BrokerConnection]:
    """A confirmed connection with hookd's topology declared (`worker.connect`), closed afterwards.

    A failure to connect names the broker (password redacted): pika's own message is often empty.
    """
    try:
        conn = connect(settings, name=name)
    except BrokerError as exc:
        detail = str(exc).strip().rstrip(":")
        raise BrokerError(f"cannot reach the broker at {redact_url(settings.broker.url)}: {detail}") from exc
    try:
        yield conn
    finally:
        conn.close()
