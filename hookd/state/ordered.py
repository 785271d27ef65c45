"""The ordered deliveries waiting in the state database (`hookd_ordered`), for `hookd.ordering`'s chains.

A chain (one hook, one entity of one account) keeps a row for each delivery that waits here: its head
while it is on the durable retry path (`away`), and the deliveries behind it, in `seq` order. Only the
worker that owns the entity's partition writes a chain's rows (`hookd.daemon.sequencer`, through its
store thread); `hookd explain`, `hookd status`, the console and the gauge read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hookd.messages import Delivery
from hookd.ordering import ChainKey
from hookd.state.db import Database, parse_utc

_COLUMNS = "hook_id, account_id, entity, seq, delivery_id, away, event, event_id, attempts, retries, body, created_at"


@dataclass(frozen=True, slots=True)
class Row:
    """One waiting (or away) delivery of a chain."""

    key: ChainKey
    seq: int
    delivery: Delivery
    away: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """A row without its body: enough to rebuild a chain (`Chains.restore`)."""

    key: ChainKey
    seq: int
    delivery_id: str
    away: bool


def store(db: Database, rows: Sequence[Row]) -> None:
    """Write waiting rows (a row already there, e.g. written before a crash, stays as it is), and
    away heads (marking an existing row away)."""
    if not rows:
        return
    now = datetime.now(UTC)
    with db.transaction(write=True) as tx:
        for row in rows:
            d = row.delivery
            conflict = (
                "DO UPDATE SET away = TRUE, attempts = excluded.attempts, retries = excluded.retries"
                if row.away
                else "DO NOTHING"
            )
            tx.execute(
                f"INSERT INTO hookd_ordered ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 (fixed text)
                f" ON CONFLICT (delivery_id) {conflict}",
                (
                    row.key.hook_id,
                    row.key.account_id,
                    row.key.entity,
                    row.seq,
                    d.delivery_id,
                    row.away,
                    d.event,
                    d.event_id,
                    d.attempts,
                    d.retries,
                    d.body,
                    now,
                ),
            )


def mark_away(db: Database, delivery: Delivery) -> None:
    """A stored head went to the durable path: its row says so, with the attempts it made."""
    with db.transaction(write=True) as tx:
        tx.execute(
            "UPDATE hookd_ordered SET away = TRUE, attempts = ?, retries = ? WHERE delivery_id = ?",
            (delivery.attempts, delivery.retries, delivery.delivery_id),
        )


def delete(db: Database, delivery_ids: Sequence[str]) -> None:
    """Deliveries that ended (delivered or dead-lettered): out of their chains."""
    if not delivery_ids:
        return
    marks = ", ".join("?" * len(delivery_ids))
    with db.transaction(write=True) as tx:
        tx.execute(f"DELETE FROM hookd_ordered WHERE delivery_id IN ({marks})", tuple(delivery_ids))  # noqa: S608 (marks only)


def places(db: Database) -> list[Place]:
    """Every row's place, chains together and in order (the caller keeps its partitions' chains)."""
    with db.transaction() as tx:
        rows = tx.fetchall(
            "SELECT hook_id, account_id, entity, seq, delivery_id, away FROM hookd_ordered"
            " ORDER BY hook_id, account_id, entity, seq"
        )
    return [Place(ChainKey(str(h), str(a), str(e)), int(seq), str(d), bool(away)) for h, a, e, seq, d, away in rows]


def fetch(db: Database, delivery_id: str) -> Row | None:
    """One row with its body (a stored delivery about to start)."""
    with db.transaction() as tx:
        found = tx.fetchdicts(f"SELECT {_COLUMNS} FROM hookd_ordered WHERE delivery_id = ?", (delivery_id,))  # noqa: S608 (fixed text)
    return _row(found[0]) if found else None


def chain_of(db: Database, delivery_id: str) -> list[Row]:
    """The rows of the chain `delivery_id` waits in, up to and including it (bodies left out): its
    head first. Empty when it waits in no chain."""
    with db.transaction() as tx:
        found = tx.fetchdicts(
            "SELECT o.hook_id, o.account_id, o.entity, o.seq, o.delivery_id, o.away, o.event, o.event_id,"
            " o.attempts, o.retries, o.created_at FROM hookd_ordered o JOIN hookd_ordered me"
            " ON me.delivery_id = ? AND o.hook_id = me.hook_id AND o.account_id = me.account_id"
            " AND o.entity = me.entity AND o.seq <= me.seq ORDER BY o.seq",
            (delivery_id,),
        )
    return [_row(r) for r in found]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A hook's deliveries waiting in the database behind an earlier one, and since when the oldest waits."""

    hook_id: str
    waiting: int
    away: int
    oldest: datetime | None


def waiting(db: Database, hook_ids: Sequence[str] | None = None) -> dict[str, Waiting]:
    """Per hook: rows waiting behind a head, away heads, and the oldest row's time."""
    with db.transaction() as tx:
        rows = tx.fetchall(
            "SELECT hook_id, SUM(CASE WHEN away THEN 0 ELSE 1 END), SUM(CASE WHEN away THEN 1 ELSE 0 END),"
            " MIN(created_at) FROM hookd_ordered GROUP BY hook_id"
        )
    found = {
        str(h): Waiting(str(h), int(w or 0), int(a or 0), parse_utc(oldest) if oldest is not None else None)
        for h, w, a, oldest in rows
    }
    return found if hook_ids is None else {k: v for k, v in found.items() if k in hook_ids}


def _row(r: dict[str, Any]) -> Row:
    key = ChainKey(str(r["hook_id"]), str(r["account_id"]), str(r["entity"]))
    delivery = Delivery(
        hook_id=key.hook_id,
        event=str(r["event"]),
        event_id=str(r["event_id"]),
        account_id=key.account_id,
        delivery_id=str(r["delivery_id"]),
        body=bytes(r.get("body") or b""),
        attempts=int(r["attempts"]),
        retries=int(r["retries"]),
    )
    created = r.get("created_at")
    return Row(key, int(r["seq"]), delivery, bool(r["away"]), parse_utc(created) if created is not None else None)
