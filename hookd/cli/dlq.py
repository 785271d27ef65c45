"""`hookd dlq ...`: list, show, replay and purge the dead letters in `<prefix>.dead`.

How the queue is read without losing or reordering anything: every command fetches the whole
queue with `basic.get` and no acknowledgement, so each dead letter stays the broker's until we
ack it. Only the dead letters a command acts on are acked (purge), or acked after their replayed
copy was confirmed by the broker (replay). Closing the connection then hands every unacked one
back to the queue in its original position. Closing rather than rejecting with requeue matters on
quorum queues: RabbitMQ counts explicit requeues against a queue's delivery limit (from 4.0 on,
by default 20), but not messages returned because their channel closed.

A replay is a targeted delivery on `<prefix>.deliveries`, exactly like a durable retry coming
due: same body, same delivery id (receivers dedupe on it), attempt numbers continuing where they
stopped, and a fresh durable retry schedule (`retries=0`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hookd.broker import Connection
from hookd.cli import args as cli_args
from hookd.cli.args import EXIT_OK, Subparsers, add_action, add_group, common_options, settings_from
from hookd.cli.output import block, human_time, iso_time, print_json
from hookd.cli.sources import broker_connection
from hookd.dispatch import covers
from hookd.errors import EventError, UsageError
from hookd.events import PING, SUBSCRIBABLE
from hookd.messages import Delivery, parse_delivery
from hookd.publisher import delivery_message

DEFAULT_RATE_PER_S = 10.0
_EPILOG = """examples:
  hookd dlq list --config /etc/hookd/hookd.yaml
  hookd dlq list --hook 42 --event job.failed --since 24h --config hookd.yaml
  hookd dlq show 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml
  hookd dlq replay --hook 42 --dry-run --config hookd.yaml
  hookd dlq replay --hook 42 --since 2h --rate 5/s --config hookd.yaml
  hookd dlq purge --event job.started --since 2026-11-01 --config hookd.yaml

Dead letters are selected by --hook, --event (a name or the group job/cluster), --since and
DELIVERY_ID arguments (delivery or event ids); all of them must match. Nothing is removed from
the dead-letter queue before its replayed copy is confirmed by the broker.
Exit codes: 0 success, 1 broker unreachable, 2 bad argument or a DELIVERY_ID not in the queue.
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of `<prefix>.dead`, read from its headers; `delivery` is None when they are malformed."""

    tag: int
    message_id: str | None
    delivery: Delivery | None
    reason: str | None
    dead_lettered_at: datetime | None
    last_status: int | None
    error: str | None
    body: bytes
    problem: str | None = None

    @property
    def delivery_id(self) -> str:
        return self.delivery.delivery_id if self.delivery else (self.message_id or "-")

    def public(self, *, with_body: bool = False) -> dict[str, Any]:
        """JSON-ready fields (the body only on request: it is the customer's resource)."""
        fields = asdict(self.delivery) if self.delivery else {}
        data: dict[str, Any] = {
            "delivery_id": self.delivery_id,
            **{k: v for k, v in fields.items() if k not in ("delivery_id", "body")},
            "reason": self.reason,
            "dead_lettered_at": iso_time(self.dead_lettered_at),
            "last_status": self.last_status,
            "error": self.error,
        }
        if self.problem:
            data["problem"] = self.problem
        if with_body:
            data["body"] = self.body.decode("utf-8", "replace")
        return data


# -- parsing -------------------------------------------------------------------------------------------
def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value is not None and str(value) != "" else None


def _moment(value: object) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_dead_letter(tag: int, headers: Mapping[str, Any], message_id: str | None, body: bytes) -> DeadLetter:
    """A dead letter from its AMQP headers (see `messages.dead_letter_headers`)."""
    status = headers.get("last_status")
    try:
        delivery: Delivery | None = parse_delivery(headers, message_id, body)
        problem = None
    except EventError as exc:
        delivery, problem = None, exc.detail
    return DeadLetter(
        tag=tag,
        message_id=message_id,
        delivery=delivery,
        reason=_text(headers.get("reason")),
        dead_lettered_at=_moment(headers.get("dead_lettered_at")),
        last_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        error=_text(headers.get("error")),
        body=body,
        problem=problem,
    )


def _event(value: str) -> str:
    if value not in SUBSCRIBABLE and value != PING:
        raise argparse.ArgumentTypeError(f"unknown event {value!r}; expected one of {', '.join(sorted(SUBSCRIBABLE))}")
    return value


# -- selection -----------------------------------------------------------------------------------------
def scan(conn: Connection, *, keep_body: bool) -> Iterator[DeadLetter]:
    """Every dead letter now in the queue, front to back, each left unacked (ours until close/ack)."""
    queue = conn.topology.dead
    while (msg := conn.get(queue)) is not None:
        yield read_dead_letter(msg.delivery_tag, msg.headers, msg.message_id, msg.body if keep_body else b"")


def selected(letter: DeadLetter, args: argparse.Namespace) -> bool:
    """True when the dead letter matches every filter given on the command line."""
    delivery = letter.delivery
    if args.hook is not None and (delivery is None or delivery.hook_id != args.hook):
        return False
    if args.event is not None and (delivery is None or not covers(args.event, delivery.event)):
        return False
    if args.since is not None and (letter.dead_lettered_at is None or letter.dead_lettered_at < args.since):
        return False
    ids: Sequence[str] = args.ids
    return not ids or letter.delivery_id in ids or (delivery is not None and delivery.event_id in ids)


def _select(conn: Connection, args: argparse.Namespace, *, keep_body: bool) -> tuple[list[DeadLetter], int]:
    """The selected dead letters and how many the queue held; unknown DELIVERY_IDs are a usage error.

    On a usage error nothing was acked, so closing the connection returns everything.
    """
    total = 0
    chosen: list[DeadLetter] = []
    for letter in scan(conn, keep_body=keep_body):
        total += 1
        if selected(letter, args):
            chosen.append(letter)
    found = {letter.delivery_id for letter in chosen} | {c.delivery.event_id for c in chosen if c.delivery}
    missing = [i for i in args.ids if i not in found]
    if missing:
        raise UsageError(*(f"no dead letter with delivery id {i!r} in {conn.topology.dead}" for i in missing))
    return chosen, total


# -- output --------------------------------------------------------------------------------------------
def _line(letter: DeadLetter) -> str:
    delivery = letter.delivery
    fields = [
        letter.delivery_id.ljust(36),
        f"hook={delivery.hook_id if delivery else '-'}",
        f"event={delivery.event if delivery else '-'}",
        f"reason={letter.reason or '-'}",
        f"attempts={delivery.attempts if delivery else '-'}",
        f"at={human_time(letter.dead_lettered_at)}",
    ]
    if letter.problem:
        fields.append(f"malformed: {letter.problem}")
    return "  ".join(fields)


def _summary(what: str, count: int, total: int, queue: str) -> None:
    print(f"{what} {count} of {total} dead letter(s) in {queue}", file=sys.stderr)


# -- actions -------------------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    """One line per selected dead letter: delivery id, hook, event, reason, attempts, time."""
    with broker_connection(settings_from(args), name="hookd dlq list") as conn:
        chosen, total = _select(conn, args, keep_body=False)
    if args.json:
        print_json([letter.public() for letter in chosen])
    else:
        for letter in chosen:
            print(_line(letter))
        _summary("listed", len(chosen), total, conn.topology.dead)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    """Every header and the body of each selected dead letter."""
    with broker_connection(settings_from(args), name="hookd dlq show") as conn:
        chosen, total = _select(conn, args, keep_body=True)
    if args.json:
        print_json([letter.public(with_body=True) for letter in chosen])
        return EXIT_OK
    for index, letter in enumerate(chosen):
        if index:
            print()
        fields = [(k.replace("_", " "), v) for k, v in letter.public(with_body=True).items() if k != "delivery_id"]
        print(block(f"dead letter {letter.delivery_id}", fields))
    _summary("shown", len(chosen), total, conn.topology.dead)
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    """Put the selected dead letters back on the delivery path at a capped rate, same delivery ids."""
    settings = settings_from(args)
    done: list[DeadLetter] = []
    with broker_connection(settings, name="hookd dlq replay") as conn:
        chosen, total = _select(conn, args, keep_body=True)
        for letter in chosen:
            if letter.delivery is None:
                print(f"hookd: skipped malformed dead letter {letter.delivery_id}: {letter.problem}", file=sys.stderr)
        verb = "would replay" if args.dry_run else "replayed"
        started = time.monotonic()
        for letter in (c for c in chosen if c.delivery is not None):
            if not args.dry_run:
                _pace(conn, started + len(done) / args.rate)
                replay_one(conn, letter)
            done.append(letter)
            if not args.json:
                print(f"{verb} {_line(letter)}")
        queue = conn.topology.deliveries
    _report(args, "replayed", done, total, queue)
    return EXIT_OK


def _report(args: argparse.Namespace, what: str, done: list[DeadLetter], total: int, queue: str) -> None:
    """The closing summary of replay and purge (a JSON document with --json)."""
    if args.json:
        print_json({"dry_run": args.dry_run, what: [d.public() for d in done], "total": total, "queue": queue})
    elif args.dry_run:
        print(f"dry run: {len(done)} of {total} dead letter(s) would be {what} ({queue}); nothing changed")
    else:
        print(f"{what} {len(done)} of {total} dead letter(s) ({queue})")


def replay_one(conn: Connection, letter: DeadLetter) -> Delivery:
    """Publish the replayed copy, wait for the broker's confirm, and only then ack the dead letter.

    A crash between the two leaves both (the receiver dedupes on the delivery id): never neither.
    """
    assert letter.delivery is not None
    replayed = replace(letter.delivery, retries=0)
    message = delivery_message(replayed, conn.topology)
    conn.publish(replace(message, headers={**message.headers, "replayed_from": conn.topology.dead}))
    conn.ack(letter.tag)
    return replayed


def _pace(conn: Connection, due: float) -> None:
    """Wait until `due` (monotonic), serving the connection meanwhile so heartbeats keep flowing."""
    while (left := due - time.monotonic()) > 0:
        conn.poll(min(left, 1.0))


def _purge(args: argparse.Namespace) -> int:
    """Remove the selected dead letters for good (ack them); the others stay where they are."""
    with broker_connection(settings_from(args), name="hookd dlq purge") as conn:
        chosen, total = _select(conn, args, keep_body=False)
        verb = "would purge" if args.dry_run else "purged"
        for letter in chosen:
            if not args.dry_run:
                conn.ack(letter.tag)
            if not args.json:
                print(f"{verb} {_line(letter)}")
        if not args.dry_run:
            conn.poll(0)  # hand the acks to the socket before the connection closes
        queue = conn.topology.dead
    _report(args, "purged", chosen, total, queue)
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------------------
def register(sub: Subparsers) -> None:
    """Add `hookd dlq` and its actions."""
    actions = add_group(
        sub, "dlq", help_text="list, show, replay and purge dead letters", epilog=_EPILOG, actions=_ACTIONS
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("ids", nargs="*", metavar="DELIVERY_ID", help="only these delivery (or event) ids")
    filters.add_argument("--hook", metavar="ID", help="only dead letters of this hook")
    filters.add_argument("--event", type=_event, metavar="E", help="only this event, or the group job/cluster")
    filters.add_argument(
        "--since", type=cli_args.since, metavar="T", help="dead-lettered at or after T: ISO 8601, or 15m, 2h, 7d"
    )
    parents = [common_options(), filters]
    add_action(
        actions,
        "list",
        help_text="one line per dead letter: delivery id, hook, event, reason, attempts, time",
        example="hookd dlq list --hook 42 --since 24h --config hookd.yaml",
        parents=parents,
    )
    add_action(
        actions,
        "show",
        help_text="every header and the body of the selected dead letters",
        example="hookd dlq show 6f1c0a52-5d1e-5b9e-9c1b-2a7f3e0d4c11 --config hookd.yaml",
        parents=parents,
    )
    p = add_action(
        actions,
        "replay",
        help_text="deliver the selected dead letters again, with their delivery ids, at a capped rate",
        example="hookd dlq replay --hook 42 --event job.failed --rate 5/s --config hookd.yaml",
        parents=parents,
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    p.add_argument(
        "--rate",
        type=cli_args.rate,
        default=DEFAULT_RATE_PER_S,
        metavar="N/s",
        help=f"at most N replays per second (default {DEFAULT_RATE_PER_S:g}/s; also N/m)",
    )
    p = add_action(
        actions,
        "purge",
        help_text="remove the selected dead letters for good",
        example="hookd dlq purge --hook 42 --dry-run --config hookd.yaml",
        parents=parents,
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be purged; change nothing")


_ACTIONS = {"list": _list, "show": _show, "replay": _replay, "purge": _purge}
