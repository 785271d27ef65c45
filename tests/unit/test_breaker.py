"""daemon.breaker: a hook's circuit opens after a run of failures, probes after the cool-down, and
asks to disable the hook after failing without a break for long enough."""

from __future__ import annotations

import pytest

from hookd.daemon.breaker import Breakers
from hookd.outcomes import Circuit


class Clock:
    """Monotonic and wall clocks the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _breakers(clock: Clock, *, threshold: int = 3, cooldown_s: float = 30.0, disable_after_s: float = 0.0) -> Breakers:
    return Breakers(
        threshold=threshold, cooldown_s=cooldown_s, disable_after_s=disable_after_s, clock=clock, wall=clock
    )


def test_a_hook_without_failures_is_let_through(clock: Clock) -> None:
    """An unknown or healthy hook's circuit is closed: every delivery may go ahead."""
    breakers = _breakers(clock)
    decision, change = breakers.allow("h")
    assert decision.allow and change is None
    assert breakers.state("h") is Circuit.CLOSED


def test_the_circuit_opens_at_the_threshold_and_not_before(clock: Clock) -> None:
    """`threshold` consecutive failures open the circuit; the change says how many failed and when."""
    breakers = _breakers(clock, threshold=3)
    assert breakers.record("h", ok=False) is None
    assert breakers.record("h", ok=False) is None
    change = breakers.record("h", ok=False)
    assert change is not None and change.state is Circuit.OPEN and change.failures == 3
    assert change.opened_at == clock.now and change.failing_since == clock.now
    assert breakers.is_open("h")


def test_a_success_resets_the_run_of_failures(clock: Clock) -> None:
    """Failures must be consecutive: one success in between starts the count again."""
    breakers = _breakers(clock, threshold=3)
    breakers.record("h", ok=False)
    breakers.record("h", ok=False)
    assert breakers.record("h", ok=True) is None  # it was never open: nothing to report
    breakers.record("h", ok=False)
    assert breakers.record("h", ok=False) is None
    assert not breakers.is_open("h")


def test_an_open_circuit_parks_until_the_cooldown_then_lets_one_probe(clock: Clock) -> None:
    """While open, deliveries wait out the cool-down; after it one probe goes through (half-open)
    and the next delivery waits for the probe's outcome."""
    breakers = _breakers(clock, threshold=1, cooldown_s=30)
    breakers.record("h", ok=False)
    clock.advance(10)
    decision, _ = breakers.allow("h")
    assert not decision.allow and decision.wait_s == pytest.approx(20)
    clock.advance(20)
    decision, change = breakers.allow("h")
    assert decision.allow and decision.probe
    assert change is not None and change.state is Circuit.HALF_OPEN
    decision, _ = breakers.allow("h")
    assert not decision.allow and decision.wait_s == 30


def test_a_successful_probe_closes_and_a_failed_one_reopens(clock: Clock) -> None:
    """The probe's outcome decides: success closes the circuit, failure opens it for another cool-down."""
    breakers = _breakers(clock, threshold=1, cooldown_s=5)
    breakers.record("a", ok=False)
    breakers.record("b", ok=False)
    clock.advance(5)
    breakers.allow("a")
    breakers.allow("b")
    closed = breakers.record("a", ok=True)
    assert closed is not None and closed.state is Circuit.CLOSED and closed.failures == 0
    reopened = breakers.record("b", ok=False)
    assert reopened is not None and reopened.state is Circuit.OPEN and reopened.opened_at == clock.now
    assert breakers.state("a") is Circuit.CLOSED and breakers.is_open("b")


def test_failing_without_a_break_for_disable_after_asks_to_disable(clock: Clock) -> None:
    """Unbroken failure for `disable_after_s` (wall clock, from the first failure) sets `disable`."""
    breakers = _breakers(clock, threshold=100, disable_after_s=3600)
    assert breakers.record("h", ok=False) is None
    clock.advance(3599)
    assert breakers.record("h", ok=False) is None
    clock.advance(1)
    change = breakers.record("h", ok=False)
    assert change is not None and change.disable and change.failing_since == 1000.0


def test_threshold_zero_means_no_breaker(clock: Clock) -> None:
    """With `breaker_threshold: 0` nothing is recorded and nothing ever opens."""
    breakers = _breakers(clock, threshold=0)
    for _ in range(50):
        assert breakers.record("h", ok=False) is None
    assert breakers.allow("h")[0].allow


def test_forget_closes_a_hook_s_circuit(clock: Clock) -> None:
    """A disabled hook's circuit is forgotten: re-enabled later, it starts closed."""
    breakers = _breakers(clock, threshold=1)
    breakers.record("h", ok=False)
    breakers.forget("h")
    assert breakers.state("h") is Circuit.CLOSED
