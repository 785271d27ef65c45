"""`hookd hooks ...`: manage the account webhooks (create, list, show, update, delete, ping, import, export).

Every argument is validated before anything is written, with the same rules as the hooks file, and
each write is one transaction: a refused command changes nothing. Secrets are printed only by
create, reset-secret, `show --json`, `show --reveal-secret` and export, and never logged.

A URL whose host is a literal non-public address (127.0.0.1, 2130706433, [::1], 10.0.0.5...) or
`localhost` is refused unless the network policy allows it: `delivery.allow_private_networks`,
`delivery.allowed_networks`, or `--allow-private` on this hook. `--allow-private` is operator-only by
nature: this command line is the operator's tool (with database access); an API for account admins
must never expose it. Names are checked on every delivery attempt, against what they resolve to then.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hookd import resource
from hookd.cli import args as cli_args
from hookd.cli import render
from hookd.cli.args import EXIT_OK, Subparsers, add_action, add_group, common_options, settings_from
from hookd.cli.output import human_time, print_json
from hookd.cli.ping import send_ping
from hookd.cli.sources import open_hooks, open_state, open_writable
from hookd.config import Settings
from hookd.errors import ConfigError, HookNotFound, UsageError
from hookd.events import normalize_account
from hookd.netpolicy import NetworkPolicy
from hookd.state import disables
from hookd.state.db import Database
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import events_problems, policy_check, url_problem
from hookd.subscriptions.store import SubscriptionStore
from hookd.subscriptions.yaml_store import dump_hooks, parse_hooks

_EPILOG = """examples:
  hookd hooks create --account acme --url https://ops.example.com/hooks --events job.failed,cluster --config hookd.yaml
  hookd hooks list --account acme --config hookd.yaml
  hookd hooks show 42 --reveal-secret --json --config hookd.yaml
  hookd hooks update 42 --events job --active false --config hookd.yaml
  hookd hooks reset-secret 42 --overlap 24h --config hookd.yaml
  hookd hooks export --config hookd.yaml > hooks.yaml && hookd hooks import hooks.yaml --config other.yaml

Write commands need subscriptions.source: db; with a YAML source they refuse (exit 2).
Exit codes: 0 success, 1 database or broker unreachable, 2 bad argument (nothing changed).
"""


def register(sub: Subparsers) -> None:
    """Add `hookd hooks` and its actions."""
    actions = add_group(sub, "hooks", help_text="manage account webhooks", epilog=_EPILOG, actions=_ACTIONS)
    opts, plain = [common_options()], [common_options(json_output=False)]

    p = add_action(
        actions,
        "create",
        help_text="add a hook; prints it with its generated secret",
        example="hookd hooks create --account acme --url https://ops.example.com/hooks "
        "--events job.failed,cluster.available --basic-auth hookd:pa55 --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("--account", required=True, help="the account the hook belongs to")
    p.add_argument("--url", required=True, help="http or https URL the deliveries are POSTed to")
    p.add_argument("--events", required=True, help="comma-separated event names or groups (job, cluster)")
    p.add_argument("--name", default="", help="a label (defaults to the URL)")
    p.add_argument("--inactive", action="store_true", help="create it inactive (it receives nothing)")
    p.add_argument("--basic-auth", metavar="USER:PASS", help="send HTTP basic auth with every delivery")
    p.add_argument("--insecure-ssl", action="store_true", help="skip TLS certificate verification for this hook")
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="operator only: let this hook reach loopback, private and link-local addresses (SSRF guard off)",
    )

    p = add_action(
        actions,
        "list",
        help_text="list hooks",
        example="hookd hooks list --account acme --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("--account", help="only this account's hooks")

    p = add_action(
        actions,
        "show",
        help_text="show one hook and the last delivery status of each subscribed event",
        example="hookd hooks show 42 --reveal-secret --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("hook_id", metavar="ID")
    p.add_argument(
        "--reveal-secret",
        action="store_true",
        help="print the secret and the basic-auth password in the table (--json always includes them)",
    )

    p = add_action(
        actions,
        "update",
        help_text="change the given fields of a hook (events are replaced as a whole)",
        example='hookd hooks update 42 --events job,cluster.error --active true --basic-auth "" --config hookd.yaml',
        parents=opts,
    )
    p.add_argument("hook_id", metavar="ID")
    p.add_argument("--url")
    p.add_argument("--events", help="comma-separated; replaces the whole list")
    p.add_argument("--name", help='a label; "" resets it to the URL')
    p.add_argument("--active", type=cli_args.boolean, metavar="true|false")
    p.add_argument("--basic-auth", metavar="USER:PASS", help='new credentials, or "" to remove basic auth')
    p.add_argument("--insecure-ssl", type=cli_args.boolean, metavar="true|false")
    p.add_argument(
        "--allow-private",
        type=cli_args.boolean,
        metavar="true|false",
        help="operator only: let this hook reach non-public addresses (SSRF guard off for it)",
    )

    for name, help_text in (
        ("delete", "delete a hook (its delivery history is kept)"),
        ("enable", "make a hook active"),
        ("disable", "make a hook inactive (it receives nothing, not even retries)"),
        ("ping", "send a ping event to one hook through the broker"),
    ):
        p = add_action(
            actions, name, help_text=help_text, example=f"hookd hooks {name} 42 --config hookd.yaml", parents=opts
        )
        p.add_argument("hook_id", metavar="ID")

    p = add_action(
        actions,
        "reset-secret",
        help_text="give a hook a new secret; the old one stops working at once, or after --overlap",
        example="hookd hooks reset-secret 42 --overlap 24h --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("hook_id", metavar="ID")
    p.add_argument(
        "--overlap",
        type=cli_args.overlap,
        metavar="DURATION",
        help="keep the old secret valid this long (30m, 24h, 7d; at most 30d): deliveries carry a "
        "webhook-signature for both secrets meanwhile; X-Hook-Signature uses the new one only",
    )

    p = add_action(
        actions,
        "import",
        help_text="insert or replace hooks (by id) from a hooks file, all or nothing",
        example="hookd hooks import hooks.yaml --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("file", type=Path, metavar="FILE", help="a hooks file (the format of config/hooks.yaml)")

    add_action(
        actions,
        "export",
        help_text="print every hook as a hooks file, secrets included (for `hooks import`)",
        example="hookd hooks export --config hookd.yaml > hooks-backup.yaml",
        parents=plain,
    )


# -- argument parsing --------------------------------------------------------------------------------
def _events(raw: str, problems: list[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    problems.extend(f"--events: {p}" for p in events_problems(names))
    return names


def _url(raw: str, problems: list[str]) -> str:
    if (why := url_problem(raw)) is not None:
        problems.append(f"--url {raw!r}: {why}")
    return raw.strip()


def _basic_auth(raw: str, problems: list[str], *, allow_remove: bool) -> BasicAuth | None:
    """USER:PASS (the password may contain ':'); "" means remove, where that makes sense."""
    if raw == "" and allow_remove:
        return None
    username, colon, password = raw.partition(":")
    if not colon or not username.strip():
        problems.append("--basic-auth: expected USER:PASSWORD with a non-empty user" + (' (or "")' * allow_remove))
        return None
    return BasicAuth(username, password)


def _fail(problems: list[str]) -> None:
    if problems:
        raise UsageError(*problems)


def _config_problems(exc: ConfigError) -> UsageError:
    """The store's own validation (same rules as the checks above) as a usage error."""
    return UsageError(*exc.problems)


# -- actions -------------------------------------------------------------------------------------------
def _found(store: SubscriptionStore, hook_id: str) -> Hook:
    """The hook with this id; `HookNotFound` (exit 2) when there is none."""
    hook = store.get(hook_id)
    if hook is None:
        raise HookNotFound(hook_id)
    return hook


def _print_hook(args: argparse.Namespace, hook: Hook, title: str, *, reveal: bool) -> None:
    if args.json:
        print_json(resource.hook_resource(hook, reveal=reveal))
    else:
        print(render.render_hook(hook, title, reveal=reveal))


def _create(args: argparse.Namespace) -> int:
    problems: list[str] = []
    account = normalize_account(args.account)
    if account is None:
        problems.append("--account: must be a non-empty account id")
    url = _url(args.url, problems)
    events = _events(args.events, problems)
    auth = None if args.basic_auth is None else _basic_auth(args.basic_auth, problems, allow_remove=False)
    settings = settings_from(args)
    _fail(problems)
    assert account is not None
    with open_writable(settings) as store:
        try:
            hook = store.create(
                account_id=account,
                url=url,
                events=events,
                name=args.name,
                active=not args.inactive,
                basic_auth=auth,
                insecure_ssl=args.insecure_ssl,
                allow_private=args.allow_private,
                check=policy_check(NetworkPolicy.from_settings(settings.delivery)),
            )
        except ConfigError as exc:
            raise _config_problems(exc) from None
        _print_hook(args, hook, f"created hook {hook.id}", reveal=True)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    if args.account is not None and normalize_account(args.account) is None:
        raise UsageError("--account: must be a non-empty account id")
    with open_hooks(settings_from(args)) as store:
        found = store.list(None if args.account is None else normalize_account(args.account))
    if args.json:
        print_json([resource.hook_resource(h) for h in found])
    elif found:
        print(render.render_list(found))
    else:
        print("no hooks" + (f" for account {args.account}" if args.account else ""))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_hooks(settings) as store:
        hook = _found(store, args.hook_id)
    with open_state(settings) as state:
        statuses = resource.hook_statuses(state, hook)
    reveal = bool(args.reveal_secret)
    if args.json:  # for scripts, shaped like the platform's resource, which shows the salt to its admin
        print_json(resource.hook_resource(hook, reveal=True, statuses=statuses))
    else:
        print(render.render_hook(hook, f"hook {hook.id}", reveal=reveal))
        print("statuses")
        print("\n".join("  " + line for line in render.render_statuses(statuses).splitlines()))
    return EXIT_OK


def _update(args: argparse.Namespace) -> int:
    problems: list[str] = []
    changes: dict[str, Any] = {}
    if args.url is not None:
        changes["url"] = _url(args.url, problems)
    if args.events is not None:
        changes["events"] = _events(args.events, problems)
    if args.name is not None:
        changes["name"] = args.name
    if args.active is not None:
        changes["active"] = args.active
    if args.basic_auth is not None:
        changes["basic_auth"] = _basic_auth(args.basic_auth, problems, allow_remove=True)
    if args.insecure_ssl is not None:
        changes["insecure_ssl"] = args.insecure_ssl
    if args.allow_private is not None:
        changes["allow_private"] = args.allow_private
    if not changes and not problems:
        problems.append("nothing to change: give at least one of --url, --events, --name, --active, ...")
    settings = settings_from(args)
    _fail(problems)
    return _apply(args, settings, changes, verb="updated")


def _apply(args: argparse.Namespace, settings: Settings, changes: dict[str, Any], *, verb: str) -> int:
    # The policy judges the destination: only a change of it (url, allow_private) is checked, so that
    # renaming or disabling a hook created under a wider policy still works.
    check = (
        policy_check(NetworkPolicy.from_settings(settings.delivery))
        if {"url", "allow_private"} & changes.keys()
        else None
    )
    with open_writable(settings) as store:
        try:
            hook = store.update(args.hook_id, check=check, **changes)
        except ConfigError as exc:
            raise _config_problems(exc) from None
    _print_hook(args, hook, f"{verb} hook {hook.id}", reveal=False)
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings.subscriptions.source == "yaml":
        return _enable_file_hook(args, settings)
    return _apply(args, settings, {"active": True}, verb="enabled")


def _enable_file_hook(args: argparse.Namespace, settings: Settings) -> int:
    """A hooks file is the operator's: `enable` forgets the disable hookd kept for one of its hooks (in
    the state database); the running daemons deliver to it again at their next reload."""
    with open_hooks(settings) as store:
        if store.get(args.hook_id) is None:
            raise HookNotFound(args.hook_id)
    with Database.from_url(settings.state.url) as state:
        state.migrate()
        forgotten = disables.forget(state, [args.hook_id])
    if args.json:
        print_json({"id": args.hook_id, "enabled": bool(forgotten)})
    elif forgotten:
        print(f"enabled hook {args.hook_id}: reload hookd (systemctl reload hookd, or kill -HUP) to deliver again")
    else:
        path = settings.subscriptions.path
        print(f"hook {args.hook_id} was not disabled by hookd; its `active` key in {path} decides")
    return EXIT_OK


def _disable(args: argparse.Namespace) -> int:
    return _apply(args, settings_from(args), {"active": False}, verb="disabled")


def _delete(args: argparse.Namespace) -> int:
    with open_writable(settings_from(args)) as store:
        if not store.delete(args.hook_id):
            raise HookNotFound(args.hook_id)
    if args.json:
        print_json({"id": args.hook_id, "deleted": True})
    else:
        print(f"deleted hook {args.hook_id}")
    return EXIT_OK


def _reset_secret(args: argparse.Namespace) -> int:
    with open_writable(settings_from(args)) as store:
        hook = store.reset_secret(args.hook_id, overlap=args.overlap)
        if args.overlap is None:
            title = f"new secret for hook {hook.id} (the old one no longer verifies)"
        else:
            until = human_time(hook.old_secrets_expire_at)
            title = f"new secret for hook {hook.id} (the old one still verifies webhook-signature until {until})"
    _print_hook(args, hook, title, reveal=True)
    return EXIT_OK


def _ping(args: argparse.Namespace) -> int:
    """`hookd ping` itself (`send_ping`), with this group's output."""
    settings = settings_from(args)
    hook, delivery, event_id = send_ping(settings, args.hook_id, name="hookd hooks ping")
    if args.json:
        queue = f"{settings.broker.queue_prefix}.deliveries"
        print_json({"hook_id": hook.id, "delivery_id": delivery, "event_id": event_id, "queue": queue})
    else:
        print(f"ping queued for hook {hook.id} delivery={delivery}")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    settings = settings_from(args)
    with open_writable(settings) as store:
        try:
            batch = list(parse_hooks(text, source=str(path), base_dir=path.parent, environ=os.environ))
        except ConfigError as exc:
            raise UsageError(*(f"{path}: {p}" for p in exc.problems)) from None
        existing = {h.id for h in store.list()}
        try:
            count = store.import_hooks(batch, check=policy_check(NetworkPolicy.from_settings(settings.delivery)))
        except ConfigError as exc:
            raise _config_problems(exc) from None
    created = [h.id for h in batch if h.id not in existing]
    updated = [h.id for h in batch if h.id in existing]
    if args.json:
        print_json({"imported": count, "created": created, "updated": updated})
    else:
        print(f"imported {count} hooks from {path} ({len(created)} new, {len(updated)} replaced)")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    with open_hooks(settings_from(args)) as store:
        found = store.list()
    sys.stdout.write(dump_hooks(found))
    return EXIT_OK


_ACTIONS = {
    "create": _create,
    "list": _list,
    "show": _show,
    "update": _update,
    "delete": _delete,
    "enable": _enable,
    "disable": _disable,
    "reset-secret": _reset_secret,
    "ping": _ping,
    "import": _import,
    "export": _export,
}
