"""`hookd deliveries ...`: read the delivery history in the state database and redeliver from it.

The history is what the daemon's history writer recorded (`hookd_deliveries`, `hookd_attempts`,
state.url), for either hooks source. A redelivery goes through the broker like a durable retry: a
targeted message on `<prefix>.deliveries` with the same delivery id, so receivers can dedupe, and
the attempt count continuing where it stopped.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hookd.broker import Outgoing
from hookd.messages import Target, target_headers
from hookd.state.db import Database
from hookd.state.history import DELIVERED, FAILED, RETRYING

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
from .output import block, excerpt, human_time, iso_time, print_json, table
from .sources import open_state

_EPILOG = """examples:
  hookd deliveries list --status failed --since 2h --config hookd.yaml
  hookd deliveries show 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml
  hookd deliveries redeliver 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml

Exit codes: 0 success, 1 database or broker unreachable, 2 bad argument or unknown delivery.
"""
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_COLUMNS = "delivery_id, hook_id, event, event_id, account_id, state, attempts, last_status, created_at, updated_at"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hookd deliveries` and its actions."""
    actions = add_group(sub, "deliveries", help_text="inspect and redeliver recorded deliveries", epilog=_EPILOG)
    opts = [common_options()]
    p = add_action(
        actions,
        "list",
        help_text="recorded deliveries, newest first",
        example="hookd deliveries list --hook 42 --status failed --since 2026-11-29T03:00:00Z --config hookd.yaml",
        parents=opts,
    )
    p.add_argument("--hook", metavar="ID", help="only this hook's deliveries")
    p.add_argument("--status", choices=(DELIVERED, RETRYING, FAILED), help="only deliveries in this state")
    p.add_argument("--since", type=parse_since, metavar="T", help="updated at or after T: ISO 8601, or 15m, 2h, 7d")
    p.add_argument("--limit", type=_limit, default=50, metavar="N", help="at most N deliveries (default 50)")

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


def run(args: argparse.Namespace) -> int:
    return run_action("deliveries", _ACTIONS, args)


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """`2026-11-29T03:00:00Z`, `2026-11-29` (midnight UTC), or a duration ago: `90s`, `15m`, `2h`, `7d`, `1w`.

    A time without a zone is UTC.
    """
    text = value.strip()
    if match := _DURATION.fullmatch(text):
        amount, unit = int(match[1]), match[2]
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time (2026-11-29T03:00:00Z, 2026-11-29) or a duration (15m, 2h, 7d), got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100000, got {value!r}")
    return number


# -- queries -------------------------------------------------------------------------------------------
def _select(state: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (("hook_id = ?", args.hook), ("state = ?", args.status), ("updated_at >= ?", args.since)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    # Only fixed fragments are joined; every value is bound.
    sql = f"SELECT {_COLUMNS} FROM hookd_deliveries{where} ORDER BY updated_at DESC, delivery_id DESC LIMIT ?"  # noqa: S608
    with state.transaction() as tx:
        return tx.fetchdicts(sql, (*params, args.limit))


def _delivery(state: Database | None, delivery_id: str, *, with_body: bool = False) -> dict[str, Any]:
    """The delivery row (plus `body` or `body_bytes`); an unknown id is a usage error (exit 2)."""
    found: list[dict[str, Any]] = []
    if state is not None:
        extra = "body" if with_body else "LENGTH(body) AS body_bytes"
        with state.transaction() as tx:
            found = tx.fetchdicts(
                f"SELECT {_COLUMNS}, {extra} FROM hookd_deliveries WHERE delivery_id = ?",  # noqa: S608 (fixed text)
                (delivery_id,),
            )
    if not found:
        raise UsageError(f"no delivery with id {delivery_id!r} in the state database")
    return found[0]


def _attempts(state: Database, delivery_id: str) -> list[dict[str, Any]]:
    with state.transaction() as tx:
        return tx.fetchdicts(
            "SELECT created_at, attempt, status, duration_ms, outcome, error, response_excerpt"
            " FROM hookd_attempts WHERE delivery_id = ? ORDER BY created_at, attempt, id",
            (delivery_id,),
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A row with JSON-ready timestamps."""
    return {k: (iso_time(v) if k in ("created_at", "updated_at") else v) for k, v in row.items()}


# -- actions -------------------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    with open_state(settings_from(args)) as state:
        rows = [] if state is None else _select(state, args)
    if args.json:
        print_json([_public(r) for r in rows])
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
        row = _delivery(state, args.delivery_id)
        assert state is not None
        attempts = _attempts(state, args.delivery_id)
    if args.json:
        log = [{**{k: v for k, v in a.items() if k != "created_at"}, "at": iso_time(a["created_at"])} for a in attempts]
        print_json({**_public(row), "attempt_log": log})
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
            human_time(a["created_at"]),
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
        row = _delivery(state, args.delivery_id, with_body=True)
    body = row["body"]
    if body is None:
        raise UsageError(f"delivery {args.delivery_id!r} has no stored body to send again")
    target = Target(
        hook_id=str(row["hook_id"]),
        event=str(row["event"]),
        event_id=str(row["event_id"]),
        account_id=str(row["account_id"]),
        delivery_id=str(row["delivery_id"]),
        attempts=int(row["attempts"]),
        retries=0,
    )
    with broker_connection(settings, name="hookd deliveries redeliver") as conn:
        queue = conn.topology.deliveries
        conn.publish(Outgoing(queue, bytes(body), target_headers(target), target.event_id, datetime.now(UTC)))
    if args.json:
        print_json({"delivery_id": target.delivery_id, "hook_id": target.hook_id, "queue": queue, "queued": True})
    else:
        print(
            f"redelivery queued for delivery {target.delivery_id} (hook {target.hook_id}, {target.event}, "
            f"next attempt {target.attempts + 1}) on {queue}"
        )
    return EXIT_OK


_ACTIONS = {"list": _list, "show": _show, "redeliver": _redeliver}
