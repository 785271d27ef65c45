"""`hookd check-config`: validate the config file and the hooks source, every problem of both at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from hookd.cli.args import EXIT_OK, EXIT_USAGE, Subparsers, add_command
from hookd.config import Settings, load_settings
from hookd.errors import ConfigError, StoreError
from hookd.netpolicy import NetworkPolicy
from hookd.subscriptions.factory import open_store
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.sql_store import SqlStore
from hookd.subscriptions.yaml_store import YamlStore


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "check-config",
        help_text="validate the config and hooks files",
        epilog="example: hookd check-config --config hookd.yaml",
        handler=_check,
    )
    p.add_argument("--config", required=True, type=Path)


def _check(args: argparse.Namespace) -> int:
    failures: list[ConfigError] = []
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        failures.append(exc)
    hooks_path = settings.subscriptions.path if settings else _raw_hooks_path(args.config)
    hooks: HookSet | None = None
    try:
        if settings is not None:
            hooks = _hooks(settings)
        elif hooks_path is not None:
            hooks = YamlStore(hooks_path).load()
    except ConfigError as exc:
        failures.append(exc)
    if failures:
        for failure in failures:
            print(f"hookd: configuration error in {failure}", file=sys.stderr)
        return EXIT_USAGE
    assert settings is not None and hooks is not None
    source = settings.subscriptions.path or settings.subscriptions.source
    print(f"{args.config}: ok ({len(hooks)} hooks from {source})")
    # Valid, but refused on every attempt: say so now rather than in the dead-letter queue.
    policy = NetworkPolicy.from_settings(settings.delivery)
    for hook in hooks:
        why = policy.for_hook(hook.allow_private).creation_problem(hook.url)
        if why is not None:
            print(
                f"hookd: warning: hook {hook.id}: {why}; its deliveries will be dead-lettered (ssrf_blocked)",
                file=sys.stderr,
            )
    plaintext = _plaintext_secrets(settings)
    if plaintext:
        print(
            f"hookd: warning: {plaintext} secret(s) in the hooks database are still stored in plaintext although "
            f"secrets.key_file is set; run `hookd secrets encrypt --config {args.config}`",
            file=sys.stderr,
        )
    return EXIT_OK


def _plaintext_secrets(settings: Settings) -> int:
    """With a key configured: how many stored credentials are still plaintext (0 without a key)."""
    if settings.subscriptions.source != "db" or settings.secrets.key_file is None:
        return 0
    store = open_store(settings, create=False, migrate=False)
    if not isinstance(store, SqlStore):
        return 0  # no database file yet
    try:
        return store.census().plaintext
    except StoreError:
        return 0  # reading the hooks worked a moment ago; this count is only advice
    finally:
        store.db.close()


def _hooks(settings: Settings) -> HookSet:
    """The hooks: a database is read as it is, never created or migrated, and a database that cannot
    be read is a problem of `subscriptions.url` (exit 2), not a crash."""
    store = open_store(settings, create=False, migrate=False)
    try:
        return store.load()
    except StoreError as exc:
        raise ConfigError([f"subscriptions.url: cannot read the hooks: {exc}"], str(settings.source)) from None
    finally:
        if isinstance(store, SqlStore):
            store.db.close()


def _raw_hooks_path(config: Path) -> Path | None:
    """Best effort, for check-config when the config is invalid: where its hooks file would be."""
    try:
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
        raw = doc["subscriptions"]["path"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError, KeyError):
        return None
    if not isinstance(raw, str) or not raw:
        return None
    return Path(raw) if Path(raw).is_absolute() else config.parent / raw
