"""subscriptions.matching: which hooks receive an event, and the HookSet index."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hookd.events import CLUSTER_EVENTS, JOB_EVENTS, PING
from hookd.subscriptions import Hook, HookSet, StaticStore, matches, subscribes

HookFactory = Callable[..., Hook]


def test_explicit_event_name_subscribes(make_hook: HookFactory) -> None:
    """A hook listing an event by name receives it."""
    assert subscribes(make_hook(events=("job.failed",)), "job.failed")


def test_unlisted_event_does_not_subscribe(make_hook: HookFactory) -> None:
    """A hook does not receive an event it does not list."""
    assert not subscribes(make_hook(events=("job.failed",)), "job.completed")


@pytest.mark.parametrize("name", JOB_EVENTS)
def test_job_group_subscribes_to_every_job_event(make_hook: HookFactory, name: str) -> None:
    """The `job` group covers every job event."""
    assert subscribes(make_hook(events=("job",)), name)


@pytest.mark.parametrize("name", CLUSTER_EVENTS)
def test_cluster_group_subscribes_to_every_cluster_event(make_hook: HookFactory, name: str) -> None:
    """The `cluster` group covers every cluster event."""
    assert subscribes(make_hook(events=("cluster",)), name)


@pytest.mark.parametrize("name", CLUSTER_EVENTS)
def test_job_group_does_not_cover_cluster_events(make_hook: HookFactory, name: str) -> None:
    """The `job` group does not cover cluster events."""
    assert not subscribes(make_hook(events=("job",)), name)


def test_group_name_does_not_match_unknown_prefixed_event(make_hook: HookFactory) -> None:
    """A hook listing the `job` group does not receive an event of another prefix."""
    assert not subscribes(make_hook(events=("job",)), "node.failed")


def test_every_hook_gets_pings(make_hook: HookFactory) -> None:
    """Ping is delivered to every hook whatever it lists."""
    assert subscribes(make_hook(events=("cluster.idled",)), PING)


def test_matches_same_account_and_event(make_hook: HookFactory) -> None:
    """An active hook of the event's account subscribed to the event matches."""
    assert matches(make_hook(account_id="acme", events=("job",)), "job.failed", "acme")


def test_other_account_does_not_match(make_hook: HookFactory) -> None:
    """A hook of another account never receives the event."""
    assert not matches(make_hook(account_id="acme", events=("job",)), "job.failed", "globex")


def test_inactive_hook_does_not_match(make_hook: HookFactory) -> None:
    """An inactive hook receives nothing."""
    assert not matches(make_hook(active=False, events=("job",)), "job.failed", "acme")


def test_inactive_hook_gets_no_ping_through_matches(make_hook: HookFactory) -> None:
    """Even a ping is not matched to an inactive hook."""
    assert not matches(make_hook(active=False), PING, "acme")


def test_ping_matches_only_its_account(make_hook: HookFactory) -> None:
    """A ping still respects the account boundary."""
    assert not matches(make_hook(account_id="acme"), PING, "globex")


def test_hookset_match_returns_matching_hooks_in_file_order(make_hook: HookFactory) -> None:
    """HookSet.match returns every matching hook of the account, in insertion order."""
    first = make_hook(id="b", events=("job",))
    skipped = make_hook(id="c", events=("cluster",))
    other_account = make_hook(id="d", account_id="globex", events=("job",))
    inactive = make_hook(id="e", events=("job",), active=False)
    last = make_hook(id="a", events=("job.failed",))
    hooks = HookSet([first, skipped, other_account, inactive, last])
    assert hooks.match("job.failed", "acme") == [first, last]


def test_hookset_match_unknown_account_is_empty(make_hook: HookFactory) -> None:
    """An event for an account without hooks matches nothing."""
    assert HookSet([make_hook()]).match("job.failed", "nobody") == []


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


def test_empty_hookset() -> None:
    """An empty HookSet matches nothing and has length zero."""
    assert len(HookSet()) == 0
    assert HookSet().match(PING, "acme") == []


def test_static_store_returns_its_hooks(make_hook: HookFactory) -> None:
    """StaticStore.load returns the HookSet it was given and describes itself by size."""
    hooks = HookSet([make_hook(), make_hook()])
    store = StaticStore(hooks)
    assert store.load() is hooks
    assert store.describe() == "memory:2 hooks"
