"""`hookd status --config PATH`: is hookd healthy, and which hooks are in trouble? One screen.

Everything comes from the broker and the state database, never from a worker (a dead worker must
show up, not hang the command): passive declares give each queue's depth and consumer count; the
dead-letter queue is read without acknowledging (like `hookd dlq list`: closing the connection puts
every message back in place) for the last hour's dead letters by reason; the state database gives
the workers' heartbeats (`hookd_workers`: which worker consumes which queue through which node), the
hooks with a tripped circuit or a failing/disabled notice state with their last failed attempt, and
the oldest delivery waiting for a retry. Nothing is written or migrated.

Exit codes: 0 healthy, 1 degraded (`problems()` says why), 2 bad arguments or configuration,
3 the broker or the state database unreachable (what could be read is still shown).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from hookd.broker import BrokerConnection, connect
from hookd.cli.args import EXIT_OK, Subparsers, add_command, settings_from
from hookd.cli.dlq import read_dead_letter
from hookd.cli.output import human_time, iso_time, print_json, table
from hookd.config import Settings
from hookd.errors import BrokerError, StoreError
from hookd.outcomes import Circuit, Verdict
from hookd.retry import DELAY_BUCKETS_S
from hookd.state import overview
from hookd.state import workers as heartbeats
from hookd.state.db import Database, sqlite_file_missing
from hookd.state.migrations import LATEST_VERSION

EXIT_DEGRADED, EXIT_UNREACHABLE = 1, 3
#: At most this many dead letters are read to count the last hour's; the depth is exact regardless.
DEAD_SCAN_LIMIT = 10_000
_HOUR = timedelta(hours=1)
_EPILOG = """examples:
  hookd status --config /etc/hookd/hookd.yaml
  hookd status --config /etc/hookd/hookd.yaml --json | jq .problems

Exit codes: 0 healthy, 1 degraded (the problems are listed first), 2 bad arguments or configuration,
3 the broker or the state database unreachable.
"""


@dataclass(frozen=True, slots=True)
class Queue:
    """One of hookd's queues as the broker sees it (None: the queue does not exist)."""

    name: str
    role: str  # events, deliveries, retry, dead, invalid, partition, workers
    messages: int | None
    consumers: int | None


@dataclass
class Report:
    """Everything `hookd status` found; `problems()` judges it."""

    checked_at: datetime
    broker: str
    state: str
    queues: list[Queue] = field(default_factory=list)
    workers: list[heartbeats.Worker] | None = None  # None: no heartbeats to read
    dead_last_hour: dict[str, int] = field(default_factory=dict)
    dead_scanned: int = 0
    troubles: list[overview.Trouble] = field(default_factory=list)
    oldest_waiting: overview.Waiting | None = None
    unreachable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def live_workers(self) -> list[heartbeats.Worker]:
        return [w for w in self.workers or () if w.stopped_at is None and not w.lost(self.checked_at)]


# -- judging ---------------------------------------------------------------------------------------
def problems(report: Report) -> list[str]:
    """Why hookd is degraded, one line each (empty: healthy). Pure: a function of the report."""
    found: list[str] = []
    for queue in report.queues:
        if queue.role == "partition" and queue.messages and not queue.consumers:
            found.append(f"no worker consumes {queue.name} ({queue.messages} event(s) waiting)")
        if queue.role not in ("events", "deliveries"):
            continue
        if queue.consumers is None:
            found.append(f"{queue.name} does not exist: no worker ever started on this prefix")
        elif queue.consumers == 0:
            found.append(f"no worker consumes {queue.name}")
    for worker in report.workers or ():
        if worker.lost(report.checked_at):
            seen = human_time(worker.last_seen)
            found.append(
                f"worker {worker.worker_id} on {worker.host} not seen since {seen} (stopped without a clean stop)"
            )
    for worker in report.live_workers():
        if worker.node is None:
            found.append(f"worker {worker.worker_id} on {worker.host} is not connected to the broker")
        if worker.history_dropped:
            found.append(f"worker {worker.worker_id} dropped {worker.history_dropped} history record(s)")
    for trouble in report.troubles:
        found.append(f"hook {trouble.hook_id}: {_state_words(trouble)}")
    dead = sum(report.dead_last_hour.values())
    if dead:
        found.append(f"{dead} dead letter(s) in the last hour")
    return found


def plain_error(failure: overview.LastFailure | None) -> str:
    """A failed attempt in plain words: what the receiver answered, or why there was no answer."""
    if failure is None:
        return "-"
    if failure.outcome == Verdict.BLOCKED:
        return f"refused by the network policy: {failure.error or 'address not allowed'}"
    if failure.status is not None:
        try:
            words = f"the receiver answered {failure.status} {HTTPStatus(failure.status).phrase}"
        except ValueError:
            words = f"the receiver answered {failure.status}"
        extra = failure.error if failure.error and failure.error != f"HTTP {failure.status}" else None
        return f"{words} ({extra})" if extra else words
    return f"no answer: {failure.error}" if failure.error else "no answer"


def _state_words(trouble: overview.Trouble) -> str:
    parts = []
    if trouble.notice == "disabled":
        parts.append(f"disabled ({trouble.notice_reason or 'by hookd'})")
    elif trouble.notice == "failing":
        parts.append("failing")
    if trouble.circuit == Circuit.OPEN:
        parts.append("circuit open")
    elif trouble.circuit == Circuit.HALF_OPEN:
        parts.append("circuit half-open (probing)")
    return ", ".join(parts)


def _since(trouble: overview.Trouble) -> datetime | None:
    moments = [m for m in (trouble.notice_since, trouble.circuit_since) if m is not None]
    return min(moments) if moments else None


# -- gathering -------------------------------------------------------------------------------------
def gather(settings: Settings, now: datetime | None = None) -> Report:
    """Read the broker and the state database; an unreachable one is recorded, not raised."""
    report = Report(now or datetime.now(UTC), settings.broker.shown_urls, "-")
    try:
        conn = connect(settings, name="hookd status", declare=False)
    except BrokerError as exc:
        report.unreachable.append(f"broker {settings.broker.shown_urls}: {exc}")
    else:
        try:
            _read_broker(conn, settings, report)
        except BrokerError as exc:
            report.unreachable.append(f"broker {settings.broker.shown_urls}: {exc}")
        finally:
            conn.close()  # every dead letter read goes back in place
    _read_state(settings, report)
    return report


def _read_broker(conn: BrokerConnection, settings: Settings, report: Report) -> None:
    topology = conn.topology
    configured = {topology.retry_queue(d) for d in settings.delivery.retry_delays_s}
    roles = [(topology.events, "events"), (topology.deliveries, "deliveries")]
    retries = sorted(configured | {topology.retry_queue(d) for d in DELAY_BUCKETS_S}, key=_delay_order)
    roles += [(name, "retry") for name in retries]
    roles += [(topology.dead, "dead"), (topology.invalid, "invalid")]
    if topology.partitions:  # ordered delivery: events wait in their entity's partition
        roles += [(name, "partition") for name in topology.partition_queues()]
        roles.append((topology.workers, "workers"))
    for name, role in roles:
        state = conn.queue_state(name)
        if state is None and role == "retry" and name not in configured:
            continue  # a delay bucket hookd declares only when a Retry-After asks for it
        report.queues.append(Queue(name, role, *(state or (None, None))))
    if next(q.messages for q in report.queues if q.role == "dead") is None:
        return  # no dead-letter queue to read (no worker declared it yet): a get would close the channel
    cutoff = report.checked_at - _HOUR
    reasons: Counter[str] = Counter()
    while report.dead_scanned < DEAD_SCAN_LIMIT and (msg := conn.get(topology.dead)) is not None:
        report.dead_scanned += 1
        letter = read_dead_letter(msg.delivery_tag, msg.headers, msg.message_id, b"")
        at = letter.dead_lettered_at or _broker_death_time(msg.headers)
        if at is not None and at >= cutoff:
            reasons[letter.reason or _text(msg.headers.get("x-first-death-reason")) or "unknown"] += 1
    report.dead_last_hour = dict(reasons.most_common())
    depth = next((q.messages for q in report.queues if q.role == "dead"), None) or 0
    if depth > report.dead_scanned:
        report.notes.append(f"counted the dead letters of the last hour among the first {report.dead_scanned} only")


def _read_state(settings: Settings, report: Report) -> None:
    url = settings.state.url
    if sqlite_file_missing(url):
        report.state = url
        report.notes.append("no state database yet: no worker has run with this config")
        return
    with Database.from_url(url) as db:
        report.state = db.describe()
        try:
            version = db.version()
            if version >= 7:  # the heartbeat table's migration
                report.workers = heartbeats.workers(db)
            else:
                report.notes.append(f"the state database is at schema version {version} (no worker heartbeats)")
            if version >= 1:
                report.troubles = overview.troubles(db) if version >= 5 else []
                report.oldest_waiting = overview.oldest_waiting(db)
            if version < LATEST_VERSION:
                report.notes.append(f"`hookd run` or `hookd db upgrade` brings it to version {LATEST_VERSION}")
        except StoreError as exc:
            detail = str(exc).removeprefix(f"{db.describe()}: ")  # the database's own errors name it first
            report.unreachable.append(f"state database {db.describe()}: {detail}")


def _broker_death_time(headers: Any) -> datetime | None:
    """When the broker itself dead-lettered a message (its `x-death` record), if it did."""
    deaths = headers.get("x-death") if hasattr(headers, "get") else None
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        moment = deaths[0].get("time")
        if isinstance(moment, datetime):
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value else None


def _delay_order(name: str) -> tuple[float, str]:
    label = name.rsplit(".", 1)[-1]
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if label.endswith(unit) and label[: -len(unit)].replace(".", "", 1).isdigit():
            return float(label[: -len(unit)]) * units[unit], name
    return float("inf"), name


# -- rendering -------------------------------------------------------------------------------------
def _ago(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def consuming(report: Report) -> list[dict[str, Any]]:
    """Per consumed queue: the broker's consumer count and the live workers on it, per broker node."""
    rows = []
    for queue in report.queues:
        if queue.role not in ("events", "deliveries"):
            continue
        nodes = Counter(w.node for w in report.live_workers() if w.node and queue.name in w.queues)
        rows.append({"queue": queue.name, "consumers": queue.consumers, "workers_by_node": dict(sorted(nodes.items()))})
    return rows


def render(report: Report, found: list[str]) -> str:
    """The one screen: verdict and problems, consumers, queues, dead letters, hooks, workers."""
    now = report.checked_at
    verdict = "UNREACHABLE" if report.unreachable else ("DEGRADED" if found else "HEALTHY")
    lines = [f"hookd status: {verdict}  ({human_time(now)}; broker {report.broker}; state {report.state})"]
    lines += [f"  ! {line}" for line in report.unreachable + found]
    lines += [f"  ({note})" for note in report.notes]
    lines += ["", "Consuming"]
    rows = [
        [r["queue"], r["consumers"], ", ".join(f"{n} x{c}" for n, c in r["workers_by_node"].items()) or "-"]
        for r in consuming(report)
    ]
    lines.append(_indent(table(["queue", "consumers", "workers by broker node (heartbeats)"], rows)))
    lines += ["", "Queues"]
    rows = [[q.name, "missing" if q.messages is None else q.messages, q.consumers] for q in report.queues]
    lines.append(_indent(table(["queue", "messages", "consumers"], rows)))
    dead = sum(report.dead_last_hour.values())
    by_reason = ", ".join(f"{reason} {count}" for reason, count in report.dead_last_hour.items())
    lines += ["", f"Dead letters in the last hour: {dead}" + (f" ({by_reason})" if by_reason else "")]
    lines += ["", "Hooks in trouble" + ("" if report.troubles else ": none")]
    if report.troubles:
        rows = [
            [t.hook_id, _state_words(t), human_time(_since(t)), plain_error(t.last_failure)] for t in report.troubles
        ]
        lines.append(_indent(table(["hook", "state", "since", "last error"], rows)))
    waiting = report.oldest_waiting
    lines.append("")
    if waiting is None:
        lines.append("Oldest waiting delivery: none")
    else:
        lines.append(
            f"Oldest waiting delivery: {waiting.delivery_id} (hook {waiting.hook_id}, {waiting.event}, "
            f"{waiting.attempts} attempt(s)), waiting since {human_time(waiting.since)} ({_ago(now, waiting.since)})"
        )
    lines += ["", "Workers" + ("" if report.workers else ": none recorded")]
    if report.workers:
        rows = [
            [w.worker_id, w.node or "-", _worker_state(w, now), human_time(w.started_at), w.history_dropped]
            for w in report.workers
        ]
        lines.append(_indent(table(["worker", "broker node", "state", "started", "history drops"], rows)))
    return "\n".join(lines)


def _worker_state(worker: heartbeats.Worker, now: datetime) -> str:
    if worker.stopped_at is not None:
        return f"stopped {_ago(now, worker.stopped_at)}"
    if worker.lost(now):
        return f"LOST, last seen {_ago(now, worker.last_seen)}"
    return f"consuming, seen {_ago(now, worker.last_seen)}" if worker.node else "not connected"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def as_json(report: Report, found: list[str]) -> dict[str, Any]:
    """The same, for scripts (`--json`); times in ISO 8601 UTC."""
    status = "unreachable" if report.unreachable else ("degraded" if found else "healthy")
    return {
        "status": status,
        "checked_at": iso_time(report.checked_at),
        "problems": found,
        "unreachable": report.unreachable,
        "notes": report.notes,
        "broker": report.broker,
        "state": report.state,
        "consuming": consuming(report),
        "queues": [asdict(q) for q in report.queues],
        "dead_letters_last_hour": {"total": sum(report.dead_last_hour.values()), "by_reason": report.dead_last_hour},
        "hooks": [
            {
                "hook_id": t.hook_id,
                "state": _state_words(t),
                "circuit": t.circuit,
                "notice": t.notice,
                "reason": t.notice_reason,
                "since": iso_time(_since(t)),
                "last_error": plain_error(t.last_failure),
                "last_failure_at": iso_time(t.last_failure.at if t.last_failure else None),
            }
            for t in report.troubles
        ],
        "oldest_waiting": None
        if report.oldest_waiting is None
        else {**asdict(report.oldest_waiting), "since": iso_time(report.oldest_waiting.since)},
        "history_dropped": sum(w.history_dropped for w in report.live_workers()),
        "workers": [
            {
                **{k: v for k, v in asdict(w).items() if k not in ("started_at", "last_seen", "stopped_at")},
                "queues": list(w.queues),
                "started_at": iso_time(w.started_at),
                "last_seen": iso_time(w.last_seen),
                "stopped_at": iso_time(w.stopped_at),
                "state": "stopped" if w.stopped_at else ("lost" if w.lost(report.checked_at) else "live"),
            }
            for w in report.workers or ()
        ],
    }


# -- the command -----------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    report = gather(settings_from(args))
    found = problems(report)
    if args.json:
        print_json(as_json(report, found))
    else:
        print(render(report, found))
    if report.unreachable:
        return EXIT_UNREACHABLE
    return EXIT_DEGRADED if found else EXIT_OK


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "status",
        help_text="one screen: workers, queues, dead letters, hooks in trouble (exit 0 healthy, 1 degraded)",
        epilog=_EPILOG,
        handler=_status,
    )
    p.add_argument("--config", required=True, type=Path, metavar="PATH", help="path to hookd.yaml")
    p.add_argument("--json", action="store_true", help="print JSON instead of the screen (for scripts)")
