"""Per-hook lanes: a cap on concurrent deliveries, a bounded backlog, and stuck hooks told apart."""

from __future__ import annotations

import pytest

from hookd.daemon.lanes import Admission, Lanes


def test_a_hook_runs_up_to_its_cap_then_queues_then_is_full() -> None:
    lanes: Lanes[str] = Lanes(cap=2, backlog=1)
    assert [lanes.admit("h", f"j{i}") for i in range(4)] == [
        Admission.RUN,
        Admission.RUN,
        Admission.QUEUE,
        Admission.FULL,
    ]
    assert lanes.running("h") == 2 and lanes.queued() == 1


def test_hooks_have_separate_lanes() -> None:
    lanes: Lanes[str] = Lanes(cap=1, backlog=0)
    assert lanes.admit("slow", "a") is Admission.RUN
    assert lanes.admit("slow", "b") is Admission.FULL
    assert lanes.admit("fast", "c") is Admission.RUN


def test_release_hands_over_the_next_queued_item_in_order() -> None:
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    lanes.admit("h", "first")
    lanes.admit("h", "second")
    lanes.admit("h", "third")
    assert lanes.release("h") == "second"
    assert lanes.release("h") == "third"
    assert lanes.release("h") is None
    assert lanes.running("h") == 0


def test_a_full_lane_without_an_answer_for_the_stuck_time_is_stuck() -> None:
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    assert lanes.admit("h", "a", stuck_after_s=0.0) is Admission.RUN
    assert lanes.admit("h", "b", stuck_after_s=0.0) is Admission.STUCK
    assert lanes.queued() == 0  # a stuck hook's work is not kept


def test_a_busy_lane_that_answers_is_not_stuck() -> None:
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    lanes.admit("h", "a")
    assert lanes.admit("h", "b", stuck_after_s=60.0) is Admission.QUEUE
    assert lanes.admit("h", "c") is Admission.QUEUE  # no stuck time given: never stuck


@pytest.mark.parametrize(("answered", "stale"), [(False, ["q"]), (True, [])])
def test_take_stale_returns_the_backlog_of_hooks_with_no_recent_answer(answered: bool, stale: list[str]) -> None:
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    lanes.admit("h", "a")
    lanes.admit("h", "b")
    lanes.admit("h", "q")
    lanes.release("h", answered=answered)  # "b" starts; "q" still waits
    lanes._lanes["h"].progress -= 10.0 if not answered else 0.0  # no answer for 10 s, or one just now
    assert lanes.take_stale(5.0) == stale
    assert lanes.queued() == (0 if stale else 1)
