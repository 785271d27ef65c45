"""Items handed from any thread to one consuming thread in batches, never blocking the giver.

The log writer and the history writer each take one item per delivery attempt from the event loop
(and a few from the main thread). A `queue.Queue` woke the consumer for every item (a condition
variable notified under a lock, then a GIL hand-over to a thread that wrote one item): measured,
about 10 us of the delivery path per attempt. Here a giver only appends to a deque; the consumer
sleeps while there is nothing, is woken by the first item after that (only then), and lingers a
moment so that what follows joins the same batch. A full batch wakes it early, a full handoff drops
(and counts) what it cannot take.

Ownership: `put` from any thread; `take` from the one consuming thread; `close` from any thread.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """A bounded batch handoff to one consumer thread (see the module docstring)."""

    def __init__(self, *, limit: int, batch: int, linger_s: float) -> None:
        if limit < 1 or batch < 1 or linger_s < 0:
            raise ValueError("limit and batch must be positive, linger_s not negative")
        self.limit = limit
        self._batch = batch
        self._linger_s = linger_s
        self._items: deque[T] = deque()  # append and popleft are atomic: the givers' and the consumer's
        self._wake = threading.Event()
        self._idle = False  # the consumer waits for a first item: the next `put` wakes it
        self._closed = False
        self._lock = threading.Lock()  # guards `_dropped` (counted by any giver)
        self._dropped = 0

    def put(self, item: T) -> bool:
        """Hand `item` over; False (and counted) when `limit` items already wait. Never blocks."""
        items = self._items
        if len(items) >= self.limit:
            with self._lock:
                self._dropped += 1
            return False
        items.append(item)
        # Read after the append: a consumer that went idle before it sees the item when it re-checks,
        # one that goes idle after it is woken here.
        if self._idle or len(items) == self._batch:
            self._wake.set()
        return True

    @property
    def dropped(self) -> int:
        """Items refused so far because the consumer could not keep up."""
        with self._lock:
            return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """No more waiting: `take` returns what is left at once, then empty batches."""
        self._closed = True
        self._wake.set()

    def take(self, idle_s: float | None = None) -> list[T]:
        """The next batch (at most `batch` items, in the order given), consumer thread only.

        Waits while nothing is there (at most `idle_s`, then returns an empty batch), then lingers up to
        `linger_s` for more unless the batch is already full or the handoff closed.
        """
        items = self._items
        if not items and not self._closed:
            self._idle = True
            if not items and not self._closed:  # re-checked once idle: a `put` in between saw `_idle`
                self._wake.wait(idle_s)
            self._idle = False
            self._wake.clear()
        if items and len(items) < self._batch and not self._closed and self._linger_s > 0:
            self._wake.wait(self._linger_s)  # a full batch or `close` ends it early
            self._wake.clear()
        batch: list[T] = []
        while items and len(batch) < self._batch:
            batch.append(items.popleft())
        return batch
