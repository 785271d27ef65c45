"""The bench's pure parts: the out-of-order count, the profile summary, targets, rows and hookd's defaults."""

from __future__ import annotations

from pathlib import Path

from bench.brokers import BenchBroker
from bench.hookd_setup import write_run
from bench.load import BenchHook, event_body
from bench.measure import Outcome
from bench.ordering import out_of_order
from bench.profile import parse
from bench.scenarios import Sizes, catalogue
from bench.targets import Relative, verdict
from hookd.config import DeliverySettings, LoggingSettings, Settings, StateSettings


def _outcome(name: str, per_s: float, processes: int = 1) -> Outcome:
    return Outcome(name, "x", processes, 10, 10, 1.0, per_s, True)


def test_out_of_order_counts_a_job_whose_later_event_came_first() -> None:
    """A job whose job.started was handled before its job.submitted at a hook counts; one in order does not."""
    arrivals = [("h0", "1", 3), ("h0", "1", 4), ("h0", "1", 5), ("h0", "2", 7), ("h0", "2", 6), ("h0", "2", 8)]
    count = out_of_order(arrivals)
    assert (count.jobs, count.jobs_out_of_order, count.sequences_out_of_order) == (2, 1, 1)


def test_out_of_order_counts_a_job_once_across_hooks() -> None:
    """A job out of order at two hooks is one job out of order, two sequences."""
    arrivals = [("h0", "1", 1), ("h0", "1", 0), ("h1", "1", 2), ("h1", "1", 0), ("h2", "1", 0), ("h2", "1", 1)]
    count = out_of_order(arrivals)
    assert (count.jobs_out_of_order, count.sequences, count.sequences_out_of_order) == (1, 3, 2)


def test_receiver_reads_seq_and_entity_from_the_body_head() -> None:
    """The body starts with the publish time, the sequence number and the entity, in that order."""
    head = event_body(42, 7, published_at=1.5)[:40]
    assert head.startswith(b'{"t":1.5,"seq":42,"id":7,')


def test_profile_self_time_goes_to_the_leaf_per_thread_and_imports_apart() -> None:
    """py-spy's collapsed lines: self time to the leaf function per named thread; import stacks apart."""
    collapsed = (
        "thread (11): MainThread;<module> (hookd/__main__.py:1);poll (hookd/broker/connection.py:185) 6\n"
        "thread (12): delivery-engine;Thread.run (threading.py:982);exchange (hookd/delivery/http.py:90) 3\n"
        "thread (12): delivery-engine;Thread.run (threading.py:982);exchange (hookd/delivery/http.py:95) 1\n"
        "thread (11): MainThread;<module> (x.py:1);_find_and_load (<frozen importlib._bootstrap>:1176) 5\n"
    )
    prof = parse(collapsed)
    assert prof.samples == 15
    assert prof.startup == 5
    assert prof.threads == {"MainThread": 6, "delivery-engine": 4}
    assert prof.self_time[("exchange (hookd/delivery/http.py)", "delivery-engine")] == 4


def test_relative_target_passes_misses_and_says_na() -> None:
    """A ratio target passes at or over its bound, misses under it, and is n/a without its reference row."""
    target = Relative("peer-node", 1.0)
    rows = {"peer-node": _outcome("peer-node", 1000)}
    over, under = target.judge(_outcome("fast-1p", 1100), rows), target.judge(_outcome("fast-1p", 900), rows)
    missing = target.judge(_outcome("fast-1p", 900), {})
    assert (over.ok, under.ok, missing.ok) == (True, False, None)
    assert verdict([over], reference=False) == "PASS"
    assert verdict([under, over], reference=False) == "MISS"
    assert verdict([missing], reference=False) == "info"


def test_every_row_is_unique_and_every_target_names_a_row() -> None:
    """Row names are unique, and every ratio target refers to a row of the catalogue."""
    rows = catalogue(Sizes(), compare_rev="HEAD~1", profile=True)
    names = [row.name for row in rows]
    assert len(names) == len(set(names))
    referenced = {t.row for row in rows for t in row.targets if isinstance(t, Relative)}
    assert referenced <= set(names)


def test_hookd_runs_on_its_own_defaults(tmp_path: Path) -> None:
    """The config the bench writes leaves every delivery, state and log-level default to hookd."""
    broker = BenchBroker("local", ("amqp://guest:guest@127.0.0.1:5672/%2F",), lambda: 0.0)
    hooks = [BenchHook("h0", "http://127.0.0.1:9/fast/h0", "s")]
    files = write_run(tmp_path, hooks, 1, broker)
    assert files.settings.delivery == DeliverySettings(allow_private_networks=True)
    assert files.settings.state.history == StateSettings().history
    assert files.settings.logging.level == LoggingSettings().level
    assert files.settings.prefetch == Settings().prefetch
