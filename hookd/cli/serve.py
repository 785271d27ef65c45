"""`hookd serve`: the account admins' hooks API and the Service Hooks console (hookd.api)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hookd import logs
from hookd.cli.args import Subparsers, add_command
from hookd.config import Settings, load_settings
from hookd.errors import UsageError
from hookd.filesafety import permission_problems


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "serve",
        help_text="serve the hooks REST API and the Service Hooks web console (needs subscriptions.source: db)",
        epilog="example: hookd serve --config /etc/hookd/hookd.yaml   (then open http://127.0.0.1:8780/)\n\n"
        "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 cannot listen or reach the database, 2 bad config.",
        handler=_serve,
    )
    p.add_argument("--config", required=True, type=Path, help="path to hookd.yaml")


def require_database(settings: Settings, what: str) -> None:
    """API keys and the API live in the hooks database: a YAML source has none (exit 2)."""
    if settings.subscriptions.source != "db" or settings.subscriptions.url is None:
        raise UsageError(
            f"{what} needs subscriptions.source: db (hooks in SQLite or PostgreSQL); this config reads "
            f"hooks from the YAML file {settings.subscriptions.path}, which account admins cannot change"
        )


def _serve(args: argparse.Namespace) -> int:
    from hookd.api.server import serve  # noqa: PLC0415 (only this command loads Flask and waitress)

    settings = load_settings(args.config)
    require_database(settings, "hookd serve")
    logs.configure(settings.logging.format, settings.logging.level)
    for problem in permission_problems(args.config):
        logs.get_logger("hookd.cli").warning("config.permissions", problem=problem)
    return serve(settings)
