"""The notice tables: each hook's notice state, and the outbox of notices waiting to be published.

`hookd_hook_notices` says which operational notification a hook last got: `failing`, `disabled` or
`ok` (recovered). `transition` moves a hook from one of the allowed states to another and, in the
same transaction, puts the notice in `hookd_notice_outbox`: a compare-and-set, so when several
workers see the same hook fail, exactly one of them writes (and so sends) `hook.failing`, and a
restarted worker that sees a hook still failing finds it `failing` already. Workers `claim` outbox
rows for a lease, publish them, and `remove` them once the broker confirmed; a worker that died
holding a claim lets it lapse, and another publishes the same notice (same event id) again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hookd.state.db import Database, parse_utc

FAILING, DISABLED, OK = "failing", "disabled", "ok"


@dataclass(frozen=True, slots=True)
class NoticeState:
    """A hook's last notice: its state, why, since when, and when that changed."""

    hook_id: str
    state: str
    reason: str | None
    since: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Pending:
    """An outbox row: a notice to publish (the routing key, its id, the account and the body)."""

    id: int
    event: str
    event_id: str
    account_id: str
    body: bytes


def transition(
    db: Database,
    hook_id: str,
    *,
    to: str,
    allowed_from: Collection[str | None],
    reason: str | None,
    since: datetime,
    notice: tuple[str, str, str, bytes] | None,
) -> bool:
    """Move `hook_id` to `to` if its state is one of `allowed_from` (None: no row yet), and queue
    `notice` (event, event id, account, body) in the same transaction. True when this call did it."""
    now = datetime.now(UTC)
    states_from = sorted(s for s in allowed_from if s is not None)
    with db.transaction(write=True) as tx:
        # Two single-statement compare-and-sets, so that concurrent workers never both win: an UPDATE
        # of a row in an allowed state, else (no row allowed) an INSERT that a present row defeats.
        won = False
        if states_from:
            marks = ", ".join("?" * len(states_from))
            update = f"UPDATE hookd_hook_notices SET state = ?, reason = ?, since = ?, updated_at = ? WHERE hook_id = ? AND state IN ({marks})"  # noqa: E501, S608 (marks only)
            won = tx.execute(update, (to, reason, since, now, hook_id, *states_from)) == 1
        if not won and None in allowed_from:
            won = (
                tx.execute(
                    "INSERT INTO hookd_hook_notices (hook_id, state, reason, since, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (hook_id) DO NOTHING",
                    (hook_id, to, reason, since, now),
                )
                == 1
            )
        if not won:
            return False
        if notice is not None:
            event, event_id, account_id, body = notice
            tx.execute(
                "INSERT INTO hookd_notice_outbox (event, event_id, account_id, body, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event, event_id, account_id, body, now),
            )
    return True


def states(db: Database, hook_ids: Collection[str] | None = None) -> dict[str, NoticeState]:
    """Every hook's notice state (of `hook_ids` only, if given)."""
    with db.transaction() as tx:
        rows = tx.fetchdicts("SELECT hook_id, state, reason, since, updated_at FROM hookd_hook_notices")
    found = {
        str(r["hook_id"]): NoticeState(
            str(r["hook_id"]), str(r["state"]), r["reason"], parse_utc(r["since"]), parse_utc(r["updated_at"])
        )
        for r in rows
    }
    return found if hook_ids is None else {k: v for k, v in found.items() if k in hook_ids}


def claim(db: Database, *, limit: int = 50, lease_s: float = 30.0) -> list[Pending]:
    """Outbox rows nobody holds (or whose lease lapsed), now held by the caller for `lease_s`."""
    now = datetime.now(UTC)
    with db.transaction(write=True) as tx:
        skip = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""  # SQLite: one writer at a time
        rows = tx.fetchdicts(
            "SELECT id, event, event_id, account_id, body FROM hookd_notice_outbox"  # noqa: S608 (fixed text)
            " WHERE claimed_until IS NULL OR claimed_until < ? ORDER BY id LIMIT ?" + skip,
            (now, limit),
        )
        if rows:
            marks = ", ".join("?" * len(rows))
            tx.execute(
                f"UPDATE hookd_notice_outbox SET claimed_until = ? WHERE id IN ({marks})",  # noqa: S608 (marks only)
                (now + timedelta(seconds=lease_s), *(r["id"] for r in rows)),
            )
    return [_pending(r) for r in rows]


def remove(db: Database, ids: Sequence[int]) -> None:
    """Notices the broker confirmed: out of the outbox."""
    if not ids:
        return
    marks = ", ".join("?" * len(ids))
    with db.transaction(write=True) as tx:
        tx.execute(f"DELETE FROM hookd_notice_outbox WHERE id IN ({marks})", tuple(ids))  # noqa: S608 (marks only)


def _pending(row: dict[str, Any]) -> Pending:
    return Pending(int(row["id"]), str(row["event"]), str(row["event_id"]), str(row["account_id"]), bytes(row["body"]))
