"""The SubscriptionStore contract: YAML and both SQL backends yield the same hooks and the same matches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from hookd.dispatch import decide, recipients
from hookd.events import EVENTS, PING
from hookd.state.db import Database
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.sql_store import SqlStore
from hookd.subscriptions.store import SubscriptionStore
from hookd.subscriptions.yaml_store import YamlStore

StoreMaker = Callable[[Iterable[Hook]], SubscriptionStore]
ACCOUNTS = ("acme", "globex", "nobody")
HOOKS = (
    Hook(id="1", account_id="acme", url="https://a.example/all-jobs", events=("job",), secret="s-1"),
    Hook(
        id="2",
        account_id="acme",
        url="https://a.example/pager",
        events=("job.failed", "cluster.error"),
        secret="s-2",
        name="pager",
        basic_auth=BasicAuth("ops", "pa:ss word"),
    ),
    Hook(id="3", account_id="acme", url="https://a.example/off", events=("job",), secret="s-3", active=False),
    Hook(id="4", account_id="globex", url="https://g.example/in", events=("job.failed",), secret="s-4"),
    Hook(
        id="10",
        account_id="acme",
        url="http://10.0.0.5:8080/clusters",
        events=("cluster",),
        secret="s-10",
        insecure_ssl=True,
    ),
    Hook(id="ops-a", account_id="acme", url="https://a.example/ops", events=("cluster.available",), secret="s-a"),
)


def _yaml_entry(hook: Hook) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": hook.id,
        "account_id": hook.account_id,
        "url": hook.url,
        "events": list(hook.events),
        "secret": hook.secret,
        "name": hook.name,
        "active": hook.active,
        "insecure_ssl": hook.insecure_ssl,
    }
    if hook.basic_auth is not None:
        entry["basic_auth"] = {"username": hook.basic_auth.username, "password": hook.basic_auth.password}
    return entry


@pytest.fixture(params=("yaml", "sqlite", "postgresql"))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    """A factory: the same hooks, written to a YAML file or imported into a SQL database."""
    if request.param == "yaml":

        def from_yaml(hooks: Iterable[Hook]) -> SubscriptionStore:
            path = tmp_path / "hooks.yaml"
            path.write_text(yaml.safe_dump({"hooks": [_yaml_entry(h) for h in hooks]}), encoding="utf-8")
            return YamlStore(path, environ={})

        return from_yaml
    opener: Callable[[], Database] = request.getfixturevalue(f"{request.param}_opener")

    def from_sql(hooks: Iterable[Hook]) -> SubscriptionStore:
        db = opener()
        db.migrate()
        store = SqlStore(db)
        store.import_hooks(hooks)
        return store

    return from_sql


def _ids(hooks: Iterable[Hook]) -> list[str]:
    return [h.id for h in hooks]


def test_load_returns_every_hook_unchanged(make_store: StoreMaker) -> None:
    """Every field of every hook, secrets and basic auth included, survives the round trip."""
    loaded = make_store(HOOKS).load()
    assert sorted(loaded, key=lambda h: h.id) == sorted(HOOKS, key=lambda h: h.id)


def test_empty_source_loads_an_empty_set(make_store: StoreMaker) -> None:
    """A source without hooks loads as an empty set, not an error."""
    assert len(make_store([]).load()) == 0


def test_group_subscription_receives_every_event_of_the_group(make_store: StoreMaker) -> None:
    """A hook listing `job` receives every job event and no cluster event."""
    hooks = make_store(HOOKS).load()
    assert all("1" in _ids(_match(hooks, e, "acme")) for e in EVENTS if e.startswith("job."))
    assert not any("1" in _ids(_match(hooks, e, "acme")) for e in EVENTS if e.startswith("cluster."))


def test_named_event_subscription_receives_only_that_event(make_store: StoreMaker) -> None:
    """A hook listing `job.failed` receives job.failed but not job.completed."""
    hooks = make_store(HOOKS).load()
    assert "2" in _ids(_match(hooks, "job.failed", "acme"))
    assert "2" not in _ids(_match(hooks, "job.completed", "acme"))


def test_inactive_hook_never_matches(make_store: StoreMaker) -> None:
    """An inactive hook is loaded but receives no event."""
    hooks = make_store(HOOKS).load()
    assert hooks.get("3") is not None
    assert all("3" not in _ids(_match(hooks, e, "acme")) for e in EVENTS)


def test_hooks_of_other_accounts_never_match(make_store: StoreMaker) -> None:
    """An event reaches only the hooks of its own account."""
    hooks = make_store(HOOKS).load()
    assert _ids(_match(hooks, "job.failed", "globex")) == ["4"]
    assert _match(hooks, "job.failed", "nobody") == []


def test_ping_reaches_every_hook_of_the_account(make_store: StoreMaker) -> None:
    """A ping goes to each hook of the account whatever it subscribes to, inactive ones too (an admin
    tests a hook before enabling it)."""
    hooks = make_store(HOOKS).load()
    assert sorted(h.id for h in hooks.for_account("acme") if decide(h, PING, targeted=True) is None) == sorted(
        ["1", "2", "3", "10", "ops-a"]
    )


def test_every_match_equals_the_pure_rule(make_store: StoreMaker) -> None:
    """For every event and account, the loaded set fans out to exactly the hooks the rule selects."""
    hooks = make_store(HOOKS).load()
    for event in EVENTS:
        for account in ACCOUNTS:
            expected = {h.id for h in HOOKS if h.account_id == account and decide(h, event, targeted=False) is None}
            assert set(_ids(_match(hooks, event, account))) == expected, (event, account)


def test_describe_names_the_source_without_secrets(make_store: StoreMaker) -> None:
    """describe() says where hooks come from and never shows a secret or password."""
    description = make_store(HOOKS).describe()
    assert description.split(":", 1)[0] in ("yaml", "sql")
    assert not any(secret in description for secret in ("s-1", "s-2", "pa:ss word"))


def _match(hooks: HookSet, event: str, account: str) -> list[Hook]:
    """The hooks a fresh event of `account` fans out to (what the daemon asks `dispatch`)."""
    return recipients(hooks.for_account(account), event, {})
