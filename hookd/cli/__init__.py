"""The `hookd` command line: one module per command (or command group), dispatched from `main`.

Each module has `register(subparsers)`, which adds its parser and sets the handler. Modules import
what only their actions need inside those actions (the daemon and its HTTP client, the databases), so a
command loads only what it uses: `hookd dlq list` never imports the daemon.

Exit codes (cli.args): 0 success, 1 runtime failure (database or broker unreachable), 2 a bad
argument or configuration, in which case nothing was changed. `hookd status` alone: 1 degraded,
3 unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hookd import __version__
from hookd.cli import (
    api_keys,
    check_config,
    db,
    deliveries,
    dlq,
    encryption,
    explain,
    hooks,
    ping,
    publish,
    receive,
    run,
    serve,
    status,
)
from hookd.cli.args import EXIT_FAILURE, EXIT_USAGE
from hookd.errors import ConfigError, EventError, HookdError, HookNotFound, UsageError

_EPILOG = """examples:
  hookd run --config config/hookd.yaml
  hookd publish job.completed --account acme --config config/hookd.yaml job.json
  hookd ping 42 --config config/hookd.yaml
  hookd receive --port 8765 --config config/hookd.yaml
  hookd check-config --config config/hookd.yaml
  hookd hooks list --config config/hookd.yaml
  hookd deliveries list --status failed --since 2h --config config/hookd.yaml
  hookd db upgrade --config config/hookd.yaml
  hookd dlq list --hook 42 --since 24h --config config/hookd.yaml
  hookd dlq replay --hook 42 --rate 5/s --config config/hookd.yaml
  hookd explain --account acme job.failed --config config/hookd.yaml
  hookd api-keys create --account acme --config config/hookd.yaml
  hookd serve --config config/hookd.yaml
  hookd secrets encrypt --config config/hookd.yaml
  hookd status --config config/hookd.yaml
"""
_COMMANDS = (
    run,
    publish,
    ping,
    receive,
    check_config,
    hooks,
    deliveries,
    db,
    dlq,
    explain,
    serve,
    api_keys,
    encryption,
    status,
)


def parser() -> argparse.ArgumentParser:
    """The whole command line: every command registers itself."""
    top = argparse.ArgumentParser(
        prog="hookd",
        description="Deliver the scheduler's job and cluster events to account webhooks, signed.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"hookd {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"hookd: configuration error in {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EventError as exc:
        print(f"hookd: invalid event: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, HookNotFound) as exc:
        print(f"hookd: {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HookdError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return code


__all__ = ["main", "parser"]
