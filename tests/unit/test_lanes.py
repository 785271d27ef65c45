"""Per-hook lanes: a cap on concurrent deliveries, a backlog whose overflow is parked only when the
hook will not work through it soon, and stuck hooks told apart."""

from __future__ import annotations

import pytest

from hookd.daemon.lanes import Admission, Lanes


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_hook_runs_up_to_its_cap_then_queues_past_the_limit_until_decided() -> None:
    """A hook runs up to its cap at once; what comes after queues, past the backlog limit too, until decided."""
    lanes: Lanes[str] = Lanes(cap=2, backlog=1)
    assert [lanes.admit("h", f"j{i}") for i in range(4)] == [
        Admission.RUN,
        Admission.RUN,
        Admission.QUEUE,
        Admission.QUEUE,
    ]
    assert lanes.running("h") == 2 and lanes.queued() == 2


def test_hooks_have_separate_lanes() -> None:
    """A full lane of one hook does not hold another hook's work."""
    lanes: Lanes[str] = Lanes(cap=1, backlog=0)
    assert lanes.admit("slow", "a") is Admission.RUN
    assert lanes.admit("slow", "b") is Admission.QUEUE
    assert lanes.admit("fast", "c") is Admission.RUN


def _busy(cap: int, backlog: int, queued: int, answer_s: float | None, clock: Clock | None = None) -> Lanes[str]:
    """One hook "h" with every slot taken, `queued` items waiting, and (unless None) one answer that
    took `answer_s` (which frees and refills a slot)."""
    lanes: Lanes[str] = Lanes(cap=cap, backlog=backlog, clock=clock or Clock())
    for i in range(cap + queued):
        lanes.admit("h", f"j{i}")
    if answer_s is not None:
        started = lanes.release("h", answered=True, duration_s=answer_s)
        assert started is not None
        lanes.admit("h", started)  # back into its slot, as the caller starts it
        lanes.admit("h", f"j{cap + queued}")  # and one more arrives
    return lanes


def _typical(lanes: Lanes[str], answer_s: float, count: int = 200) -> None:
    """`count` answers of `answer_s` from other hooks: what hookd's attempts typically take."""
    for n in range(count):
        lanes.admit(f"other{n}", "x")
        lanes.release(f"other{n}", answered=True, duration_s=answer_s)


def test_a_fast_hook_keeps_a_backlog_past_the_limit() -> None:
    """1,000 queued at 5 ms per answer and 8 slots: 0.6 s of work, within the 2 s budget: all kept."""
    lanes = _busy(cap=8, backlog=200, queued=1000, answer_s=0.005)
    overflow = lanes.take_overflow(quiet_after_s=1.0, drain_budget_s=2.0, pressed=True)
    assert (overflow.quiet, overflow.slow) == ([], [])
    assert lanes.queued() == 1000


def test_a_hook_no_slower_than_the_rest_keeps_its_backlog_however_long() -> None:
    """Every attempt takes 1 s (a busy process, or only slow receivers): parking would only add work."""
    lanes = _busy(cap=8, backlog=200, queued=1000, answer_s=1.0)
    _typical(lanes, 1.0)
    overflow = lanes.take_overflow(quiet_after_s=5.0, drain_budget_s=2.0, pressed=True)
    assert (overflow.quiet, overflow.slow) == ([], [])


def test_a_slow_hook_gives_up_its_newest_overflow_with_the_time_the_rest_needs() -> None:
    """At 1 s per answer where attempts typically take 10 ms, 8 slots, 1,000 queued: 125 s of work;
    with the window full the newest beyond 200 are taken, and the 200 kept need 25 s."""
    lanes = _busy(cap=8, backlog=200, queued=1000, answer_s=1.0)
    _typical(lanes, 0.01)
    assert lanes.take_overflow(quiet_after_s=5.0, drain_budget_s=2.0, pressed=False).slow == []  # room: kept
    overflow = lanes.take_overflow(quiet_after_s=5.0, drain_budget_s=2.0, pressed=True)
    assert overflow.quiet == [] and len(overflow.slow) == 800
    assert overflow.slow[0] == "j209" and overflow.slow[-1] == "j1008"  # the newest, oldest first
    assert overflow.slow_drain_s == pytest.approx(25.0)
    assert lanes.queued() == 200
    assert lanes.release("h") == "j9"  # the kept ones in their order


def test_a_hook_with_no_answer_yet_keeps_its_overflow_until_it_is_quiet() -> None:
    """With no answer yet, the overflow is kept until the hook has been quiet for `quiet_after_s`, then taken."""
    clock = Clock()
    lanes = _busy(cap=2, backlog=3, queued=10, answer_s=None, clock=clock)
    assert lanes.take_overflow(quiet_after_s=1.0, drain_budget_s=2.0, pressed=True).quiet == []
    clock.now += 1.5  # no answer for 1.5 s
    overflow = lanes.take_overflow(quiet_after_s=1.0, drain_budget_s=2.0, pressed=False)
    assert overflow.quiet == [f"j{i}" for i in range(5, 12)] and overflow.slow == []
    assert lanes.queued() == 3


def test_release_hands_over_the_next_queued_item_in_order() -> None:
    """A finished delivery hands its slot to the oldest queued item of the same hook."""
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    lanes.admit("h", "first")
    lanes.admit("h", "second")
    lanes.admit("h", "third")
    assert lanes.release("h") == "second"
    assert lanes.release("h") == "third"
    assert lanes.release("h") is None
    assert lanes.running("h") == 0


def test_a_full_lane_without_an_answer_for_the_stuck_time_is_stuck() -> None:
    """A full lane with no answer for the stuck time refuses more work (STUCK) instead of queuing it."""
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    assert lanes.admit("h", "a", stuck_after_s=0.0) is Admission.RUN
    assert lanes.admit("h", "b", stuck_after_s=0.0) is Admission.STUCK
    assert lanes.queued() == 0  # a stuck hook's work is not kept


def test_a_busy_lane_that_answers_is_not_stuck() -> None:
    """A full lane that has answered within the stuck time queues new work."""
    lanes: Lanes[str] = Lanes(cap=1, backlog=5)
    lanes.admit("h", "a")
    assert lanes.admit("h", "b", stuck_after_s=60.0) is Admission.QUEUE
    assert lanes.admit("h", "c") is Admission.QUEUE  # no stuck time given: never stuck


@pytest.mark.parametrize(("answered", "stale"), [(False, ["q"]), (True, [])])
def test_take_stale_returns_the_backlog_of_hooks_with_no_recent_answer(answered: bool, stale: list[str]) -> None:
    """take_stale hands back the backlog of a hook with no answer for the stuck time, and only that."""
    clock = Clock()
    lanes: Lanes[str] = Lanes(cap=1, backlog=5, clock=clock)
    lanes.admit("h", "a")
    lanes.admit("h", "b")
    lanes.admit("h", "q")
    clock.now += 10.0
    lanes.release("h", answered=answered)  # "b" starts; "q" still waits
    # no answer for 10 s, or one just now
    assert lanes.take_stale(5.0) == stale
    assert lanes.queued() == (0 if stale else 1)
