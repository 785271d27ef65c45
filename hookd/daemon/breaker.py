"""Per-hook circuit breakers: stop calling a receiver that keeps failing, probe it after a cool-down.

A run of `threshold` consecutive failed attempts opens a hook's circuit; while open its deliveries are
parked on the durable retry path instead of hammering the receiver. After `cooldown_s` one delivery
is let through as a probe (half-open): success closes the circuit, failure opens it again. Failure
that has been unbroken for `disable_after_s` asks the caller to disable the hook. Shared by two
threads, so every method takes `_lock`: the engine's event loop records attempts, the main thread
asks before dispatching and forgets a disabled hook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hookd.outcomes import Circuit


@dataclass(frozen=True, slots=True)
class Decision:
    """May a delivery to this hook go ahead now? If not, how long to park it."""

    allow: bool
    probe: bool = False
    wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Change:
    """A state change worth logging and recording, and whether the hook should now be disabled."""

    state: Circuit
    failures: int
    opened_at: float | None
    failing_since: float | None
    disable: bool = False


@dataclass(slots=True)
class _HookCircuit:
    state: Circuit = Circuit.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    failing_since: float | None = None  # wall clock of the first failure of the current run


class Breakers:
    """Circuit state for every hook that has failed recently."""

    def __init__(
        self,
        *,
        threshold: int,
        cooldown_s: float,
        disable_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._disable_after_s = disable_after_s
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._circuits: dict[str, _HookCircuit] = {}

    def state(self, hook_id: str) -> Circuit:
        with self._lock:
            circuit = self._circuits.get(hook_id)
            return circuit.state if circuit else Circuit.CLOSED

    def is_open(self, hook_id: str) -> bool:
        return self.state(hook_id) is Circuit.OPEN

    def allow(self, hook_id: str) -> tuple[Decision, Change | None]:
        """Ask before dispatching a delivery. An open circuit whose cool-down is over lets one probe through."""
        with self._lock:
            circuit = self._circuits.get(hook_id)
            if circuit is None or circuit.state is Circuit.CLOSED:
                return Decision(True), None
            remaining = circuit.opened_at + self._cooldown_s - self._clock()
            if circuit.state is Circuit.OPEN and remaining <= 0:
                circuit.state = Circuit.HALF_OPEN
                return Decision(True, probe=True), self._change(circuit)
            return Decision(
                False, wait_s=max(remaining, 1.0) if circuit.state is Circuit.OPEN else self._cooldown_s
            ), None

    def record(self, hook_id: str, ok: bool) -> Change | None:
        """Record one attempt's outcome; return the change it caused, if any."""
        if self._threshold <= 0:
            return None
        with self._lock:
            circuit = self._circuits.get(hook_id)
            if ok:
                if circuit is None:
                    return None
                del self._circuits[hook_id]
                was = circuit.state
                return Change(Circuit.CLOSED, 0, None, None) if was is not Circuit.CLOSED else None
            if circuit is None:
                circuit = self._circuits[hook_id] = _HookCircuit()
            circuit.failures += 1
            if circuit.failing_since is None:
                circuit.failing_since = self._wall()
            disable = self._disable_after_s > 0 and self._wall() - circuit.failing_since >= self._disable_after_s
            reopen = circuit.state is Circuit.HALF_OPEN
            if reopen or (circuit.state is Circuit.CLOSED and circuit.failures >= self._threshold):
                circuit.state, circuit.opened_at = Circuit.OPEN, self._clock()
                return self._change(circuit, disable)
            return self._change(circuit, disable) if disable else None

    def failures(self, hook_id: str) -> int:
        """The hook's failed attempts in a row (0 once one succeeded)."""
        with self._lock:
            circuit = self._circuits.get(hook_id)
            return circuit.failures if circuit else 0

    def forget(self, hook_id: str) -> None:
        with self._lock:
            self._circuits.pop(hook_id, None)

    def _change(self, circuit: _HookCircuit, disable: bool = False) -> Change:
        opened = self._wall() - (self._clock() - circuit.opened_at) if circuit.state is not Circuit.CLOSED else None
        return Change(circuit.state, circuit.failures, opened, circuit.failing_since, disable)
