"""`hookd deliveries ...`: read the delivery history in the state database and redeliver from it.

The history is what the daemon's history writer recorded (`state.queries` reads it), for either
hooks source. A redelivery goes through the broker like a durable retry: a targeted message on
`<prefix>.deliveries` with the same delivery id, so receivers can dedupe, and the attempt count
continuing where it stopped.
"""

from __future__ import annotations

import argparse
from typing import Any

from hookd.cli import args as cli_args
from hookd.cli.args import EXIT_OK, Subparsers, add_action, add_group, common_options, settings_from
from hookd.cli.output import block, excerpt, human_time, print_json, table
from hookd.cli.sources import open_state
from hookd.errors import UsageError
from hookd.outcomes import DeliveryState
from hookd.resource import delivery_resource
from hookd.state import queries
from hookd.targeted import redelivery, send_redelivery

_EPILOG = """examples:
  hookd deliveries list --status failed --since 2h --config hookd.yaml
  hookd deliveries show 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml
  hookd deliveries redeliver 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml

Exit codes: 0 success, 1 database or broker unreachable, 2 bad argument or unknown delivery.
"""


def register(sub: Subparsers) -> None:
    """Add `hookd deliveries` and its actions."""
    actions = add_group(
        sub, "deliveries", help_text="inspect and redeliver recorded deliveries", epilog=_EPILOG, actions=_ACTIONS
    )
    opts = [common_options()]
    p = add_action(
        actions,
        "list",
        help_text="recorded deliveries, newest first",
        example="hookd deliveries list --hook 42 --status failed --since 2026-11-29T03:00:00Z --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("--hook", metavar="ID", help="only this hook's deliveries")
    p.add_argument("--status", choices=list(DeliveryState), help="only deliveries in this state")
    p.add_argument("--since", type=cli_args.since, metavar="T", help="updated at or after T: ISO 8601, or 15m, 2h, 7d")
    p.add_argument("--limit", type=cli_args.limit, default=50, metavar="N", help="at most N deliveries (default 50)")

    for name, help_text in (
        ("show", "one delivery and every attempt made for it"),
        ("redeliver", "send a recorded delivery again through the broker, with the same delivery id"),
    ):
        p = add_action(
            actions,
            name,
            help_text=help_text,
            example=f"hookd deliveries {name} 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml",
            parents=opts,
        )
        p.add_argument("delivery_id", metavar="DELIVERY_ID")


def _known(row: dict[str, Any] | None, delivery_id: str) -> dict[str, Any]:
    if row is None:
        raise UsageError(f"no delivery with id {delivery_id!r} in the state database")
    return row


# -- actions -------------------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    with open_state(settings_from(args)) as state:
        rows = (
            []
            if state is None
            else queries.deliveries(state, hook_id=args.hook, state=args.status, since=args.since, limit=args.limit)
        )
    if args.json:
        print_json([delivery_resource(r) for r in rows])
        return EXIT_OK
    if not rows:
        print("no deliveries")
        return EXIT_OK
    lines = [
        (
            r["delivery_id"],
            r["hook_id"],
            r["event"],
            r["state"],
            r["attempts"],
            r["last_status"],
            human_time(r["updated_at"]),
        )
        for r in rows
    ]
    print(table(["DELIVERY", "HOOK", "EVENT", "STATE", "ATTEMPTS", "LAST STATUS", "UPDATED"], lines))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    with open_state(settings_from(args)) as state:
        row = _known(None if state is None else queries.delivery(state, args.delivery_id), args.delivery_id)
        assert state is not None
        attempts = queries.attempts(state, [args.delivery_id])[args.delivery_id]
    if args.json:
        print_json(delivery_resource(row, attempts))
        return EXIT_OK
    body = "-" if row["body_bytes"] is None else f"{row['body_bytes']} bytes"
    print(
        block(
            f"delivery {row['delivery_id']}",
            [
                ("hook", row["hook_id"]),
                ("event", row["event"]),
                ("event id", row["event_id"]),
                ("account", row["account_id"]),
                ("state", row["state"]),
                ("attempts", row["attempts"]),
                ("last status", row["last_status"]),
                ("created", human_time(row["created_at"])),
                ("updated", human_time(row["updated_at"])),
                ("body", body),
            ],
        )
    )
    lines = [
        (
            human_time(a["at"]),
            a["attempt"],
            a["status"],
            f"{a['duration_ms']:.1f} ms",
            a["outcome"],
            excerpt(a["error"], 80),
            excerpt(a["response_excerpt"], 80),
        )
        for a in attempts
    ]
    print("attempts")
    rendered = table(["TIME", "ATTEMPT", "STATUS", "DURATION", "OUTCOME", "ERROR", "RESPONSE"], lines)
    print("\n".join("  " + line for line in rendered.splitlines()))
    return EXIT_OK


def _redeliver(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_state(settings) as state:
        row = _known(
            None if state is None else queries.delivery(state, args.delivery_id, with_body=True), args.delivery_id
        )
    delivery = redelivery(row)
    queue = send_redelivery(settings, delivery, name="hookd deliveries redeliver")
    if args.json:
        print_json({"delivery_id": delivery.delivery_id, "hook_id": delivery.hook_id, "queue": queue, "queued": True})
    else:
        print(
            f"redelivery queued for delivery {delivery.delivery_id} (hook {delivery.hook_id}, {delivery.event}, "
            f"next attempt {delivery.attempts + 1}) on {queue}"
        )
    return EXIT_OK


_ACTIONS = {"list": _list, "show": _show, "redeliver": _redeliver}
