"""`hookd api-keys create|list|revoke`: the keys account admins use with the API and the console.

A key is printed once, by `create`, and stored only as its SHA-256: it cannot be shown again (create
another and revoke the old one). `--all-accounts` makes an operator key, which may manage every
account. Keys live in the hooks database, so these commands need `subscriptions.source: db`.
"""

from __future__ import annotations

import argparse

from hookd.cli.args import EXIT_OK, Subparsers, add_action, add_group, common_options, settings_from
from hookd.cli.output import human_time, print_json, table
from hookd.cli.serve import require_database
from hookd.cli.sources import open_writable
from hookd.errors import UsageError
from hookd.events import normalize_account

_EPILOG = """examples:
  hookd api-keys create --account acme --name "ops console" --config hookd.yaml
  hookd api-keys create --all-accounts --name operator --json --config hookd.yaml
  hookd api-keys list --config hookd.yaml
  hookd api-keys revoke k3f9a0c1d2e4b --config hookd.yaml

Use a key with the API as the HTTP Basic user name and an empty password (curl -u KEY: ...), or
sign in to the console with it. Exit codes: 0 success, 1 database unreachable, 2 bad argument.
"""


def register(sub: Subparsers) -> None:
    """Add `hookd api-keys` and its actions."""
    actions = add_group(
        sub, "api-keys", help_text="manage API keys for the admin API and console", epilog=_EPILOG, actions=_ACTIONS
    )
    opts = [common_options()]
    p = add_action(
        actions,
        "create",
        help_text="create a key for one account (or --all-accounts); prints it once",
        example='hookd api-keys create --account acme --name "ops console" --config hookd.yaml',
        parents=opts,
    )
    owner = p.add_mutually_exclusive_group(required=True)
    owner.add_argument("--account", help="the account the key may manage")
    owner.add_argument("--all-accounts", action="store_true", help="an operator key: it may manage every account")
    p.add_argument("--name", default="", help="a label, e.g. who holds the key")

    p = add_action(
        actions,
        "list",
        help_text="list keys (never the keys themselves)",
        example="hookd api-keys list --account acme --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("--account", help="only this account's keys")

    p = add_action(
        actions,
        "revoke",
        help_text="revoke a key; its console sessions end at once",
        example="hookd api-keys revoke k3f9a0c1d2e4b --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("key_id", metavar="ID")


def _create(args: argparse.Namespace) -> int:
    from hookd.api import keys  # noqa: PLC0415 (keeps Flask out of the other commands)

    account = None
    if not args.all_accounts:
        account = normalize_account(args.account)
        if account is None:
            raise UsageError("--account: must be a non-empty account id")
    settings = settings_from(args)
    require_database(settings, "hookd api-keys")
    with open_writable(settings) as store:
        text, key = keys.create(store.db, account_id=account, name=args.name.strip())
    if args.json:
        print_json({"key": text, "id": key.id, "account_id": key.account_id, "name": key.name})
        return EXIT_OK
    owner = f"account {account}" if account is not None else "all accounts (operator key)"
    print(f"created API key {key.id} for {owner}")
    print(f"key: {text}")
    print("This is the only time the key is shown: hookd keeps only its hash. Use it as `curl -u KEY: ...`")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from hookd.api import keys  # noqa: PLC0415

    account = None if args.account is None else normalize_account(args.account)
    if args.account is not None and account is None:
        raise UsageError("--account: must be a non-empty account id")
    settings = settings_from(args)
    require_database(settings, "hookd api-keys")
    with open_writable(settings) as store:
        found = keys.list_keys(store.db, account)
    if args.json:
        print_json(
            [
                {
                    "id": k.id,
                    "account_id": k.account_id,
                    "name": k.name,
                    "created_at": human_time(k.created_at),
                    "last_used_at": None if k.last_used_at is None else human_time(k.last_used_at),
                    "revoked_at": None if k.revoked_at is None else human_time(k.revoked_at),
                }
                for k in found
            ]
        )
    elif not found:
        print("no API keys")
    else:
        rows = [
            (
                k.id,
                k.account_id or "(all accounts)",
                k.name,
                k.created_at,
                k.last_used_at,
                "revoked" if k.revoked_at else "active",
            )
            for k in found
        ]
        print(table(["ID", "ACCOUNT", "NAME", "CREATED", "LAST USED", "STATE"], rows))
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    from hookd.api import keys  # noqa: PLC0415

    settings = settings_from(args)
    require_database(settings, "hookd api-keys")
    with open_writable(settings) as store:
        key = keys.revoke(store.db, args.key_id)
    if key is None:
        raise UsageError(f"no API key with id {args.key_id!r}")
    if args.json:
        print_json({"id": key.id, "revoked": True})
    else:
        print(f"revoked API key {key.id}: it no longer works, and its console sessions have ended")
    return EXIT_OK


_ACTIONS = {"create": _create, "list": _list, "revoke": _revoke}
