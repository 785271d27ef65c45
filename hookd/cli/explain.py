"""`hookd explain`: would each hook of an account receive an event, and if not, why not.

Support's first question about a missing webhook is "why didn't hook X get event Y?". The answer
comes from the rules the daemon applies (`hookd.dispatch.decide`, the same function) over what they
read: the hook itself (active, events: the subscription store), its health (circuit breaker and
automatic disabling: `hookd_hook_health` in the state database, written by the workers), then the
network policy an attempt applies (the SSRF guard: `delivery.allow_private_networks`,
`delivery.allowed_networks`). The first reason that applies is reported.

Given a delivery id (or a dead letter's, or an event id) instead of an event name, the event and
account come from the ordered deliveries waiting in the state database, the delivery history, else
from the dead-letter queue, which is only read: every message there is returned untouched. A
delivery waiting behind an earlier one of its entity (ordered delivery) says which one it waits for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from hookd import dispatch
from hookd.cli.args import EXIT_OK, Subparsers, common_options, settings_from
from hookd.cli.dlq import scan
from hookd.cli.output import iso_time, print_json
from hookd.cli.sources import broker_connection, open_hooks, open_state
from hookd.config import DeliverySettings, Settings
from hookd.errors import BlockedDestination, UsageError
from hookd.events import EVENTS, PING, normalize_account
from hookd.netpolicy import NetworkPolicy, Resolver, system_resolver
from hookd.outcomes import Circuit
from hookd.state import ordered, queries
from hookd.state.db import Database
from hookd.subscriptions.model import Hook

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
class Explanation:
    """Whether one hook would receive the event; `code` and `reason` say why not."""

    hook_id: str
    would_receive: bool
    code: str | None = None  # a dispatch.Code
    reason: str | None = None
    warning: str | None = None
    waits_for: Waiting | None = None

    def line(self) -> str:
        if self.would_receive and self.waits_for is not None:
            return f"{self.hook_id}  would receive, later: it {self.waits_for.line()}"
        if self.would_receive:
            return f"{self.hook_id}  would receive"
        return f"{self.hook_id}  would not receive: {self.reason}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """An ordered delivery waits for the head of its chain (hook and entity) to end."""

    delivery_id: str
    event: str
    event_id: str
    attempts: int
    away: bool  # the head is in a durable retry (else it is being attempted, or about to be)
    entity: str

    def line(self) -> str:
        where = "waiting in a durable retry" if self.away else "being delivered"
        return (
            f"waits for delivery {self.delivery_id} ({self.event} of {self.entity}, {self.attempts} attempt(s) so far,"
            f" {where}) to end"
        )


@dataclass(frozen=True, slots=True)
class Subject:
    """What is being explained: an event of an account, maybe for one hook (a delivery)."""

    event: str
    account_id: str
    hook_id: str | None = None
    found_in: str | None = None  # where an id was found: "waiting", "history" or the dead-letter queue
    waits_for: Waiting | None = None


# -- the rules -----------------------------------------------------------------------------------------
def network_problem(hook: Hook, delivery: DeliverySettings, resolver: Resolver = system_resolver) -> str | None:
    """Why the network policy (the daemon's SSRF guard) refuses the hook's host, or None.

    The same `NetworkPolicy` the daemon applies on every attempt. A DNS failure raises `OSError`:
    transient, not a policy refusal.
    """
    policy = NetworkPolicy.from_settings(delivery).for_hook(hook.allow_private)
    try:
        policy.check_url(hook.url, resolver)
    except BlockedDestination as exc:
        return str(exc)
    return None


def explain(
    hook: Hook | None,
    hook_id: str,
    event: str,
    health: queries.Health | None,
    delivery: DeliverySettings,
    *,
    resolver: Resolver = system_resolver,
) -> Explanation:
    """`dispatch.decide` for a fresh event, over the hook's recorded health; then the network policy."""
    health = health or queries.Health()

    def circuit() -> dispatch.Refusal | None:
        return dispatch.circuit_open(since=health.opened_at) if health.breaker == Circuit.OPEN else None

    refusal = dispatch.decide(hook, event, targeted=False, disabled=health.disabled_reason, circuit=circuit)
    if refusal is not None:
        return Explanation(hook_id, False, refusal.code, refusal.reason)
    assert hook is not None
    try:
        problem = network_problem(hook, delivery, resolver)
    except (OSError, UnicodeError) as exc:
        return Explanation(hook_id, True, warning=f"cannot resolve the hook's host now: {exc}")
    if problem is not None:
        return Explanation(hook_id, False, dispatch.Code.BLOCKED, f"blocked by network policy: {problem}")
    return Explanation(hook_id, True)


# -- reading state -------------------------------------------------------------------------------------
def find_subject(settings: Settings, db: Database | None, ident: str) -> Subject | None:
    """The delivery (or event) `ident` names: waiting behind an earlier one (ordered delivery), from
    the history, then the dead-letter queue."""
    if db is not None and (chain := ordered.chain_of(db, ident)):
        me, head = chain[-1], chain[0]
        waits = None
        if head.delivery.delivery_id != ident:
            d = head.delivery
            waits = Waiting(d.delivery_id, d.event, d.event_id, d.attempts, head.away, head.key.entity)
        return Subject(me.delivery.event, me.key.account_id, me.key.hook_id, "waiting", waits)
    if db is not None and (found := queries.find_delivery(db, ident)) is not None:
        event, account, hook_id = found
        return Subject(event, account, hook_id, "history")
    with broker_connection(settings, name="hookd explain") as conn:
        for letter in scan(conn, keep_body=False):  # read only: closing returns every message
            delivery = letter.delivery
            if delivery is not None and ident in (delivery.delivery_id, delivery.event_id):
                hook = delivery.hook_id if ident == delivery.delivery_id else None
                return Subject(delivery.event, delivery.account_id, hook, conn.topology.dead)
    return None


# -- the command ---------------------------------------------------------------------------------------
def register(sub: Subparsers) -> None:
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
    p.set_defaults(handler=_explain)


def _subject(args: argparse.Namespace, settings: Settings, db: Database | None) -> Subject:
    text: str = args.subject.strip()
    is_event = text in EVENTS or text == PING
    if args.account is not None:
        account = normalize_account(args.account)
        if account is None:
            raise UsageError("--account must be a non-empty account id")
        if not is_event:
            raise UsageError(f"unknown event {text!r}; expected one of {', '.join(sorted(EVENTS))}, ping")
        return Subject(text, account)
    if is_event:
        raise UsageError(f"--account is required to explain the event {text!r}")
    found = find_subject(settings, db, text)
    if found is None:
        raise UsageError(
            f"{text!r} is neither an event name nor a delivery id found waiting, in the history or "
            "the dead-letter queue (an event needs --account)"
        )
    return found


def _explain(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_state(settings) as db:
        subject = _subject(args, settings, db)
        with open_hooks(settings) as store:
            if subject.hook_id is None:
                listed: list[tuple[str, Hook | None]] = [(h.id, h) for h in store.list(subject.account_id)]
            else:
                listed = [(subject.hook_id, store.get(subject.hook_id))]
        health = queries.health(db, [hook_id for hook_id, _ in listed])
    explanations = [
        explain(hook, hook_id, subject.event, health.get(hook_id), settings.delivery) for hook_id, hook in listed
    ]
    if subject.waits_for is not None:
        explanations = [replace(e, waits_for=subject.waits_for) for e in explanations]
    _print(args, subject, explanations, health)
    return EXIT_OK


def _print(
    args: argparse.Namespace, subject: Subject, explanations: list[Explanation], health: Mapping[str, queries.Health]
) -> None:
    if args.json:
        print_json(
            {
                "event": subject.event,
                "account_id": subject.account_id,
                "subject": args.subject,
                "found_in": subject.found_in,
                "hooks": [_public(e, health.get(e.hook_id)) for e in explanations],
            }
        )
        return
    scope = f"hook {subject.hook_id}" if subject.hook_id else f"{len(explanations)} hook(s)"
    origin = f" (delivery {args.subject}, from {subject.found_in})" if subject.found_in else ""
    print(f"{subject.event} for account {subject.account_id}{origin}: {scope}", file=sys.stderr)
    for explanation in explanations:
        print(explanation.line())
        if explanation.warning:
            print(f"hookd: explain: hook {explanation.hook_id}: {explanation.warning}", file=sys.stderr)


def _public(explanation: Explanation, health: queries.Health | None) -> dict[str, Any]:
    return {
        "hook_id": explanation.hook_id,
        "would_receive": explanation.would_receive,
        "code": explanation.code,
        "reason": explanation.reason,
        "warning": explanation.warning,
        "breaker": health.breaker if health else Circuit.CLOSED.value,
        "opened_at": iso_time(health.opened_at) if health else None,
        "disabled_reason": health.disabled_reason if health else None,
        "disabled_at": iso_time(health.disabled_at) if health else None,
        "waits_for": asdict(explanation.waits_for) if explanation.waits_for else None,
    }
