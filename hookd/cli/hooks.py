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
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from hookd import resource
from hookd.config import Settings
from hookd.errors import ConfigError
from hookd.events import normalize_account
from hookd.netpolicy import NetworkPolicy
from hookd.publisher import ping_message
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.sql_store import HookCheck, SqlStore
from hookd.subscriptions.validation import events_problems, url_problem
from hookd.subscriptions.yaml_store import parse_hooks

from . import render
from .common import (
    EXIT_OK,
    UsageError,
    add_action,
    add_group,
    broker_connection,
    common_options,
    run_action,
    settings_from,
)
from .output import human_time, print_json
from .sources import Hooks, open_hooks, open_state

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hookd hooks` and its actions."""
    actions = add_group(sub, "hooks", help_text="manage account webhooks", epilog=_EPILOG)
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
    p.add_argument("--active", type=_boolean, metavar="true|false")
    p.add_argument("--basic-auth", metavar="USER:PASS", help='new credentials, or "" to remove basic auth')
    p.add_argument("--insecure-ssl", type=_boolean, metavar="true|false")
    p.add_argument(
        "--allow-private",
        type=_boolean,
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
        type=parse_overlap,
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


def run(args: argparse.Namespace) -> int:
    return run_action("hooks", _ACTIONS, args)


# -- argument parsing --------------------------------------------------------------------------------
def _boolean(value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


_DURATION = re.compile(r"(\d{1,9})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: The longest rotation overlap: an old secret that never expires defeats the rotation.
MAX_OVERLAP = timedelta(days=30)


def parse_overlap(value: str) -> timedelta:
    """A rotation overlap: `30s`, `30m`, `24h`, `7d`, `1w`; more than zero and at most 30 days."""
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30m, 24h or 7d, got {value!r}")
    try:
        overlap = timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        overlap = MAX_OVERLAP + MAX_OVERLAP
    if not timedelta(0) < overlap <= MAX_OVERLAP:
        raise argparse.ArgumentTypeError(f"the overlap must be more than 0 and at most 30d, got {value!r}")
    return overlap


def _policy_check(settings: Settings) -> HookCheck:
    """The network policy's creation-time rule, for the store to apply to the hook it is about to write."""
    policy = NetworkPolicy.from_settings(settings.delivery)

    def check(hook: Hook) -> list[str]:
        why = policy.for_hook(hook.allow_private).url_problem(hook.url)
        return [] if why is None else [f"url: {why}"]

    return check


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
def _writable(hooks: Hooks) -> SqlStore:
    assert hooks.store is not None  # open_hooks(write=True) refused every other source
    return hooks.store


def _print_hook(args: argparse.Namespace, hooks: Hooks, hook: Hook, title: str, *, reveal: bool) -> None:
    times = hooks.times(hook.id).get(hook.id)
    if args.json:
        print_json(resource.hook_resource(hook, reveal=reveal, times=times))
    else:
        print(render.render_hook(hook, title, reveal=reveal, times=times))


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
    with open_hooks(settings, write=True) as hooks:
        try:
            hook = _writable(hooks).create(
                account_id=account,
                url=url,
                events=events,
                name=args.name,
                active=not args.inactive,
                basic_auth=auth,
                insecure_ssl=args.insecure_ssl,
                allow_private=args.allow_private,
                check=_policy_check(settings),
            )
        except ConfigError as exc:
            raise _config_problems(exc) from None
        _print_hook(args, hooks, hook, f"created hook {hook.id}", reveal=True)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    if args.account is not None and normalize_account(args.account) is None:
        raise UsageError("--account: must be a non-empty account id")
    with open_hooks(settings_from(args)) as hooks:
        found = hooks.list(args.account)
        times = hooks.times()
    if args.json:
        print_json([resource.hook_resource(h, times=times.get(h.id)) for h in found])
    elif found:
        print(render.render_list(found))
    else:
        print("no hooks" + (f" for account {args.account}" if args.account else ""))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_hooks(settings) as hooks:
        hook = hooks.get(args.hook_id)
        times = hooks.times(hook.id).get(hook.id)
    with open_state(settings) as state:
        statuses = resource.read_statuses(state, hook)
    reveal = bool(args.reveal_secret)
    if args.json:  # for scripts, shaped like the platform's resource, which shows the salt to its admin
        print_json(resource.hook_resource(hook, reveal=True, times=times, statuses=statuses))
    else:
        print(render.render_hook(hook, f"hook {hook.id}", reveal=reveal, times=times))
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
    check = _policy_check(settings) if {"url", "allow_private"} & changes.keys() else None
    with open_hooks(settings, write=True) as hooks:
        try:
            hook = _writable(hooks).update(args.hook_id, check=check, **changes)
        except ConfigError as exc:
            raise _config_problems(exc) from None
        _print_hook(args, hooks, hook, f"{verb} hook {hook.id}", reveal=False)
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    return _apply(args, settings_from(args), {"active": True}, verb="enabled")


def _disable(args: argparse.Namespace) -> int:
    return _apply(args, settings_from(args), {"active": False}, verb="disabled")


def _delete(args: argparse.Namespace) -> int:
    with open_hooks(settings_from(args), write=True) as hooks:
        store = _writable(hooks)
        hooks.get(args.hook_id)  # HookNotFound: exit 2
        store.delete(args.hook_id)
    if args.json:
        print_json({"id": args.hook_id, "deleted": True})
    else:
        print(f"deleted hook {args.hook_id}")
    return EXIT_OK


def _reset_secret(args: argparse.Namespace) -> int:
    with open_hooks(settings_from(args), write=True) as hooks:
        hook = _writable(hooks).reset_secret(args.hook_id, overlap=args.overlap)
        if args.overlap is None:
            title = f"new secret for hook {hook.id} (the old one no longer verifies)"
        else:
            until = human_time(hook.old_secrets_expire_at)
            title = f"new secret for hook {hook.id} (the old one still verifies webhook-signature until {until})"
        _print_hook(args, hooks, hook, title, reveal=True)
    return EXIT_OK


def _ping(args: argparse.Namespace) -> int:
    """The same message and path as `hookd ping`: publisher.ping_message on a confirmed connection."""
    settings = settings_from(args)
    with open_hooks(settings) as hooks:
        hook = hooks.get(args.hook_id)
    with broker_connection(settings, name="hookd hooks ping") as conn:
        message, delivery = ping_message(hook, conn.topology)
        conn.publish(message)
    if args.json:
        print_json(
            {"hook_id": hook.id, "delivery_id": delivery, "event_id": message.message_id, "queue": message.routing_key}
        )
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
    with open_hooks(settings, write=True) as hooks:
        try:
            batch = list(parse_hooks(text, source=str(path), base_dir=path.parent, environ=os.environ))
        except ConfigError as exc:
            raise UsageError(*(f"{path}: {p}" for p in exc.problems)) from None
        store = _writable(hooks)
        existing = {h.id for h in store.list()}
        try:
            count = store.import_hooks(batch, check=_policy_check(settings))
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
    with open_hooks(settings_from(args)) as hooks:
        found = hooks.list()
    sys.stdout.write(render.export_document(found))
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
