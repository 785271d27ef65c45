"""Per-hook rate limits shared by every worker (`hookd_pace`): a slot reservation in the state database.

A hook with `rate_limit: R` gets at most R requests per second from the whole installation. Each
request first reserves the hook's next slot: in one transaction, the slot is `max(next_at, now)` and
`next_at` moves on by 1/R (a GCRA, the "theoretical arrival time" of a leaky bucket with no burst).
Times are the database's own clock, so workers on several hosts need no synchronised clocks; the
caller learns only how long to wait.
"""

from __future__ import annotations

from hookd.state.db import Database, Transaction

_NOW = {
    "sqlite": "(julianday('now') - 2440587.5) * 86400.0",
    "postgresql": "extract(epoch from clock_timestamp())::double precision",
}


def reserve(db: Database, hook_id: str, interval_s: float) -> float:
    """Reserve the hook's next slot; returns the seconds to wait before it starts (0 when free now)."""
    with db.transaction(write=True) as tx:
        # The row first (so that concurrent first reservations queue on it), then locked and moved on.
        tx.execute(
            "INSERT INTO hookd_pace (hook_id, next_at) VALUES (?, 0) ON CONFLICT (hook_id) DO NOTHING", (hook_id,)
        )
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""  # SQLite: the write lock is held already
        row = tx.fetchone("SELECT next_at FROM hookd_pace WHERE hook_id = ?" + lock, (hook_id,))  # noqa: S608 (fixed text)
        now = _now(tx)
        slot = max(float(row[0]) if row is not None else 0.0, now)
        tx.execute("UPDATE hookd_pace SET next_at = ? WHERE hook_id = ?", (slot + interval_s, hook_id))
    return max(0.0, slot - now)


def _now(tx: Transaction) -> float:
    row = tx.fetchone(f"SELECT {_NOW[tx.dialect]}")
    assert row is not None
    return float(row[0])
