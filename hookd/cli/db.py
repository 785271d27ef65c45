"""`hookd db upgrade`: bring the hooks database (source db) and the state database to the current schema.

Migrating is idempotent and safe while daemons run (see `Database.migrate`); when the state lives
in the hooks database, it is migrated once.
"""

from __future__ import annotations

import argparse
from typing import Any

from hookd.cli.args import EXIT_OK, Subparsers, add_action, add_group, common_options, settings_from
from hookd.cli.output import print_json
from hookd.state.db import Database

_EPILOG = """example:
  hookd db upgrade --config /etc/hookd/hookd.yaml

Exit codes: 0 success (also when already current), 1 a database is unreachable, 2 bad config.
"""


def register(sub: Subparsers) -> None:
    """Add `hookd db` and its actions."""
    actions = add_group(sub, "db", help_text="manage hookd's databases", epilog=_EPILOG, actions={"upgrade": _upgrade})
    add_action(
        actions,
        "upgrade",
        help_text="migrate the hooks and state databases to the current schema (idempotent)",
        example="hookd db upgrade --config /etc/hookd/hookd.yaml",
        parents=[common_options()],
    )


def _upgrade(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    targets: dict[str, list[str]] = {}  # url -> roles, so a shared database is migrated once
    if settings.subscriptions.source == "db" and settings.subscriptions.url:
        targets.setdefault(settings.subscriptions.url, []).append("hooks")
    targets.setdefault(settings.state.url, []).append("state")
    results: list[dict[str, Any]] = []
    for url, roles in targets.items():
        with Database.from_url(url) as db:
            before = db.version()
            after = db.migrate()
            results.append({"databases": roles, "url": db.describe(), "from_version": before, "version": after})
    if args.json:
        print_json(results)
        return EXIT_OK
    for result in results:
        change = "already current" if result["from_version"] == result["version"] else f"was {result['from_version']}"
        label = " and ".join(result["databases"])
        print(f"{label} database {result['url']}: schema version {result['version']} ({change})")
    return EXIT_OK
