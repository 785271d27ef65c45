"""Ordered delivery, the pure rules: which entity an event is about, which partition carries it, and
the per-(hook, entity) chains that start an event only after the one before it ended.

**Entity.** `job.*` events are about the job (`id` of the body), `cluster.*` about the cluster (`id`),
`hook.*` about the hook (`hook.id`); a message header `ordering_key` (a string) names the entity
instead. An event with neither is delivered unordered.

**Partition.** hookd's router (the single active consumer of `<prefix>.events`) publishes every event,
in the order it consumed them, to partition `partition_of(account, entity)` of `broker.partitions`;
one worker at a time consumes a partition, so it sees each entity's events in publish order.

**Chains.** For one hook and one entity, the delivery at the head runs; the ones after it wait, in
memory while the head is being attempted in process (`held`), or in the state database once it went
to the durable path or they waited long (`stored`: the caller writes them, then settles their
messages). When the head ends (delivered, or dead-lettered for any reason) the next one starts: the
first stored one (the caller loads it), else the first held one. `Chains` decides; it does no I/O,
and its items are the caller's (`T`): tasks for held ones, row references for stored ones.
"""

from __future__ import annotations

import enum
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

#: The message header a scheduler may set to name an event's entity itself (a string).
ORDERING_KEY_HEADER = "ordering_key"
#: Longest `ordering_key` taken (a longer one is an error in the scheduler: the event goes unordered).
MAX_KEY_CHARS = 200
#: Waiting deliveries a chain keeps in memory before it stores them (they hold the prefetch window).
HOLD_MAX = 32

T = TypeVar("T")


def entity_of(event: str, body: Mapping[str, Any], headers: Mapping[str, Any] | None) -> str | None:
    """The entity `event` is about, as a key unique within its account; None: deliver it unordered."""
    key = (headers or {}).get(ORDERING_KEY_HEADER)
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    if isinstance(key, str) and key.strip() and len(key) <= MAX_KEY_CHARS:
        return f"key:{key.strip()}"
    kind = event.split(".", 1)[0]
    if kind == "hook":
        hook = body.get("hook")
        ident = hook.get("id") if isinstance(hook, Mapping) else None
    else:
        ident = body.get("id")
    if isinstance(ident, bool) or not isinstance(ident, int | str):
        return None
    text = str(ident).strip()
    if not text or len(text) > MAX_KEY_CHARS:
        return None
    return f"{kind}:{text}"


def partition_of(account_id: str, entity: str, partitions: int) -> int:
    """The partition that carries every event of this entity (stable across processes and versions)."""
    return zlib.crc32(f"{account_id}\x1f{entity}".encode("utf-8", "surrogatepass")) % partitions


@dataclass(frozen=True, slots=True)
class ChainKey:
    """One hook's deliveries about one entity of one account."""

    hook_id: str
    account_id: str
    entity: str


class Step(enum.Enum):
    RUN = "run"  # start it now: it is the head
    HOLD = "hold"  # it waits in memory behind the head
    STORE = "store"  # it waits in the state database: write it, then settle its message
    DUPLICATE = "duplicate"  # already in the chain (a message redelivered after a crash): settle, do not send


@dataclass(slots=True)
class Stored:
    """A waiting delivery in the state database: its place in the chain and its id."""

    seq: int
    delivery_id: str


@dataclass(slots=True)
class _Held(Generic[T]):
    place: Stored
    item: T
    since: float


@dataclass(slots=True)
class _Chain(Generic[T]):
    head: Stored | None = None  # the delivery at the head: running, queued in its lane, or away
    away: bool = False  # the head is on the durable path (a retry or a park); its row says so
    loading: bool = False  # the head is a stored delivery being read back from the database
    stored: deque[Stored] = field(default_factory=deque)
    held: deque[_Held[T]] = field(default_factory=deque)
    last_seq: int = 0  # every arrival takes the next number: the rows' order is the arrival order

    @property
    def head_id(self) -> str | None:
        return self.head.delivery_id if self.head is not None else None

    def ids(self) -> Iterator[str]:
        if self.head is not None:
            yield self.head.delivery_id
        yield from (s.delivery_id for s in self.stored)
        yield from (h.place.delivery_id for h in self.held)

    def place(self, delivery_id: str) -> Stored:
        self.last_seq += 1
        return Stored(self.last_seq, delivery_id)

    @property
    def empty(self) -> bool:
        return self.head is None and not self.stored and not self.held


@dataclass(frozen=True, slots=True)
class Next(Generic[T]):
    """What to start after a head ended: a held item, or a stored delivery to load first."""

    held: T | None = None
    stored: Stored | None = None


class Chains(Generic[T]):
    """Every chain of one owner (one process's partitions); see the module docstring. Main thread only."""

    def __init__(self, *, hold_max: int = HOLD_MAX) -> None:
        self._hold_max = hold_max
        self._chains: dict[ChainKey, _Chain[T]] = {}
        self._holding: dict[ChainKey, _Chain[T]] = {}  # the chains holding something: `spill` looks at these only
        self._waiting: dict[str, int] = {}  # hook id -> deliveries waiting behind a head (held and stored)

    def __contains__(self, key: ChainKey) -> bool:
        return key in self._chains

    def chain_keys(self) -> list[ChainKey]:
        return list(self._chains)

    def arrive(self, key: ChainKey, delivery_id: str, item: T, now: float) -> Step:
        """A delivery for `key` arrived (an event, or its head back from the durable path)."""
        chain = self._chains.get(key)
        if chain is None or chain.empty:
            chain = self._chains.setdefault(key, _Chain())
            chain.head = chain.place(delivery_id)
            return Step.RUN
        if delivery_id == chain.head_id:
            if chain.away and not chain.loading:
                chain.away = False  # the head is back from its durable retry or park
                return Step.RUN
            return Step.DUPLICATE
        if delivery_id in chain.ids():
            return Step.DUPLICATE
        self._count(key, +1)
        if chain.away or chain.stored or chain.loading:
            chain.stored.append(chain.place(delivery_id))
            return Step.STORE
        chain.held.append(_Held(chain.place(delivery_id), item, now))
        self._holding[key] = chain
        return Step.HOLD

    def waiting_of(self, hook_id: str) -> int:
        """Deliveries of this hook waiting behind an earlier one, in every chain here."""
        return self._waiting.get(hook_id, 0)

    def _count(self, key: ChainKey, change: int) -> None:
        left = self._waiting.get(key.hook_id, 0) + change
        if left > 0:
            self._waiting[key.hook_id] = left
        else:
            self._waiting.pop(key.hook_id, None)

    def seq_of(self, key: ChainKey, delivery_id: str) -> int:
        """The sequence number `arrive` gave a delivery it told the caller to store."""
        chain = self._chains[key]
        return next(s.seq for s in chain.stored if s.delivery_id == delivery_id)

    def ended(self, key: ChainKey, delivery_id: str) -> Next[T] | None:
        """The head ended (delivered, or dead-lettered): what starts next, if anything. A delivery that
        is not the head (a duplicate that ran after a crash) changes nothing."""
        chain = self._chains.get(key)
        if chain is None or chain.head_id != delivery_id:
            return None
        chain.head, chain.away, chain.loading = None, False, False
        if chain.stored:
            following = chain.stored.popleft()
            chain.head, chain.loading = following, True
            self._count(key, -1)
            return Next(stored=following)
        if chain.held:
            held = chain.held.popleft()
            if not chain.held:
                self._holding.pop(key, None)
            chain.head = held.place
            self._count(key, -1)
            return Next(held=held.item)
        del self._chains[key]
        return None

    def loaded(self, key: ChainKey, delivery_id: str) -> bool:
        """A stored head was read back from the database: start it (False: the chain moved on)."""
        chain = self._chains.get(key)
        if chain is None or chain.head_id != delivery_id or not chain.loading:
            return False
        chain.loading = False
        return True

    def away(self, key: ChainKey, delivery_id: str) -> tuple[Stored | None, list[tuple[Stored, T]]]:
        """The head went to the durable path: it is away until it arrives again, and everything held
        behind it is stored. Returns the head's place (None: not this chain's head) and the stored
        ones with their places, for the caller to write (the head's row first) and settle."""
        chain = self._chains.get(key)
        if chain is None or chain.head is None or chain.head.delivery_id != delivery_id:
            return None, []
        chain.away = True
        return chain.head, self._store_held(key, chain)

    def is_away(self, key: ChainKey, delivery_id: str) -> bool:
        """`delivery_id` is the chain's head and on the durable path."""
        chain = self._chains.get(key)
        return chain is not None and chain.head_id == delivery_id and chain.away

    def head_of(self, key: ChainKey) -> Stored | None:
        """The place of the chain's head (running, queued in its lane, away or being read back)."""
        chain = self._chains.get(key)
        return chain.head if chain is not None else None

    def running(self, key: ChainKey) -> bool:
        """The chain's head is being delivered here (or read back to be): not away, not absent."""
        chain = self._chains.get(key)
        return chain is not None and chain.head is not None and not chain.away

    def spill(self, older_than: float) -> list[tuple[ChainKey, Stored, T]]:
        """Store the held deliveries of every chain that holds more than `hold_max`, or one held since
        before `older_than`, so a long wait holds neither the prefetch window nor memory, and shows in
        the database. A chain's held ones are stored all at once: stored ones always come first."""
        spilled: list[tuple[ChainKey, Stored, T]] = []
        for key, chain in list(self._holding.items()):
            if len(chain.held) > self._hold_max or chain.held[0].since < older_than:
                spilled.extend((key, stored, item) for stored, item in self._store_held(key, chain))
        return spilled

    def spill_keys(self, keys: list[ChainKey]) -> list[tuple[ChainKey, Stored, T]]:
        """Store everything these chains hold (their partition is being released)."""
        spilled: list[tuple[ChainKey, Stored, T]] = []
        for key in keys:
            chain = self._chains.get(key)
            if chain is not None:
                spilled.extend((key, stored, item) for stored, item in self._store_held(key, chain))
        return spilled

    def _store_held(self, key: ChainKey, chain: _Chain[T]) -> list[tuple[Stored, T]]:
        self._holding.pop(key, None)
        stored: list[tuple[Stored, T]] = []
        while chain.held:
            held = chain.held.popleft()
            chain.stored.append(held.place)
            stored.append((held.place, held.item))
        return stored

    def restore(self, key: ChainKey, rows: list[tuple[int, str, bool]]) -> Stored | None:
        """Take over a chain from the database (a partition claimed): `rows` are (seq, delivery id,
        away) in order. Returns the stored head to load and start, if the first row is not away."""
        if not rows:
            return None
        chain = self._chains.setdefault(key, _Chain())
        chain.last_seq = max(chain.last_seq, rows[-1][0])
        first_seq, first_id, first_away = rows[0]
        chain.head, chain.away = Stored(first_seq, first_id), first_away
        chain.stored.extend(Stored(seq, delivery_id) for seq, delivery_id, _away in rows[1:])
        self._count(key, len(rows) - 1)
        if first_away:
            return None
        chain.loading = True
        return chain.head

    def merge(self, key: ChainKey, rows: list[tuple[int, str, bool]]) -> list[tuple[Stored, T]]:
        """Rows of a chain that is already here (its partition was consumed before the database
        answered): they go behind everything it has, which is stored first (returned with its places,
        for the caller to write and settle). Their deliveries come late: out of turn, not lost."""
        chain = self._chains[key]
        spilled = self._store_held(key, chain)
        for seq, delivery_id, _away in rows:
            chain.last_seq = max(chain.last_seq, seq) + 1
            chain.stored.append(Stored(chain.last_seq, delivery_id))
        self._count(key, len(rows))
        return spilled

    def forget(self, keys: list[ChainKey]) -> list[T]:
        """Drop these chains (their partition was released or the connection lost); returns the held
        items, which the caller returns to the broker unstarted."""
        held: list[T] = []
        for key in keys:
            chain = self._chains.pop(key, None)
            self._holding.pop(key, None)
            if chain is not None:
                held.extend(h.item for h in chain.held)
                self._count(key, -(len(chain.held) + len(chain.stored)))
        return held

    def waiting(self) -> dict[str, int]:
        """Hook id -> deliveries waiting behind an earlier one (held and stored), for the gauge."""
        return dict(self._waiting)

    def held_count(self) -> int:
        return sum(len(chain.held) for chain in self._holding.values())
