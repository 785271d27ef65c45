"""Per-hook rate limits: slots reserved in the state database one interval apart, shared by every
worker that uses the database; and the daemon waiting for them without failing or delaying others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.inprocess import InProcessDaemon, ScriptedTransport

from hookd.config import DeliverySettings
from hookd.state import pacing
from hookd.state.db import Database
from hookd.subscriptions.model import Hook

HookFactory = Callable[..., Hook]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite state database in the test's folder."""
    with Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}") as db:
        db.migrate()
        yield db


def test_reservations_are_one_interval_apart_whoever_makes_them(state: Database, tmp_path: Path) -> None:
    """Ten reservations from two handles on one database (two workers): the n-th waits about n
    intervals, whichever handle made it, and another hook is not affected."""
    other = Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    try:
        waits = [pacing.reserve(db, "h", 10.0) for db in (state, other) * 5]
    finally:
        other.close()
    for n, wait_s in enumerate(waits):
        assert n * 10.0 - 1.0 <= wait_s <= n * 10.0, waits
    assert pacing.reserve(state, "another", 10.0) == 0.0


def test_concurrent_reservations_never_share_a_slot(state: Database) -> None:
    """Reservations racing from eight threads get eight different slots."""
    results: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        wait_s = pacing.reserve(state, "h", 5.0)
        with lock:
            results.append(wait_s)

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    slots = sorted(round(w / 5.0) for w in results)
    assert slots == list(range(8)), results


def test_a_rate_limited_hook_is_paced_and_others_are_not_delayed(make_hook: HookFactory, state: Database) -> None:
    """A hook limited to 2 per second gets its 5 deliveries at least 0.5 s apart on average, none of
    them a failed attempt; an unlimited hook of the same events has all of its own before the limited
    one's third (which cannot start before a second has passed)."""
    transport = ScriptedTransport()
    limited = make_hook(id="1", events=("job",), rate_limit=2.0)
    free = make_hook(id="2", events=("job",))
    daemon = InProcessDaemon([limited, free], transport, state=state, delivery=DeliverySettings(inline_backoff_s=0))
    try:
        started = time.monotonic()
        for job in range(5):
            daemon.publish("job.completed", "acme", f'{{"id": {job}}}'.encode())
        assert daemon.broker.wait(lambda: len(transport.to("1")) == 5, 30)
        span_s = time.monotonic() - started
        assert span_s >= 4 * 0.5 - 0.05  # five slots, 0.5 s apart: a floor no machine goes below
        assert all(m.number == 1 for m in transport.to("1"))  # waiting was never a failed attempt
        arrival = {m.delivery_id: n for n, m in enumerate(transport.made)}
        last_free = max(arrival[m.delivery_id] for m in transport.to("2"))
        assert last_free < arrival[transport.to("1")[2].delivery_id]
    finally:
        daemon.stop()
