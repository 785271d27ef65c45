"""`hookd secrets new-key|encrypt|rotate-key|status`: the key that encrypts secrets at rest.

With `secrets.key_file` set, the hooks database stores every hook secret, previous secret and
basic-auth password encrypted (`hookd.cipher`). `new-key` writes a key file; `encrypt` encrypts the
values still in plaintext (those written before the key was configured); `rotate-key` re-encrypts
every value with another key; `status` counts the values per key id. Each change is one transaction
(a refused command changes nothing), after which a SQLite database is compacted so the old values
do not linger in its files. Only key ids are ever printed, never a key or a value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hookd.cipher import Census, Key, KeyFileError, new_key_file
from hookd.cli.args import (
    EXIT_OK,
    Subparsers,
    add_action,
    add_group,
    common_options,
    settings_from,
)
from hookd.cli.output import print_json
from hookd.cli.serve import require_database
from hookd.cli.sources import open_hooks, open_writable
from hookd.config import Settings
from hookd.errors import HookdError, UsageError
from hookd.subscriptions.factory import keyring_for
from hookd.subscriptions.sql_store import SqlStore

_EPILOG = """examples:
  hookd secrets new-key /etc/hookd/secrets.key
  hookd secrets encrypt --config /etc/hookd/hookd.yaml
  hookd secrets status --config /etc/hookd/hookd.yaml
  hookd secrets rotate-key --new-key-file /etc/hookd/secrets-2.key --config /etc/hookd/hookd.yaml

Set secrets.key_file in hookd.yaml to the key, then run `encrypt` once for the rows written before.
To rotate across many hosts, see docs/operations.md ("The secrets key"). Exit codes: 0 success,
1 the database is unreachable, 2 a bad argument or config, or stored secrets the configured keys
do not open (nothing was changed).
"""


def register(sub: Subparsers) -> None:
    """Add `hookd secrets` and its actions."""
    actions = add_group(
        sub, "secrets", help_text="manage the key that encrypts hook secrets at rest", epilog=_EPILOG, actions=_ACTIONS
    )
    p = add_action(
        actions,
        "new-key",
        help_text="write a new key (32 random bytes, mode 0600) to FILE; never overwrites",
        example="hookd secrets new-key /etc/hookd/secrets.key",
        parents=[],
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON instead of text (for scripts)")
    add_action(
        actions,
        "encrypt",
        help_text="encrypt every secret still stored in plaintext with secrets.key_file (idempotent)",
        example="hookd secrets encrypt --config /etc/hookd/hookd.yaml",
        parents=[common_options()],
    )
    p = add_action(
        actions,
        "rotate-key",
        help_text="re-encrypt every stored secret with the key in --new-key-file, in one transaction",
        example="hookd secrets rotate-key --new-key-file /etc/hookd/secrets-2.key --config /etc/hookd/hookd.yaml",
        parents=[common_options()],
    )
    p.add_argument("--new-key-file", required=True, type=Path, metavar="FILE", help="the key to encrypt with")
    add_action(
        actions,
        "status",
        help_text="how many stored secrets are encrypted, with which key id, and how many are plaintext",
        example="hookd secrets status --config /etc/hookd/hookd.yaml",
        parents=[common_options()],
    )


def _new_key(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        identifier = new_key_file(path)
    except FileExistsError:
        raise UsageError(f"{path} already exists: a key is never overwritten (it may be the only copy)") from None
    except FileNotFoundError:
        raise UsageError(f"{path.parent} is not an existing folder") from None
    except OSError as exc:
        raise HookdError(f"cannot write {path}: {exc.strerror or exc}") from None
    if args.json:
        print_json({"file": str(path), "key_id": identifier})
    else:
        print(f"wrote a new key to {path} (key id {identifier}, mode 0600)")
        print("Back it up apart from the database's backups, then set secrets.key_file to it.")
    return EXIT_OK


def _encrypt(args: argparse.Namespace) -> int:
    settings = _database_settings(args, "hookd secrets encrypt")
    if settings.secrets.key_file is None:
        raise UsageError(
            f"secrets.key_file is not set in {args.config}: write a key (`hookd secrets new-key FILE`), "
            "set secrets.key_file to it, then run this again"
        )
    with open_writable(settings) as store:
        census = store.reseal()
        key_id = store.keyring.current.id if store.keyring.current else ""
    already = census.total - census.plaintext
    if args.json:
        print_json(_report(census, key_id=key_id, already_encrypted=already))
    else:
        print(
            f"encrypted {census.changed} secret(s) with key {key_id} "
            f"({already} already encrypted, {census.total} stored in all)"
        )
    _warn_if_not_compacted(census)
    return EXIT_OK


def _rotate_key(args: argparse.Namespace) -> int:
    settings = _database_settings(args, "hookd secrets rotate-key")
    try:
        key = Key.from_file(args.new_key_file, "--new-key-file")
    except KeyFileError as exc:
        raise UsageError(f"--new-key-file: {exc}") from None
    with open_writable(settings) as store:
        census = store.reseal(key)
        configured = store.keyring.key_source(key.id)
    before = ", ".join(f"{count} with key {kid}" for kid, count in sorted(census.by_key.items()))
    before = ", ".join(part for part in (before, f"{census.plaintext} plaintext" if census.plaintext else "") if part)
    if args.json:
        print_json(_report(census, key_id=key.id, configured_as=configured))
    else:
        print(f"re-encrypted {census.changed} secret(s) with key {key.id} (before: {before or 'none stored'})")
        if configured != "secrets.key_file":
            print(
                f"Next: set secrets.key_file to {args.new_key_file} on every host (keep the old key in "
                "secrets.old_key_files until every host runs with the new one), then restart hookd there."
            )
    _warn_if_not_compacted(census)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    settings = _database_settings(args, "hookd secrets status")
    keyring = keyring_for(settings)
    census, where = Census(keyring), settings.subscriptions.url or ""
    with open_hooks(settings) as store:  # reading: a SQLite file that does not exist yet is not created
        if isinstance(store, SqlStore):
            census, where = store.census(), store.db.describe()
    if args.json:
        print_json(
            {
                "database": where,
                "total": census.total,
                "plaintext": census.plaintext,
                "encrypted": dict(sorted(census.by_key.items())),
                "keys": {k.source: k.id for k in keyring.keys},
                "unreadable": len(census.failures),
            }
        )
    else:
        print(f"hooks database {where}: {census.total} stored secret(s)")
        for identifier, count in sorted(census.by_key.items()):
            print(f"  encrypted with key {identifier} ({keyring.key_source(identifier) or 'not configured'}): {count}")
        print(f"  plaintext: {census.plaintext}")
        for key in keyring.keys:
            if key.id not in census.by_key:
                print(f"  ({key.source}: key {key.id}, encrypts none yet)")
    if census.failures:
        raise census.refusal(f"hooks database {where}")  # exit 2, after the counts that explain it
    if census.plaintext and keyring.encrypting and not args.json:
        print(f"Run `hookd secrets encrypt --config {args.config}` to encrypt the plaintext ones.")
    return EXIT_OK


def _database_settings(args: argparse.Namespace, what: str) -> Settings:
    settings = settings_from(args)
    require_database(settings, what)
    return settings


def _report(census: Census, **fields: Any) -> dict[str, Any]:
    return {
        "changed": census.changed,
        "total": census.total,
        "plaintext_before": census.plaintext,
        "encrypted_before": dict(sorted(census.by_key.items())),
        "compacted": census.compacted,
        **fields,
    }


def _warn_if_not_compacted(census: Census) -> None:
    if census.changed and not census.compacted:
        print(
            "hookd: warning: another process kept the SQLite WAL busy: the old values may stay in the -wal "
            "file until its next checkpoint (run this command again once hookd is idle to compact it)",
            file=sys.stderr,
        )


_ACTIONS = {"new-key": _new_key, "encrypt": _encrypt, "rotate-key": _rotate_key, "status": _status}
