"""`hookd run`: the delivery daemon."""

from __future__ import annotations

import argparse
import gc
import resource
from pathlib import Path

from hookd import logs
from hookd.cli.args import Subparsers, add_command
from hookd.config import Settings, load_settings
from hookd.errors import StoreError
from hookd.filesafety import permission_problems
from hookd.state.db import Database
from hookd.state.history import HistoryWriter
from hookd.state.workers import Heartbeat
from hookd.subscriptions.factory import open_store


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "run",
        help_text="run the delivery daemon",
        epilog="example: hookd run --config /etc/hookd/hookd.yaml",
        handler=_run,
    )
    p.add_argument("--config", required=True, type=Path, help="path to hookd.yaml")


def _run(args: argparse.Namespace) -> int:
    from hookd.daemon.daemon import Daemon  # noqa: PLC0415 (only this command loads the daemon and its engine)
    from hookd.daemon.notices import Notifier  # noqa: PLC0415

    settings = load_settings(args.config)
    logs.configure(settings.logging.format, settings.logging.level, threaded=True)
    for problem in permission_problems(args.config):
        logs.get_logger("hookd.cli").warning("config.permissions", problem=problem)
    _raise_open_files_limit()
    db = _state_database(settings)
    history = HistoryWriter(db, retention_days=settings.state.retention_days) if db and settings.state.history else None
    notifier = (
        Notifier(db, exchange=settings.broker.exchange, ordered_default=settings.delivery.ordered_default)
        if db
        else None
    )
    dropped = (lambda: history.dropped) if history is not None else (lambda: 0)
    heartbeat = Heartbeat(db, dropped=dropped) if db else None
    daemon = Daemon(settings, open_store(settings), history=history, notifier=notifier, state=db, heartbeat=heartbeat)
    daemon.install_signal_handlers()
    _tune_garbage_collector()
    return daemon.run()


def _state_database(settings: Settings) -> Database | None:
    """The state database (history, and the notices' state and outbox), or None when it is unusable:
    deliveries go on regardless, without history or `hook.*` notifications, and the log says why."""
    db = Database.from_url(settings.state.url)
    try:
        db.migrate()
    except StoreError as exc:
        logs.get_logger("hookd.cli").error("state.unavailable", error=str(exc))
        return None
    return db


def _raise_open_files_limit() -> None:
    """Lift the soft limit of open files to the hard one: `delivery.max_in_flight` connections, plus
    idle keep-alive ones, go far past the usual soft default of 1,024 (systemd's too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            logs.get_logger("hookd.cli").warning("daemon.open_files_limit", soft=soft, hard=hard, error=str(exc))


#: The cyclic collector's generation-0 threshold in `hookd run` (Python's default: 700 allocations).
GC_YOUNG_THRESHOLD = 10_000


def _tune_garbage_collector() -> None:
    """Collect cycles less often, and never scan what start-up built (modules, settings, hooks).

    With a thousand messages in the prefetch window, four deliveries each, tens of thousands of
    young objects survive every collection, and Python's default (a collection every 700
    allocations, a full one every 100 of those) rescanned them over and over: measured, 0.5 s of a
    20,000-delivery backlog went to the collector, about 25 us per delivery; with these thresholds,
    40 ms. hookd's objects are freed by reference counting as deliveries settle; the collector is
    only there for the rare cycle, which it still collects.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, max(middle, 20), max(old, 20))
