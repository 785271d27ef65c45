"""The history writer: records that cannot be kept are dropped without blocking anyone, counted, and
reported in the log (rate-limited); the rest reach the state database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hookd.outcomes import DeliveryState
from hookd.state.db import Database
from hookd.state.history import HistoryWriter, Settlement


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite state database in the test's folder."""
    with Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}") as db:
        db.migrate()
        yield db


def _settlement(n: int) -> Settlement:
    now = datetime.now(UTC)
    return Settlement(f"d{n}", "1", "job.failed", f"e{n}", "acme", DeliveryState.DELIVERED, 1, 200, now, b"{}")


def test_a_full_queue_drops_counts_and_reports_without_blocking(state: Database) -> None:
    """With the queue full, `record()` returns at once; the drops are counted and the writer logs
    `history.dropped` with how many, once it runs."""
    writer = HistoryWriter(state, max_pending=3, flush_interval_s=0.01)
    recorded = threading.Event()

    def record_many() -> None:
        for n in range(10):
            writer.record(_settlement(n))
        recorded.set()

    threading.Thread(target=record_many, daemon=True).start()
    assert recorded.wait(5), "record() blocked on a full queue"
    assert writer.dropped == 7
    with capture_logs() as logged:
        writer.start()
        writer.close()
    reports = [entry for entry in logged if entry["event"] == "history.dropped"]
    assert [(r["records"], r["dropped_total"], r["log_level"]) for r in reports] == [(7, 7, "warning")]
    assert writer.written == 3
    with state.transaction() as tx:
        assert tx.fetchone("SELECT COUNT(*) FROM hookd_deliveries") == (3,)
