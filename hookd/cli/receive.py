"""`hookd receive`: a local receiver that verifies every delivery's signatures and prints one line each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hookd.cli.args import EXIT_FAILURE, EXIT_OK, Subparsers, add_command
from hookd.cli.sources import open_hooks
from hookd.config import load_settings
from hookd.errors import UsageError
from hookd.receiver import serve


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "receive",
        help_text="run a local receiver that verifies signatures",
        epilog="example: hookd receive --port 8765 --config config/hookd.yaml",
        handler=_receive,
    )
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--config", type=Path, help="hookd.yaml: verify with the secrets of its hooks")
    p.add_argument("--secret", action="append", default=[], help="a secret to verify with (repeatable)")
    p.add_argument("--status", type=int, help="answer every request with this HTTP status")


def _receive(args: argparse.Namespace) -> int:
    secrets: dict[str, list[str]] = {}
    if args.config:
        with open_hooks(load_settings(args.config)) as store:
            for hook in store.list():
                secrets.setdefault(hook.id, []).extend(hook.signing_secrets())
    extra: list[str] = list(args.secret)
    if not secrets and not extra:
        raise UsageError("receive needs --config or at least one --secret to verify with")
    try:
        serve(args.host, args.port, lambda hook_id: secrets.get(hook_id, []) + extra, status=args.status)
    except OSError as exc:
        print(f"hookd: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return EXIT_OK
