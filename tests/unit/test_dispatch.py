"""hookd.dispatch: which hooks get an event, and the first reason one does not; the HookSet index."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hookd import dispatch
from hookd.dispatch import Code, covers, decide, expand, recipients, subscribes
from hookd.events import CLUSTER_EVENTS, JOB_EVENTS, PING
from hookd.outcomes import DeadLetter
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore

HookFactory = Callable[..., Hook]


def test_explicit_event_name_subscribes() -> None:
    """A hook listing an event by name receives it."""
    assert subscribes(("job.failed",), "job.failed")


def test_unlisted_event_does_not_subscribe() -> None:
    """A hook does not receive an event it does not list."""
    assert not subscribes(("job.failed",), "job.completed")


@pytest.mark.parametrize("name", JOB_EVENTS)
def test_job_group_covers_every_job_event(name: str) -> None:
    """The `job` group covers every job event."""
    assert covers("job", name) and subscribes(("job",), name)


@pytest.mark.parametrize("name", CLUSTER_EVENTS)
def test_cluster_group_covers_every_cluster_event_and_no_job_event(name: str) -> None:
    """The `cluster` group covers every cluster event; the `job` group none of them."""
    assert covers("cluster", name)
    assert not covers("job", name)


def test_group_name_does_not_match_unknown_prefixed_event() -> None:
    """A hook listing the `job` group does not receive an event of another prefix that starts alike."""
    assert not subscribes(("job",), "jobs.failed")
    assert not covers("job", "node.failed")


def test_every_hook_gets_pings() -> None:
    """Ping is delivered to every hook whatever it lists."""
    assert subscribes(("cluster.idled",), PING)


def test_expand_lists_groups_member_by_member_in_catalogue_order() -> None:
    """`expand` turns groups into their events, without duplicates, in the platform's order."""
    assert expand(("cluster.error", "job", "job.failed")) == [*JOB_EVENTS, "cluster.error"]


def test_decide_order_is_found_active_subscribed_disabled_circuit(make_hook: HookFactory) -> None:
    """The first applicable rule wins, in the documented order."""
    asked: list[str] = []

    def circuit() -> dispatch.Refusal | None:
        asked.append("circuit")
        return dispatch.circuit_open(wait_s=3)

    inactive = make_hook(active=False, events=("cluster",))
    assert decide(None, "job.failed", targeted=True, disabled="gone", circuit=circuit).code is Code.NOT_FOUND
    assert decide(inactive, "job.failed", targeted=False, disabled="gone", circuit=circuit).code is Code.INACTIVE
    unsubscribed = make_hook(events=("cluster",))
    assert decide(unsubscribed, "job.failed", targeted=False, disabled="gone", circuit=circuit).code is (
        Code.NOT_SUBSCRIBED
    )
    subscribed = make_hook(events=("job",))
    refusal = decide(subscribed, "job.failed", targeted=False, disabled="gone", circuit=circuit)
    assert refusal is not None and refusal.code is Code.DISABLED and refusal.reason == "disabled: gone"
    assert asked == []  # the circuit is not asked while another rule refuses (a probe is not wasted)
    refusal = decide(subscribed, "job.failed", targeted=False, circuit=circuit)
    assert refusal is not None and refusal.code is Code.CIRCUIT_OPEN and refusal.wait_s == 3
    assert asked == ["circuit"]
    assert decide(subscribed, "job.failed", targeted=False) is None


def test_inactive_hook_still_answers_pings(make_hook: HookFactory) -> None:
    """A ping reaches an inactive hook (the admin tests it before enabling it)."""
    assert decide(make_hook(active=False), PING, targeted=True) is None


def test_targeted_delivery_is_not_asked_about_its_subscription(make_hook: HookFactory) -> None:
    """A retry keeps going to its hook even if the hook's events changed since."""
    assert decide(make_hook(events=("cluster",)), "job.failed", targeted=True) is None


@pytest.mark.parametrize(
    ("code", "dead_letter"),
    [
        (Code.NOT_FOUND, DeadLetter.HOOK_NOT_FOUND),
        (Code.INACTIVE, DeadLetter.HOOK_INACTIVE),
        (Code.DISABLED, DeadLetter.HOOK_DISABLED),
        (Code.CIRCUIT_OPEN, None),
    ],
)
def test_refusals_of_deliveries_under_way_dead_letter_or_park(code: Code, dead_letter: DeadLetter | None) -> None:
    """A refused delivery already under way is dead-lettered with the matching reason, or parked."""
    assert dispatch.Refusal(code, "why").dead_letter == dead_letter


def test_recipients_are_the_accounts_subscribed_active_enabled_hooks(make_hook: HookFactory) -> None:
    """Fan-out keeps hook order and drops inactive, unsubscribed and disabled hooks."""
    first = make_hook(id="b", events=("job",))
    skipped = make_hook(id="c", events=("cluster",))
    inactive = make_hook(id="e", events=("job",), active=False)
    disabled = make_hook(id="f", events=("job",))
    last = make_hook(id="a", events=("job.failed",))
    hooks = [first, skipped, inactive, disabled, last]
    assert recipients(hooks, "job.failed", {"f": "gone"}) == [first, last]


def test_circuit_open_reason_names_when_it_opened() -> None:
    """The reason of an open circuit says since when, in UTC to the second."""
    from datetime import UTC, datetime

    refusal = dispatch.circuit_open(since=datetime(2026, 11, 29, 2, 54, 25, 101000, tzinfo=UTC))
    assert refusal.reason == "circuit open since 2026-11-29T02:54:25Z"


def test_hookset_for_account(make_hook: HookFactory) -> None:
    """for_account returns every hook of the account, active or not, and () for others."""
    mine = [make_hook(account_id="acme"), make_hook(account_id="acme", active=False)]
    hooks = HookSet([*mine, make_hook(account_id="globex")])
    assert hooks.for_account("acme") == tuple(mine)
    assert hooks.for_account("initech") == ()


def test_hookset_get(make_hook: HookFactory) -> None:
    """get finds a hook by id and returns None for an unknown id."""
    hook = make_hook(id="42")
    hooks = HookSet([hook])
    assert hooks.get("42") is hook
    assert hooks.get("43") is None


def test_hookset_len_and_iter(make_hook: HookFactory) -> None:
    """A HookSet has the length of its hooks and iterates over them in order."""
    hooks = [make_hook(), make_hook(), make_hook()]
    hook_set = HookSet(hooks)
    assert len(hook_set) == 3
    assert list(hook_set) == hooks
    assert len(HookSet()) == 0


def test_memory_store_follows_the_store_protocol(make_hook: HookFactory) -> None:
    """MemoryStore loads its hooks, lists them in id order, and moves its revision on a change."""
    store = MemoryStore([make_hook(id="10"), make_hook(id="2", account_id="globex")])
    assert [h.id for h in store.list()] == ["2", "10"]
    assert [h.id for h in store.list("globex")] == ["2"]
    assert store.describe() == "memory:2 hooks"
    before = store.revision()
    assert store.deactivate("10")
    assert store.revision() == (before or 0) + 1
    hook = store.get("10")
    assert hook is not None and not hook.active
    assert not store.deactivate("nope")
