"""The batch handoff behind the log and history writers: order kept, never blocking, drops counted,
an idle consumer woken by the next item, a closed one drained."""

from __future__ import annotations

import threading
import time

import pytest

from hookd.handoff import Handoff


def test_batches_keep_the_order_given_and_stop_at_the_batch_size() -> None:
    """Items come out in the order they went in, `batch` at a time."""
    handoff: Handoff[int] = Handoff(limit=100, batch=4, linger_s=0)
    for n in range(10):
        assert handoff.put(n)
    assert [handoff.take(), handoff.take(), handoff.take()] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_past_the_limit_items_are_refused_at_once_and_counted() -> None:
    """A full handoff refuses without waiting, and counts what it refused."""
    handoff: Handoff[int] = Handoff(limit=3, batch=10, linger_s=0)
    results = [handoff.put(n) for n in range(5)]
    assert results == [True, True, True, False, False]
    assert handoff.dropped == 2
    assert handoff.take() == [0, 1, 2]
    assert handoff.put(9) and handoff.take() == [9]


def test_an_idle_consumer_returns_an_empty_batch_after_idle_s() -> None:
    """With nothing handed over, `take(idle_s)` gives up with an empty batch."""
    handoff: Handoff[int] = Handoff(limit=10, batch=10, linger_s=0)
    assert handoff.take(idle_s=0.01) == []


def test_an_idle_consumer_is_woken_by_the_next_item() -> None:
    """A consumer waiting without a deadline gets the item another thread hands over."""
    handoff: Handoff[str] = Handoff(limit=10, batch=10, linger_s=0.001)
    got: list[list[str]] = []
    consumer = threading.Thread(target=lambda: got.append(handoff.take()), daemon=True)
    consumer.start()
    deadline = time.monotonic() + 10
    while not handoff._idle and time.monotonic() < deadline:  # the consumer is waiting
        time.sleep(0.001)
    assert handoff._idle, "the consumer never started waiting"
    handoff.put("wake")
    consumer.join(10)
    assert got == [["wake"]]


def test_a_full_batch_ends_the_linger_early() -> None:
    """Lingering for more stops as soon as a batch is full (a 60 s linger would otherwise hold it)."""
    handoff: Handoff[int] = Handoff(limit=100, batch=3, linger_s=60)
    handoff.put(1)
    got: list[list[int]] = []
    consumer = threading.Thread(target=lambda: got.append(handoff.take()), daemon=True)
    consumer.start()
    handoff.put(2)
    handoff.put(3)
    consumer.join(10)
    assert got == [[1, 2, 3]]


def test_close_drains_what_is_left_then_gives_empty_batches() -> None:
    """After `close`, `take` returns at once: what was left, then nothing."""
    handoff: Handoff[int] = Handoff(limit=100, batch=100, linger_s=60)
    handoff.put(1)
    handoff.close()
    assert handoff.closed
    assert handoff.take() == [1]
    assert handoff.take() == []


def test_nonsense_sizes_are_refused() -> None:
    """A limit or batch below one, or a negative linger, is a programming error said at once."""
    with pytest.raises(ValueError):
        Handoff(limit=0, batch=1, linger_s=0)
    with pytest.raises(ValueError):
        Handoff(limit=1, batch=1, linger_s=-1)
