"""Per-hook lanes: a cap on concurrent deliveries per hook, with a bounded backlog behind it.

One slow receiver can then hold at most `cap` of the delivery workers; what queues behind it waits
in its own backlog. Work that waits there too long (the hook is slow) or beyond `backlog` items is
parked on the durable retry path by the caller, so the broker's prefetch window is never held by one
hook's work. Used from the main thread only.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class Admission(enum.Enum):
    RUN = "run"
    QUEUE = "queue"
    FULL = "full"
    STUCK = "stuck"  # the hook has had no answer for the stuck time: do not even queue behind it


@dataclass(slots=True)
class _Lane(Generic[T]):
    running: int = 0
    backlog: deque[T] = field(default_factory=deque)
    progress: float = field(default_factory=time.monotonic)  # last time a delivery of this hook got an answer


class Lanes(Generic[T]):
    def __init__(self, cap: int, backlog: int) -> None:
        self._cap = cap
        self._backlog_max = backlog
        self._lanes: dict[str, _Lane[T]] = {}

    def admit(self, hook_id: str, item: T, stuck_after_s: float | None = None) -> Admission:
        """RUN reserves a slot (the caller starts `item`); QUEUE keeps it; FULL and STUCK leave it to the
        caller. STUCK: every slot is taken and none got an answer for `stuck_after_s`."""
        lane = self._lanes.get(hook_id)
        if lane is None:
            lane = self._lanes[hook_id] = _Lane()
        if lane.running < self._cap:
            lane.running += 1
            return Admission.RUN
        if stuck_after_s is not None and time.monotonic() - lane.progress >= stuck_after_s:
            return Admission.STUCK
        if len(lane.backlog) < self._backlog_max:
            lane.backlog.append(item)
            return Admission.QUEUE
        return Admission.FULL

    def release(self, hook_id: str, *, answered: bool = True) -> T | None:
        """A delivery of `hook_id` finished (`answered`: not a timeout or connection failure): free its
        slot; return the next queued item, if any."""
        lane = self._lanes.get(hook_id)
        if lane is None:
            return None
        lane.running = max(0, lane.running - 1)
        if answered:
            lane.progress = time.monotonic()
        if lane.backlog:
            return lane.backlog.popleft()
        if lane.running == 0:
            del self._lanes[hook_id]
        return None

    def take_stale(self, max_wait_s: float) -> list[T]:
        """Remove and return the backlog of every hook that has had no answer for `max_wait_s`:
        it is stuck (hanging receiver), and its work is better parked than holding the prefetch window.
        A busy but healthy hook finishes deliveries all the time, however long its backlog."""
        cutoff = time.monotonic() - max_wait_s
        stale: list[T] = []
        for lane in self._lanes.values():
            if lane.backlog and lane.progress < cutoff:
                stale.extend(lane.backlog)
                lane.backlog.clear()
        return stale

    def silent_for(self, hook_id: str) -> float:
        """Seconds since a delivery of this hook last got an answer (since its lane opened, if none)."""
        lane = self._lanes.get(hook_id)
        return 0.0 if lane is None else time.monotonic() - lane.progress

    def running(self, hook_id: str) -> int:
        lane = self._lanes.get(hook_id)
        return lane.running if lane else 0

    def queued(self) -> int:
        return sum(len(lane.backlog) for lane in self._lanes.values())
