"""Requests per API key and clock hour, counted in the database.

Counting in the database (not in process memory) lets several `hookd serve` processes, on one host
or many, share one limit per key. Each request is one upsert that returns the new count: a fixed
window (the clock hour), simple to explain in `X-RateLimit-*` headers: the limit, what is left, and
when the window resets. A key's older windows are deleted when its new window starts. This module
owns the `hookd_api_rate` table.
"""

from __future__ import annotations

from dataclasses import dataclass

from hookd.state.db import Database

WINDOW_S = 3600


@dataclass(frozen=True, slots=True)
class Quota:
    """Where a key stands in the current window after counting one more request."""

    limit: int
    used: int
    reset_at: int  # Unix seconds when the window ends

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def hit(db: Database, key_id: str, limit: int, now: float) -> Quota:
    """Count one request of `key_id` at `now` (Unix seconds) and return its quota."""
    window = int(now // WINDOW_S) * WINDOW_S
    with db.transaction(write=True) as tx:
        row = tx.fetchone(
            "INSERT INTO hookd_api_rate (key_id, window_start, requests) VALUES (?, ?, 1)"
            " ON CONFLICT (key_id, window_start) DO UPDATE SET requests = hookd_api_rate.requests + 1"
            " RETURNING requests",
            (key_id, window),
        )
        used = int(row[0]) if row is not None else 1
        if used == 1:
            tx.execute("DELETE FROM hookd_api_rate WHERE key_id = ? AND window_start < ?", (key_id, window))
    return Quota(limit=limit, used=used, reset_at=window + WINDOW_S)
