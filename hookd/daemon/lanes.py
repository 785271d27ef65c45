"""Per-hook lanes: a cap on concurrent deliveries per hook, with a backlog behind it.

One slow receiver can then hold at most `cap` of the delivery slots; what queues behind it waits in
its own backlog. The caller parks work on the durable retry path, so that one hook's work never
holds the broker's prefetch window for long: all of a hook's backlog once it has had no answer for
the stuck time (`take_stale`), and the part beyond `backlog` items once the hook is too slow to work
through it soon (`take_overflow`): it has been silent for a while, or, while the prefetch window is
full, it answers several times slower than hookd's attempts typically do and its backlog needs more
than the budget. Relative, because a busy process slows every attempt alike: then parking would only
add work (a publish and a redelivery per item, most of a fast burst's CPU once). A burst to a fast
hook is kept and delivered; a burst to a slow or silent one is parked. Main thread only.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class Admission(enum.Enum):
    RUN = "run"
    QUEUE = "queue"
    STUCK = "stuck"  # the hook has had no answer for the stuck time: do not even queue behind it


_EWMA_WEIGHT = 0.2  # of the newest answered attempt in the lane's mean duration
_TYPICAL_WEIGHT = 0.01  # of the newest answered attempt in every lane's, the typical duration
#: A lane answering this many times slower than typical is slow (when its backlog is long, too).
SLOWER = 4.0


@dataclass(slots=True)
class _Lane(Generic[T]):
    progress: float  # last time a delivery of this hook got an answer (when the lane opened, before one)
    running: int = 0
    backlog: deque[T] = field(default_factory=deque)
    mean_s: float | None = None  # moving mean duration of its answered attempts (None: no answer yet)


@dataclass(frozen=True, slots=True)
class Overflow(Generic[T]):
    """Backlog beyond the limit, taken for parking: from a hook silent for a while (`quiet`), or from
    one answering too slowly to work through it soon (`slow`, with how long the kept part needs)."""

    quiet: list[T]
    slow: list[T]
    slow_drain_s: float


class Lanes(Generic[T]):
    """Every hook's lane (`clock`: seconds, monotonic; a test passes its own)."""

    def __init__(self, cap: int, backlog: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cap = cap
        self._backlog_max = backlog
        self._lanes: dict[str, _Lane[T]] = {}
        self._typical_s: float | None = None  # moving mean duration of every answered attempt

    def admit(self, hook_id: str, item: T, stuck_after_s: float | None = None, *, cap: int | None = None) -> Admission:
        """RUN reserves a slot (the caller starts `item`); QUEUE keeps it in the backlog (beyond the
        limit too, until `take_overflow` decides); STUCK leaves it to the caller: every slot is taken
        and none got an answer for `stuck_after_s`. `cap`: this hook's own, lower, concurrency."""
        lane = self._lanes.get(hook_id)
        if lane is None:
            lane = self._lanes[hook_id] = _Lane(self._clock())
        if lane.running < (self._cap if cap is None else min(cap, self._cap)):
            lane.running += 1
            return Admission.RUN
        if stuck_after_s is not None and self._clock() - lane.progress >= stuck_after_s:
            return Admission.STUCK
        lane.backlog.append(item)
        return Admission.QUEUE

    def release(self, hook_id: str, *, answered: bool = True, duration_s: float | None = None) -> T | None:
        """A delivery of `hook_id` finished (`answered`: not a timeout or connection failure, taking
        `duration_s`): free its slot; return the next queued item, if any."""
        lane = self._lanes.get(hook_id)
        if lane is None:
            return None
        lane.running = max(0, lane.running - 1)
        if answered:
            lane.progress = self._clock()
            if duration_s is not None:
                old = lane.mean_s
                lane.mean_s = duration_s if old is None else old + _EWMA_WEIGHT * (duration_s - old)
                typical = self._typical_s
                self._typical_s = duration_s if typical is None else typical + _TYPICAL_WEIGHT * (duration_s - typical)
        if lane.backlog:
            return lane.backlog.popleft()
        if lane.running == 0:
            del self._lanes[hook_id]
        return None

    def take_stale(self, max_wait_s: float) -> list[T]:
        """Remove and return the backlog of every hook that has had no answer for `max_wait_s`:
        it is stuck (hanging receiver), and its work is better parked than holding the prefetch window.
        A busy but healthy hook finishes deliveries all the time, however long its backlog."""
        cutoff = self._clock() - max_wait_s
        stale: list[T] = []
        for lane in self._lanes.values():
            if lane.backlog and lane.progress < cutoff:
                stale.extend(lane.backlog)
                lane.backlog.clear()
        return stale

    def take_overflow(self, *, quiet_after_s: float, drain_budget_s: float, pressed: bool) -> Overflow[T]:
        """Remove and return the newest items beyond the backlog limit of every hook that will not work
        through its backlog soon: silent for `quiet_after_s`, or (when `pressed`: the prefetch window
        is full) `SLOWER` than typical with a backlog needing more than `drain_budget_s`. A hook with
        no answer yet that is not quiet yet keeps it."""
        now = self._clock()
        slow_s = SLOWER * self._typical_s if pressed and self._typical_s is not None else None
        quiet: list[T] = []
        slow: list[T] = []
        drain_s = 0.0
        for lane in self._lanes.values():
            excess = len(lane.backlog) - self._backlog_max
            if excess <= 0:
                continue
            if now - lane.progress >= quiet_after_s:
                quiet.extend(_pop_newest(lane.backlog, excess))
            elif (
                slow_s is not None
                and lane.mean_s is not None
                and lane.mean_s > slow_s
                and len(lane.backlog) * lane.mean_s / self._cap > drain_budget_s
            ):
                slow.extend(_pop_newest(lane.backlog, excess))
                drain_s = max(drain_s, self._backlog_max * lane.mean_s / self._cap)
        return Overflow(quiet, slow, drain_s)

    def running(self, hook_id: str) -> int:
        lane = self._lanes.get(hook_id)
        return lane.running if lane else 0

    def queued(self) -> int:
        return sum(len(lane.backlog) for lane in self._lanes.values())


def _pop_newest(backlog: deque[T], count: int) -> list[T]:
    """The `count` newest items of `backlog`, oldest first (the kept ones stay in order)."""
    taken = [backlog.pop() for _ in range(count)]
    taken.reverse()
    return taken
