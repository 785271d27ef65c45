"""ordering: an event's entity and partition, and the chains that start one entity's deliveries to a
hook one after another, in arrival order, whatever happens to each (retries, parks, spills)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookd.ordering import ChainKey, Chains, Step, Stored, entity_of, partition_of


@pytest.mark.parametrize(
    ("event", "body", "headers", "entity"),
    [
        ("job.started", {"id": 7}, {}, "job:7"),
        ("job.started", {"id": "7"}, {}, "job:7"),
        ("cluster.available", {"id": 7}, {}, "cluster:7"),
        ("hook.failing", {"hook": {"id": "12"}}, {}, "hook:12"),
        ("job.started", {"id": 7}, {"ordering_key": "run-9"}, "key:run-9"),
        ("job.started", {"id": 7}, {"ordering_key": b"run-9"}, "key:run-9"),
        ("job.started", {"name": "no id"}, {}, None),
        ("job.started", {"id": True}, {}, None),
        ("job.started", {"id": ""}, {}, None),
        ("job.started", {"id": {"nested": 1}}, {}, None),
        ("hook.failing", {"hook": "12"}, {}, None),
        ("job.started", {"id": 7}, {"ordering_key": ""}, "job:7"),
        ("job.started", {"id": 7}, {"ordering_key": "x" * 201}, "job:7"),
    ],
)
def test_the_entity_of_an_event(event: str, body: dict[str, object], headers: dict[str, object], entity: str) -> None:
    """job and cluster events are about their body's id, hook events about the hook; `ordering_key`
    names the entity instead; without either the event is unordered (None)."""
    assert entity_of(event, body, headers) == entity


def test_a_job_and_a_cluster_with_the_same_id_are_different_entities() -> None:
    """Job 7 and cluster 7 are not one entity: their chains do not wait for each other."""
    assert entity_of("job.started", {"id": 7}, {}) != entity_of("cluster.available", {"id": 7}, {})


@given(st.text(min_size=1), st.text(min_size=1), st.integers(min_value=1, max_value=64))
def test_a_partition_is_stable_and_in_range(account: str, entity: str, partitions: int) -> None:
    """Every process computes the same partition for an entity, within 0..partitions-1."""
    first = partition_of(account, entity, partitions)
    assert first == partition_of(account, entity, partitions)
    assert 0 <= first < partitions


def test_partitions_spread_entities_evenly_enough() -> None:
    """10,000 jobs over 16 partitions: no partition gets more than 1.3x its share."""
    counts = [0] * 16
    for job in range(10_000):
        counts[partition_of("acme", f"job:{job}", 16)] += 1
    assert max(counts) < 1.3 * 10_000 / 16


KEY = ChainKey("h", "acme", "job:1")


def test_the_first_delivery_runs_and_the_next_ones_wait_in_order() -> None:
    """Behind a running head, deliveries are held; each starts when the one before it ended."""
    chains: Chains[str] = Chains()
    assert chains.arrive(KEY, "d1", "t1", 0.0) is Step.RUN
    assert chains.arrive(KEY, "d2", "t2", 0.0) is Step.HOLD
    assert chains.arrive(KEY, "d3", "t3", 0.0) is Step.HOLD
    following = chains.ended(KEY, "d1")
    assert following is not None and following.held == "t2"
    following = chains.ended(KEY, "d2")
    assert following is not None and following.held == "t3"
    assert chains.ended(KEY, "d3") is None
    assert KEY not in chains


def test_a_head_gone_to_the_durable_path_stores_what_waits_and_runs_when_it_is_back() -> None:
    """A head's durable retry stores the held ones; later arrivals are stored too; the head runs
    again when it arrives back, and after it the stored ones come back one by one."""
    chains: Chains[str] = Chains()
    chains.arrive(KEY, "d1", "t1", 0.0)
    chains.arrive(KEY, "d2", "t2", 0.0)
    head, stored = chains.away(KEY, "d1")
    assert head == Stored(1, "d1")
    assert [(place.delivery_id, item) for place, item in stored] == [("d2", "t2")]
    assert chains.arrive(KEY, "d3", "t3", 0.0) is Step.STORE
    assert chains.arrive(KEY, "d1", "t1-again", 0.0) is Step.RUN  # back from its retry
    following = chains.ended(KEY, "d1")
    assert following is not None and following.stored is not None and following.stored.delivery_id == "d2"
    assert chains.arrive(KEY, "d4", "t4", 0.0) is Step.STORE  # behind stored ones: stored too
    assert chains.loaded(KEY, "d2")
    following = chains.ended(KEY, "d2")
    assert following is not None and following.stored is not None and following.stored.delivery_id == "d3"


def test_a_delivery_already_in_the_chain_is_a_duplicate() -> None:
    """A message redelivered after a crash, already held, stored or running, is not queued twice."""
    chains: Chains[str] = Chains()
    chains.arrive(KEY, "d1", "t1", 0.0)
    chains.arrive(KEY, "d2", "t2", 0.0)
    assert chains.arrive(KEY, "d1", "t1", 0.0) is Step.DUPLICATE
    assert chains.arrive(KEY, "d2", "t2", 0.0) is Step.DUPLICATE


def test_a_restored_chain_waits_for_its_away_head_or_starts_its_first_row() -> None:
    """Taking over a partition: an away head holds the rest; a first row that is not away starts."""
    chains: Chains[str] = Chains()
    assert chains.restore(KEY, [(4, "d4", True), (5, "d5", False)]) is None
    assert chains.arrive(KEY, "d6", "t6", 0.0) is Step.STORE
    assert chains.seq_of(KEY, "d6") == 6
    other = ChainKey("h", "acme", "job:2")
    assert chains.restore(other, [(1, "e1", False), (2, "e2", False)]) == Stored(1, "e1")
    assert chains.arrive(other, "e1", "from-the-broker-again", 0.0) is Step.DUPLICATE


def test_long_held_deliveries_are_spilled_to_storage() -> None:
    """Held longer than the bound, a chain's held deliveries are stored, oldest first."""
    chains: Chains[str] = Chains()
    chains.arrive(KEY, "d1", "t1", 0.0)
    chains.arrive(KEY, "d2", "t2", 1.0)
    chains.arrive(KEY, "d3", "t3", 5.0)
    assert chains.spill(older_than=0.5) == []
    spilled = chains.spill(older_than=2.0)
    assert [(place.delivery_id, item) for _key, place, item in spilled] == [("d2", "t2"), ("d3", "t3")]
    assert chains.waiting() == {"h": 2}


@dataclass
class Model:
    """Drives `Chains` as the daemon does and records the order deliveries start in, per chain."""

    chains: Chains[str] = field(default_factory=Chains)
    arrived: dict[ChainKey, list[str]] = field(default_factory=dict)
    started: dict[ChainKey, list[str]] = field(default_factory=dict)
    running: dict[ChainKey, str] = field(default_factory=dict)  # head running in process
    away: dict[ChainKey, str] = field(default_factory=dict)  # head on the durable path
    loading: dict[ChainKey, str] = field(default_factory=dict)
    clock: float = 0.0
    counter: int = 0

    def start(self, key: ChainKey, delivery_id: str) -> None:
        assert key not in self.running, f"two heads at once in {key}"
        self.running[key] = delivery_id
        self.started.setdefault(key, []).append(delivery_id)

    def arrive(self, key: ChainKey) -> None:
        self.counter += 1
        delivery_id = f"{key.entity}-{self.counter}"
        self.arrived.setdefault(key, []).append(delivery_id)
        if self.chains.arrive(key, delivery_id, delivery_id, self.clock) is Step.RUN:
            self.start(key, delivery_id)

    def end(self, key: ChainKey) -> None:
        head = self.running.pop(key)
        following = self.chains.ended(key, head)
        if following is not None and following.held is not None:
            self.start(key, following.held)
        elif following is not None and following.stored is not None:
            self.loading[key] = following.stored.delivery_id

    def go_away(self, key: ChainKey) -> None:
        head = self.running.pop(key)
        self.chains.away(key, head)
        self.away[key] = head

    def come_back(self, key: ChainKey) -> None:
        head = self.away.pop(key)
        assert self.chains.arrive(key, head, head, self.clock) is Step.RUN
        self.running[key] = head  # a second start of the same delivery: not a new first start

    def load(self, key: ChainKey) -> None:
        delivery_id = self.loading.pop(key)
        assert self.chains.loaded(key, delivery_id)
        self.start(key, delivery_id)


KEYS = [ChainKey("h1", "acme", "job:1"), ChainKey("h1", "acme", "job:2"), ChainKey("h2", "acme", "job:1")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["arrive", "end", "away", "back", "load", "spill"]), st.integers(0, 2))))
def test_deliveries_start_in_arrival_order_whatever_happens(operations: list[tuple[str, int]]) -> None:
    """Any interleaving of arrivals, ends, durable retries, returns, loads and spills starts each
    chain's deliveries in the order they arrived, one head at a time, and once every head ends all of
    them have started and no chain is left."""
    model = Model(chains=Chains(hold_max=2))
    for name, index in operations:
        key = KEYS[index]
        model.clock += 1.0
        if name == "arrive":
            model.arrive(key)
        elif name == "end" and key in model.running:
            model.end(key)
        elif name == "away" and key in model.running:
            model.go_away(key)
        elif name == "back" and key in model.away:
            model.come_back(key)
        elif name == "load" and key in model.loading:
            model.load(key)
        elif name == "spill":
            model.chains.spill(older_than=model.clock - 2.0)
    for key, started in model.started.items():
        assert started == model.arrived[key][: len(started)]
    for _ in range(10_000):  # then let every head finish: everything that arrived starts, in order
        if model.loading:
            model.load(next(iter(model.loading)))
        elif model.away:
            model.come_back(next(iter(model.away)))
        elif model.running:
            model.end(next(iter(model.running)))
        else:
            break
    assert model.started == model.arrived
    assert model.chains.chain_keys() == []
