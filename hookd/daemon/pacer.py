"""Pacing the deliveries of a hook with a `rate_limit`, across every worker, off the event loop.

Before each attempt to such a hook, the engine awaits `Pacer.turn`: a slot is reserved in the state
database (`hookd.state.pacing`, one transaction) on the pacer's own thread, and the attempt waits, on
the loop, until its slot comes. Waiting is not an attempt: it counts as no failure, opens no
circuit, and delays no other hook (the loop runs everything else meanwhile). Without a state
database, or while it does not answer, the same reservation is made in memory: the limit then holds
per process only (`pacing.local`, logged once per outage).

Threads: `turn` runs on the engine's loop; the reservations run on the `pacer` thread (one, so that
they queue instead of contending for the database's write lock); `_local` belongs to that thread.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from hookd import logs
from hookd.errors import StoreError
from hookd.state import pacing
from hookd.state.db import Database

log = logs.get_logger("hookd.worker")


class Pacer:
    """Reserves slots for rate-limited hooks (see the module docstring)."""

    def __init__(self, db: Database | None) -> None:
        self._db = db
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pacer")
        self._local: dict[str, float] = {}  # hook id -> next free slot (monotonic), the pacer thread's
        self._outage = False  # the pacer thread's

    async def turn(self, hook_id: str, rate_per_s: float) -> float:
        """Wait for the hook's next slot; returns how long it waited, seconds."""
        loop = asyncio.get_running_loop()
        wait_s = await loop.run_in_executor(self._executor, self._reserve, hook_id, 1.0 / rate_per_s)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        return wait_s

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _reserve(self, hook_id: str, interval_s: float) -> float:
        if self._db is not None:
            try:
                wait_s = pacing.reserve(self._db, hook_id, interval_s)
            except StoreError as exc:
                if not self._outage:
                    log.warning("pacing.local", error=str(exc))
                self._outage = True
            else:
                self._outage = False
                return wait_s
        now = time.monotonic()
        slot = max(self._local.get(hook_id, now), now)
        self._local[hook_id] = slot + interval_s
        return slot - now
