"""`hookd status`'s judgement and words, on values; and the heartbeat's row, on a SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hookd.cli.status import Queue, Report, plain_error, problems
from hookd.state import notices
from hookd.state.db import Database
from hookd.state.overview import LastFailure, Trouble
from hookd.state.workers import LOST_AFTER_S, Heartbeat, Worker, workers

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def worker(worker_id: str, *, seen_s_ago: float = 1, node: str | None = "rmq-1:5672", **extra: object) -> Worker:
    fields: dict[str, object] = {
        "worker_id": worker_id,
        "host": "host-a",
        "pid": 1,
        "node": node,
        "queues": ("hookd.events", "hookd.deliveries"),
        "started_at": NOW - timedelta(hours=1),
        "last_seen": NOW - timedelta(seconds=seen_s_ago),
        "stopped_at": None,
        "history_dropped": 0,
        **extra,
    }
    return Worker(**fields)  # type: ignore[arg-type]


def report(**fields: object) -> Report:
    base = Report(NOW, "amqp://rmq-1:5672/", "sqlite:///state.sqlite3")
    base.queues = [Queue("hookd.events", "events", 0, 2), Queue("hookd.deliveries", "deliveries", 0, 2)]
    base.workers = [worker("w1")]
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def test_a_consumed_quiet_setup_has_no_problem() -> None:
    """Both queues consumed, a live worker, no hook in trouble, no dead letter: healthy."""
    assert problems(report()) == []


def test_each_kind_of_trouble_is_one_problem_line() -> None:
    """A queue without consumers (a partition only with events waiting), a lost worker, a disconnected
    one, history drops, a hook, dead letters."""
    found = problems(
        report(
            queues=[
                Queue("hookd.events", "events", 10, 0),
                Queue("hookd.deliveries", "deliveries", None, None),
                Queue("hookd.partition.3", "partition", 5, 0),
                Queue("hookd.partition.4", "partition", 0, 0),
            ],
            workers=[
                worker("w1", seen_s_ago=LOST_AFTER_S + 1),
                worker("w2", node=None),
                worker("w3", history_dropped=7),
                worker("w4", stopped_at=NOW - timedelta(minutes=5), seen_s_ago=300),
            ],
            troubles=[Trouble("9", "open", NOW, "disabled", "gone", NOW, None)],
            dead_last_hour={"retries_exhausted": 2, "hook_gone": 1},
        )
    )
    assert found == [
        "no worker consumes hookd.events",
        "hookd.deliveries does not exist: no worker ever started on this prefix",
        "no worker consumes hookd.partition.3 (5 event(s) waiting)",
        "worker w1 on host-a not seen since 2026-12-05T11:59:44Z (stopped without a clean stop)",
        "worker w2 on host-a is not connected to the broker",
        "worker w3 dropped 7 history record(s)",
        "hook 9: disabled (gone), circuit open",
        "3 dead letter(s) in the last hour",
    ]


def test_a_failed_attempt_reads_in_plain_words() -> None:
    """What the receiver answered, why nothing came back, or the network policy's refusal."""
    assert (
        plain_error(LastFailure(NOW, 503, "retryable", "HTTP 503")) == "the receiver answered 503 Service Unavailable"
    )
    assert plain_error(LastFailure(NOW, 599, "retryable", None)) == "the receiver answered 599"
    assert plain_error(LastFailure(NOW, None, "retryable", "connection refused")) == "no answer: connection refused"
    blocked = plain_error(LastFailure(NOW, None, "blocked", "loopback address 127.0.0.1 is not allowed"))
    assert blocked == "refused by the network policy: loopback address 127.0.0.1 is not allowed"
    assert plain_error(None) == "-"


def test_a_worker_is_lost_only_when_unseen_and_not_stopped() -> None:
    """A clean stop is never "lost"; silence past LOST_AFTER_S is."""
    assert not worker("w", seen_s_ago=LOST_AFTER_S - 1).lost(NOW)
    assert worker("w", seen_s_ago=LOST_AFTER_S + 1).lost(NOW)
    assert not worker("w", seen_s_ago=3600, stopped_at=NOW - timedelta(hours=1)).lost(NOW)


def test_the_heartbeat_writes_its_row_reports_disabled_hooks_and_marks_a_clean_stop(tmp_path: Path) -> None:
    """One row per worker with node, queues and drops; the disabled hooks go to the callback; close() stops it."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    db.migrate()
    notices.transition(db, "5", to=notices.DISABLED, allowed_from=(None,), reason="gone", since=NOW, notice=None)
    seen: list[list[str]] = []
    heartbeat = Heartbeat(db, dropped=lambda: 4)
    heartbeat.connected("rmq-2:5672", ["p.events", "p.deliveries"])
    heartbeat.start(lambda ids: seen.append(sorted(ids)))
    heartbeat.close()
    (row,) = workers(db)
    assert row.worker_id == heartbeat.worker_id
    assert row.queues == () and row.node is None  # a clean stop clears them
    assert row.stopped_at is not None and row.history_dropped == 4
    assert seen and seen[0] == ["5"]
    heartbeat.connected("rmq-2:5672", ["p.events"])
    heartbeat.beat()
    (row,) = workers(db)
    assert row.node == "rmq-2:5672" and row.queues == ("p.events",) and row.stopped_at is None
    db.close()
