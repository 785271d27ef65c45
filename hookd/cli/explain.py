"""`hookd explain`: would each hook of an account receive an event, and if not, why not.

Support's first question about a missing webhook is "why didn't hook X get event Y?". The answer
depends on four things kept in four places, which this command reads the way the daemon does:
the hook itself (active, events: the subscription store), its health (circuit breaker and
automatic disabling: `hookd_hook_health` in the state database, written by the workers), and the
network policy (the SSRF guard: `delivery.allow_private_networks`, `delivery.allowed_networks`).
Reasons are checked in the daemon's order and the first one that applies is reported.

Given a delivery id (or a dead letter's, or an event id) instead of an event name, the event and
account come from the delivery history, else from the dead-letter queue, which is only read: every
message there is returned untouched.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hookd.config import DeliverySettings, Settings
from hookd.errors import BlockedDestination
from hookd.events import EVENTS, PING, normalize_account
from hookd.netpolicy import NetworkPolicy, Resolver, system_resolver
from hookd.state.db import Database
from hookd.subscriptions.matching import subscribes
from hookd.subscriptions.model import Hook
from hookd.subscriptions.sql_store import HookNotFound

from .common import EXIT_OK, UsageError, broker_connection, common_options, settings_from
from .dlq import scan
from .output import human_time, iso_time, print_json, timestamp
from .sources import open_hooks, open_state

_EPILOG = """examples:
  hookd explain --config /etc/hookd/hookd.yaml --account acme job.failed
  hookd explain --config hookd.yaml 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11     # a delivery or dead-letter id
  hookd explain --config hookd.yaml --account 27 cluster.error --json

One line per hook of the account: `ID  would receive` or `ID  would not receive: REASON`, where
REASON is `inactive`, `not subscribed to EVENT`, `disabled: gone|failing`, `circuit open since T`
or `blocked by network policy: WHY`. Hooks of other accounts are not listed.
Exit codes: 0 explained, 1 a database or the broker unreachable, 2 unknown event or id.
"""


@dataclass(frozen=True, slots=True)
class Health:
    """A hook's row of `hookd_hook_health` (no row: healthy)."""

    breaker: str = "closed"
    opened_at: datetime | None = None
    disabled_reason: str | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one hook would receive the event; `code` and `reason` say why not."""

    hook_id: str
    would_receive: bool
    code: str | None = None  # inactive, not_subscribed, disabled, circuit_open, blocked, not_found
    reason: str | None = None
    warning: str | None = None

    def line(self) -> str:
        return (
            f"{self.hook_id}  would receive"
            if self.would_receive
            else f"{self.hook_id}  would not receive: {self.reason}"
        )


@dataclass(frozen=True, slots=True)
class Subject:
    """What is being explained: an event of an account, maybe for one hook (a delivery)."""

    event: str
    account_id: str
    hook_id: str | None = None
    found_in: str | None = None  # where an id was found: "history" or the dead-letter queue


# -- the rules (pure but for DNS) ----------------------------------------------------------------------
def network_problem(hook: Hook, delivery: DeliverySettings, resolver: Resolver = system_resolver) -> str | None:
    """Why the network policy (the daemon's SSRF guard) refuses the hook's host, or None.

    The same `NetworkPolicy` the daemon applies on every attempt: public addresses only, unless
    `allow_private_networks`, the hook's operator-set `allow_private`, or `allowed_networks` say
    otherwise. A DNS failure raises `OSError`: transient, not a policy refusal.
    """
    policy = NetworkPolicy.from_settings(delivery).for_hook(hook.allow_private)
    try:
        policy.check_url(hook.url, resolver)
    except BlockedDestination as exc:
        return str(exc)
    return None


def judge(
    hook: Hook, event: str, health: Health | None, delivery: DeliverySettings, resolver: Resolver = system_resolver
) -> Verdict:
    """The first reason, in the daemon's order, that keeps `event` from `hook`; else "would receive"."""
    if not hook.active and event != PING:  # inactive hooks still answer pings, as in the daemon
        return Verdict(hook.id, False, "inactive", "inactive")
    if not subscribes(hook, event):
        return Verdict(hook.id, False, "not_subscribed", f"not subscribed to {event}")
    health = health or Health()
    if health.disabled_reason:
        return Verdict(hook.id, False, "disabled", f"disabled: {health.disabled_reason}")
    if health.breaker == "open":
        since = f" since {human_time(health.opened_at)}" if health.opened_at else ""
        return Verdict(hook.id, False, "circuit_open", f"circuit open{since}")
    try:
        problem = network_problem(hook, delivery, resolver)
    except (OSError, UnicodeError) as exc:
        return Verdict(hook.id, True, warning=f"cannot resolve the hook's host now: {exc}")
    if problem is not None:
        return Verdict(hook.id, False, "blocked", f"blocked by network policy: {problem}")
    return Verdict(hook.id, True)


# -- reading state -------------------------------------------------------------------------------------
def read_health(db: Database | None, hook_ids: Iterable[str]) -> dict[str, Health]:
    """Health rows of these hooks; a state database without the table (or none at all) means healthy."""
    wanted = set(hook_ids)
    if db is None or not wanted:
        return {}
    with db.transaction() as tx:
        rows = tx.fetchdicts("SELECT hook_id, breaker, opened_at, disabled_reason, disabled_at FROM hookd_hook_health")
    return {
        str(r["hook_id"]): Health(
            breaker=str(r["breaker"]),
            opened_at=timestamp(r["opened_at"]),
            disabled_reason=r["disabled_reason"] or None,
            disabled_at=timestamp(r["disabled_at"]),
        )
        for r in rows
        if str(r["hook_id"]) in wanted
    }


def find_subject(settings: Settings, db: Database | None, ident: str) -> Subject | None:
    """The delivery (or event) `ident` names: from the history first, then the dead-letter queue."""
    if db is not None:
        with db.transaction() as tx:
            row = tx.fetchone("SELECT hook_id, event, account_id FROM hookd_deliveries WHERE delivery_id = ?", (ident,))
            event_row = (
                None
                if row
                else tx.fetchone("SELECT event, account_id FROM hookd_deliveries WHERE event_id = ? LIMIT 1", (ident,))
            )
        if row is not None:
            return Subject(str(row[1]), str(row[2]), str(row[0]), "history")
        if event_row is not None:
            return Subject(str(event_row[0]), str(event_row[1]), None, "history")
    with broker_connection(settings, name="hookd explain") as conn:
        for letter in scan(conn, keep_body=False):  # read only: closing returns every message
            target = letter.target
            if target is not None and ident in (target.delivery_id, target.event_id):
                hook = target.hook_id if ident == target.delivery_id else None
                return Subject(target.event, target.account_id, hook, conn.topology.dead)
    return None


# -- the command ---------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hookd explain`."""
    p = sub.add_parser(
        "explain",
        help="would each hook of an account receive an event, and why not",
        description="For every hook of the account: would it receive the event, and if not, why not.",
        epilog=_EPILOG,
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("subject", metavar="EVENT|DELIVERY_ID", help="an event name (with --account), or a delivery id")
    p.add_argument("--account", metavar="A", help="the account whose hooks to explain (with an event name)")


def run(args: argparse.Namespace) -> int:
    try:
        return _explain(args)
    except UsageError as exc:
        for problem in exc.problems:
            print(f"hookd: explain: {problem}", file=sys.stderr)
        return 2


def _explain(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    subject_text: str = args.subject.strip()
    is_event = subject_text in EVENTS or subject_text == PING
    with open_state(settings) as db:
        if args.account is not None:
            account = normalize_account(args.account)
            if account is None:
                raise UsageError("--account must be a non-empty account id")
            if not is_event:
                raise UsageError(f"unknown event {subject_text!r}; expected one of {', '.join(sorted(EVENTS))}, ping")
            subject = Subject(subject_text, account)
        else:
            if is_event:
                raise UsageError(f"--account is required to explain the event {subject_text!r}")
            found = find_subject(settings, db, subject_text)
            if found is None:
                raise UsageError(
                    f"{subject_text!r} is neither an event name nor a delivery id found in the history or "
                    "the dead-letter queue (an event needs --account)"
                )
            subject = found
        with open_hooks(settings) as hooks:
            if subject.hook_id is None:
                listed: list[Hook | str] = list(hooks.list(subject.account_id))
            else:
                try:
                    listed = [hooks.get(subject.hook_id)]
                except HookNotFound:
                    listed = [subject.hook_id]
        health = read_health(db, [h.id if isinstance(h, Hook) else h for h in listed])
    verdicts = [
        judge(h, subject.event, health.get(h.id), settings.delivery)
        if isinstance(h, Hook)
        else Verdict(h, False, "not_found", "hook not found (deleted)")
        for h in listed
    ]
    _print(args, subject, verdicts, health)
    return EXIT_OK


def _print(args: argparse.Namespace, subject: Subject, verdicts: list[Verdict], health: Mapping[str, Health]) -> None:
    if args.json:
        print_json(
            {
                "event": subject.event,
                "account_id": subject.account_id,
                "subject": args.subject,
                "found_in": subject.found_in,
                "hooks": [_public(v, health.get(v.hook_id)) for v in verdicts],
            }
        )
        return
    scope = f"hook {subject.hook_id}" if subject.hook_id else f"{len(verdicts)} hook(s)"
    origin = f" (delivery {args.subject}, from {subject.found_in})" if subject.found_in else ""
    print(f"{subject.event} for account {subject.account_id}{origin}: {scope}", file=sys.stderr)
    for verdict in verdicts:
        print(verdict.line())
        if verdict.warning:
            print(f"hookd: explain: hook {verdict.hook_id}: {verdict.warning}", file=sys.stderr)


def _public(verdict: Verdict, health: Health | None) -> dict[str, Any]:
    return {
        "hook_id": verdict.hook_id,
        "would_receive": verdict.would_receive,
        "code": verdict.code,
        "reason": verdict.reason,
        "warning": verdict.warning,
        "breaker": health.breaker if health else "closed",
        "opened_at": iso_time(health.opened_at) if health else None,
        "disabled_reason": health.disabled_reason if health else None,
        "disabled_at": iso_time(health.disabled_at) if health else None,
    }
