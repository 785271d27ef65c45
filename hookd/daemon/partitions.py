"""Which ordering partitions this worker consumes: claimed, spread fairly, moved on when workers come
and go, with RabbitMQ's own mechanisms only (no coordinator or election of hookd's own).

- **Owning** partition `n` means holding the exclusive queue `<prefix>.partition.<n>.owner` (a lock
  RabbitMQ releases with the connection, however it ends: a crash, a lost node) and consuming
  `<prefix>.partition.<n>`, a single-active-consumer queue, so even a mistaken second consumer
  would receive nothing.
- **How many**: every worker consumes `<prefix>.workers` (never published to), so its consumer count
  is the number N of workers; each aims at ceil(P / N) of the P partitions.
- **Claiming**: below its share, a worker tries the locks of the partitions it does not own, in an
  order of its own (so that workers starting together spread). Above it, it releases its newest
  claims (`PartitionOwner.stop`: drained first, so the next owner starts after everything it
  started). And so that no partition is left unowned when the count is off for a while (a node that
  is down, not yet noticed), a partition seen without a consumer twice in a row is claimed by a
  worker whatever its share.

Main thread only: it calls the broker connection, which that thread owns.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Protocol

from hookd import logs
from hookd.broker import Connection, Incoming, Topology

log = logs.get_logger("hookd.worker")
_BALANCE_S = 1.0  # how often the share is checked while it is not met
_STEADY_S = 2.0  # and once it is (a passive declare on the main thread each time: 10 % of it at 1 s)
_SWEEP_PAUSE_S = 5.0  # after a sweep that found every lock taken: wait before trying again
_PROBE_S = 5.0  # how often a worker at its share looks for a partition nobody consumes


class PartitionOwner(Protocol):
    """What consumes a partition's messages once it is owned (`Consumer`)."""

    def start_partition(self, index: int) -> None:
        """Begin: take over the partition's chains from the database, then consume it."""
        ...

    def stop_partition(self, index: int) -> bool:
        """Release it: stop consuming, finish or store what it started; True once done (called
        again every turn until then)."""
        ...


class Partitions:
    """This worker's partitions (see the module docstring)."""

    def __init__(
        self,
        topology: Topology,
        owner: PartitionOwner,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._topology = topology
        self._owner = owner
        self._clock = clock
        self._order = list(range(topology.partitions))
        (rng or random.Random()).shuffle(self._order)  # noqa: S311 (spreading, not cryptography)
        self._conn: Connection | None = None
        self._owned: list[int] = []  # in the order claimed
        self._releasing: set[int] = set()
        self._next_balance = 0.0
        self._next_sweep = 0.0
        self._next_probe = 0.0
        self._seen_free: set[int] = set()
        self.workers = 0  # the last count of running workers (for the log and /metrics)

    @property
    def owned(self) -> list[int]:
        return list(self._owned)

    def attach(self, conn: Connection | None) -> None:
        """A new connection (or none): nothing owned any more (the locks went with the old one); join
        the workers' count."""
        self._conn = conn
        self._owned.clear()
        self._releasing.clear()
        self._seen_free.clear()
        self._next_balance = self._next_sweep = self._next_probe = 0.0
        if conn is not None and self._topology.partitions:
            conn.consume_queue(self._topology.workers, 1, _never_called)

    def tick(self) -> None:
        """Every turn of the main loop: finish releases, and about once a second check the share."""
        conn = self._conn
        if conn is None or not self._topology.partitions:
            return
        for index in list(self._releasing):
            if self._owner.stop_partition(index):
                conn.unlock(self._topology.partition_owner(index))
                self._releasing.discard(index)
                log.info("partition.released", partition=index)
        now = self._clock()
        if now < self._next_balance:
            return
        self._next_balance = now + _BALANCE_S
        self.workers = max(conn.consumer_count(self._topology.workers), 1)
        share = math.ceil(self._topology.partitions / self.workers)
        if len(self._owned) == share and not self._releasing:
            self._next_balance = now + _STEADY_S
        if len(self._owned) > share:
            for index in self._owned[share:]:
                self._release(index)
        elif len(self._owned) < share and now >= self._next_sweep:
            if not self._claim(share - len(self._owned)):
                self._next_sweep = now + _SWEEP_PAUSE_S
        elif now >= self._next_probe:
            self._next_probe = now + _PROBE_S
            self._probe()

    def _claim(self, wanted: int) -> bool:
        """Try the locks of partitions not owned here, in this worker's order; True if any was free."""
        conn = self._conn
        assert conn is not None
        claimed = 0
        for index in self._order:
            if claimed >= wanted:
                break
            if index in self._owned or index in self._releasing:
                continue
            if conn.try_lock(self._topology.partition_owner(index)):
                self._take(index)
                claimed += 1
        return claimed > 0

    def _probe(self) -> None:
        """At its share, claim a partition that had no consumer at two probes in a row: its owner is
        gone and the others have not noticed (their worker count is off)."""
        conn = self._conn
        assert conn is not None
        free = {
            index
            for index in self._order
            if index not in self._owned
            and index not in self._releasing
            and conn.consumer_count(self._topology.partition(index)) == 0
        }
        for index in sorted(free & self._seen_free, key=self._order.index):
            if conn.try_lock(self._topology.partition_owner(index)):
                self._take(index)
                break
        self._seen_free = free

    def _take(self, index: int) -> None:
        self._owned.append(index)
        log.info("partition.claimed", partition=index, workers=self.workers, owned=len(self._owned))
        self._owner.start_partition(index)

    def _release(self, index: int) -> None:
        self._owned.remove(index)
        self._releasing.add(index)
        log.info("partition.releasing", partition=index, workers=self.workers, owned=len(self._owned))


def _never_called(_message: Incoming) -> None:
    """`<prefix>.workers` is never published to: being its consumer is the point."""
