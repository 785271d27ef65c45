"""Ordered delivery in the daemon: `hookd.ordering.Chains` applied to tasks, messages and the state
database (main thread only).

A partition's consumer hands every ordered task to `arrive`; the chain says whether it starts now,
waits in memory behind its head, waits in the database (written by the `WaitRoom` thread; the task's
share of its message is settled once the row is committed), or is a duplicate. Settlement tells the
sequencer when a head ended (`ended`: delivered or dead-lettered) or went to the durable path
(`away`: a retry or a park, whose message comes back through the partition), and the next one starts:
held ones at once, stored ones once read back (`Held.release` then settles their row: deleted when
they ended, marked away when they left). A partition claimed starts from its chains in the database
(`claim`); one released stores what it held (`release`).

Crash safety follows from the order of writes: a row is committed before the message it replaces is
acked, and a stored head's row is marked away only once its retry was confirmed; a crash at any point
leaves either the message or the row (or both: a delivery repeated with the same delivery id). When a
chain's successors are stored while its head runs from a message, the head gets a row too, marked away
(its message, still unacked, is its copy): after a crash the next owner waits for that message to come
back through the partition instead of starting the first stored successor before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from hookd import logs
from hookd.broker import Connection, Topology
from hookd.config import DeliverySettings
from hookd.daemon.task import Held, Task
from hookd.daemon.waitroom import WaitRoom
from hookd.messages import Delivery
from hookd.ordering import ChainKey, Chains, Step, Stored, partition_of
from hookd.state import ordered as waits
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook

log = logs.get_logger("hookd.worker")
#: Deliveries held in memory behind a head longer than this are stored (they hold the prefetch window,
#: and a wait this long is worth seeing in `hookd explain`).
HOLD_S = 2.0
#: A partition claimed while the state database does not answer is consumed after this long anyway:
#: deliveries go on (its chains waiting in the database join when it answers again, out of turn).
CLAIM_GRACE_S = 5.0
#: How often `tick` looks for deliveries held too long (a turn of the main loop comes far more often).
_TICK_S = 0.2

#: Starts a task (the consumer's `_start`: dispatch rules, the hook's lane, the engine).
Start = Callable[[Task], None]
#: Settles a task's share of its message (the settler's `done_with`).
Settle = Callable[[Task], None]


class Sequencer:
    """The chains of this worker's partitions (see the module docstring)."""

    def __init__(
        self,
        delivery: DeliverySettings,
        topology: Topology,
        waitroom: WaitRoom | None,
        *,
        start: Start,
        settle: Settle,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._delivery = delivery
        self._topology = topology
        self._room = waitroom
        self._start = start
        self._settle = settle
        self._clock = clock
        self._chains: Chains[Task] = Chains()
        self._conn: Connection | None = None
        self._rows: set[str] = set()  # delivery ids with a row in the database (written or taken over)
        self._partitions: dict[ChainKey, int] = {}
        self._heads: dict[ChainKey, Task] = {}  # each chain's head while it runs (or waits in its lane)
        self._claims: dict[int, tuple[float, Callable[[], None]]] = {}  # partition -> (since, consume it)
        self._next_tick = 0.0

    def __contains__(self, key: ChainKey) -> bool:
        """A chain for `key` exists here: a delivery arriving for it waits behind its head."""
        return key in self._chains

    @property
    def enabled(self) -> bool:
        return self._room is not None and self._topology.partitions > 0

    def ordered(self, hook: Hook) -> bool:
        """Does this hook get one entity's events one after another?"""
        wanted = hook.ordered if hook.ordered is not None else self._delivery.ordered_default
        return wanted and self.enabled

    def key(self, hook_id: str, account_id: str, entity: str) -> ChainKey:
        return ChainKey(hook_id, account_id, entity)

    def partition(self, key: ChainKey) -> int:
        found = self._partitions.get(key)
        if found is None:
            found = self._partitions[key] = partition_of(key.account_id, key.entity, self._topology.partitions)
        return found

    def attach(self, conn: Connection | None) -> None:
        """A new connection (or none): every chain in memory is forgotten (the messages it held went
        back to the broker; its rows stay in the database for the partition's next owner)."""
        self._conn = conn
        self._chains = Chains()
        self._rows.clear()
        self._partitions.clear()
        self._heads.clear()
        self._claims.clear()

    # -- arrivals --------------------------------------------------------------------------------
    def arrive(self, task: Task) -> None:
        """An ordered task from a partition: start it, hold it, store it, or drop a duplicate."""
        key = task.chain
        assert key is not None
        step = self._chains.arrive(key, task.delivery.delivery_id, task, self._clock())
        if step is Step.RUN:
            self._run(task)
        elif step is Step.STORE:
            seq = self._chains.seq_of(key, task.delivery.delivery_id)
            self._store([(task, waits.Row(key, seq, task.delivery))])
        elif step is Step.DUPLICATE:
            log.info("delivery.duplicate", hook_id=task.hook.id, delivery_id=task.delivery.delivery_id)
            self._settle(task)

    def tick(self) -> None:
        """Every turn of the main loop: store what waited in memory too long, or too much of it (not
        while the database does not answer: it then waits in memory, within the prefetch window), and
        consume the partitions whose chains could not be read for `CLAIM_GRACE_S`."""
        if self._room is None:
            return
        now = self._clock()
        if now < self._next_tick:
            return
        self._next_tick = now + _TICK_S
        if not self._room.available:
            for index, (since, consume) in list(self._claims.items()):
                if now - since >= CLAIM_GRACE_S:
                    del self._claims[index]
                    log.warning("ordering.degraded", partition=index)
                    consume()
            return
        spilled = self._chains.spill(now - HOLD_S)
        if spilled:
            self._store([(task, waits.Row(key, place.seq, task.delivery)) for key, place, task in spilled])

    # -- what settlement reports -----------------------------------------------------------------
    def ended(self, task: Task, settle: Callable[[], None]) -> None:
        """The task's delivery ended (delivered, or dead-lettered): the next one of its chain starts, and
        `settle` (its share of its message) runs. A head with a row that came from a message settles
        only once the row is deleted: a crash between the two then leaves the message (the head is
        delivered again, same delivery id), never a row marked away whose message is gone, which the
        next owner would wait for while the job's next events wait behind it for good."""
        key = task.chain
        if key is None:
            settle()
            return
        delivery_id = task.delivery.delivery_id
        self._head_left(key, delivery_id)
        if task.held.release is None and delivery_id in self._rows:  # an away head back from a message
            conn = task.held.conn
            self._delete(delivery_id, then=lambda: settle() if conn is self._conn else None)
        else:
            settle()
        self._ended_id(key, delivery_id)

    def away(self, task: Task, publish: Callable[[], None]) -> None:
        """The task goes to the durable path (a retry or a park). A delivery from a message first
        writes its row (away), then publishes; one read back from the database publishes, and its row
        is marked away on the confirm (`Held.release`). What was held behind it is stored."""
        key = task.chain
        assert key is not None
        self._head_left(key, task.delivery.delivery_id)
        head, held = self._chains.away(key, task.delivery.delivery_id)
        behind = [(waiting, waits.Row(key, place.seq, waiting.delivery)) for place, waiting in held]
        if head is None or task.held.release is not None:  # not the head, or read back: its row exists
            publish()
            self._store(behind)
            return
        rows = [waits.Row(key, head.seq, task.delivery, away=True), *(row for _task, row in behind)]
        assert self._room is not None
        self._rows.update(row.delivery.delivery_id for row in rows)

        def written(_result: object) -> None:
            if task.held.conn is not self._conn:
                return  # reconnected meanwhile: the message is back on the broker
            publish()
            for waiting, _row in behind:
                self._settle(waiting)

        self._room.submit(partial(waits.store, rows=rows), written)

    # -- the database side -----------------------------------------------------------------------
    def _store(self, pairs: list[tuple[Task, waits.Row]]) -> None:
        """Write waiting rows, then settle each one's share of its message."""
        if not pairs:
            return
        assert self._room is not None
        tasks = [task for task, _row in pairs]
        rows = [*self._head_rows({row.key for _task, row in pairs}), *(row for _task, row in pairs)]
        self._rows.update(row.delivery.delivery_id for row in rows)

        def written(_result: object) -> None:
            for task in tasks:
                if task.held.conn is self._conn:
                    self._settle(task)

        self._room.submit(partial(waits.store, rows=rows), written)

    def _head_rows(self, keys: set[ChainKey]) -> list[waits.Row]:
        """Rows for the heads of these chains that run from a message and have no row yet, marked away:
        written with their successors, so a next owner after a crash waits for the head's message (back
        in the partition, being unacked) rather than start the first stored successor before it.
        Without it, a worker stopped or killed while a head ran or waited in its lane, its successors
        stored, had them delivered before it by the next owner (tests/unit/test_ordered_daemon.py)."""
        rows: list[waits.Row] = []
        for key in keys:
            head, place = self._heads.get(key), self._chains.head_of(key)
            if head is None or place is None or head.held.release is not None:
                continue  # no head running here, or one read back from its own row
            if place.delivery_id == head.delivery.delivery_id and place.delivery_id not in self._rows:
                rows.append(waits.Row(key, place.seq, head.delivery, away=True))
        return rows

    def _run(self, task: Task) -> None:
        """Start a chain's head, remembered until it ends or goes away (see `_head_rows`)."""
        assert task.chain is not None
        self._heads[task.chain] = task
        self._start(task)

    def _head_left(self, key: ChainKey, delivery_id: str) -> None:
        head = self._heads.get(key)
        if head is not None and head.delivery.delivery_id == delivery_id:
            del self._heads[key]

    def _load(self, key: ChainKey, place: Stored) -> None:
        """Read a stored delivery back, then start it (unless its chain moved on meanwhile)."""
        assert self._room is not None
        conn = self._conn

        def loaded(row: waits.Row | None) -> None:
            if conn is not self._conn or conn is None:
                return
            if row is None:  # gone (ended by an earlier owner after a crash): the chain moves on
                self._chains.loaded(key, place.delivery_id)
                self._ended_id(key, place.delivery_id)
                return
            if not self._chains.loaded(key, place.delivery_id):
                return
            self._run(self._stored_task(conn, key, row))

        self._room.submit(partial(waits.fetch, delivery_id=place.delivery_id), loaded)

    def _ended_id(self, key: ChainKey, delivery_id: str) -> None:
        following = self._chains.ended(key, delivery_id)
        if following is not None and following.held is not None:
            self._run(following.held)
        elif following is not None and following.stored is not None:
            self._load(key, following.stored)

    def _stored_task(self, conn: Connection, key: ChainKey, row: waits.Row) -> Task:
        """A task for a delivery read back from the database; its hook is looked up when it starts."""
        queue = self._topology.partition(self.partition(key))
        task = Task(Held(conn, -1, 1, queue), _absent(row.delivery), row.delivery)
        task.chain = key
        task.held.release = partial(self._row_settled, task)
        return task

    def _row_settled(self, task: Task) -> None:
        """A stored delivery was settled: delete its row if it ended, mark it away if it left."""
        assert self._room is not None
        delivery = task.delivery
        if task.chain is not None and self._chains.is_away(task.chain, delivery.delivery_id):
            self._room.submit(partial(waits.mark_away, delivery=delivery), _nothing)
        else:
            self._delete(delivery.delivery_id)

    def _delete(self, delivery_id: str, *, then: Callable[[], None] | None = None) -> None:
        assert self._room is not None
        self._rows.discard(delivery_id)
        done = _nothing if then is None else (lambda _result: then())
        self._room.submit(partial(waits.delete, delivery_ids=[delivery_id]), done)

    # -- partitions ------------------------------------------------------------------------------
    def claim(self, index: int, then: Callable[[], None]) -> None:
        """Take over partition `index`: its chains from the database, their stored heads started; then
        `then()` (the caller starts consuming the partition). If the database does not answer for
        `CLAIM_GRACE_S`, `then()` runs anyway (`tick`), and the chains join when it answers."""
        assert self._room is not None
        conn = self._conn
        self._claims[index] = (self._clock(), then)

        def found(places: list[waits.Place]) -> None:
            if conn is not self._conn or conn is None:
                return
            chains: dict[ChainKey, list[tuple[int, str, bool]]] = {}
            for place in places:
                if self.partition(place.key) == index:
                    chains.setdefault(place.key, []).append((place.seq, place.delivery_id, place.away))
            for key, rows in chains.items():
                fresh = [row for row in rows if row[1] not in self._rows]
                self._rows.update(delivery_id for _seq, delivery_id, _away in fresh)
                if key in self._chains:  # consumed before the database answered: these come late
                    spilled = self._chains.merge(key, fresh)
                    self._store([(task, waits.Row(key, place.seq, task.delivery)) for place, task in spilled])
                    continue
                head = self._chains.restore(key, fresh)
                if head is not None:
                    self._load(key, head)
            log.info("partition.restored", partition=index, chains=len(chains))
            claimed = self._claims.pop(index, None)
            if claimed is not None:
                claimed[1]()

        self._room.submit(waits.places, found)

    def release(self, index: int) -> bool:
        """Store what partition `index`'s chains hold in memory; True once none of them has a delivery
        running (the caller then lets another worker take the partition)."""
        keys = [key for key in self._chains.chain_keys() if self.partition(key) == index]
        spilled = [(key, place, task) for key, place, task in self._chains.spill_keys(keys)]
        if spilled:
            self._store([(task, waits.Row(key, place.seq, task.delivery)) for key, place, task in spilled])
        if any(self._chains.running(key) for key in keys):
            return False
        self._chains.forget(keys)
        for key in keys:
            self._heads.pop(key, None)
        return True

    def waiting(self) -> dict[str, int]:
        """Hook id -> deliveries waiting behind an earlier one in this worker's chains."""
        return self._chains.waiting()

    def full(self, hook_id: str) -> bool:
        """The hook has `delivery.ordered_max_waiting` deliveries waiting already (in this worker)."""
        return self._chains.waiting_of(hook_id) >= self._delivery.ordered_max_waiting

    def hooks_changed(self, hooks: HookSet) -> None:
        """Stored deliveries not started yet look their hook up when they start; nothing to do here."""
        del hooks


def _absent(delivery: Delivery) -> Hook:
    """A stand-in until the consumer looks the hook up (a stored delivery carries only its id)."""
    return Hook(id=delivery.hook_id, account_id=delivery.account_id, url="", events=(), secret="")


def _nothing(_result: object) -> None:
    return None
