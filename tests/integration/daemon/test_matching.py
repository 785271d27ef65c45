"""Which hooks receive an event: active, the event's account, subscribed to the event or its group."""

from __future__ import annotations

from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, hook_entry, settle


def received(receiver: Receiver) -> set[tuple[str, str]]:
    """(X-Hook-Event, X-Hook-ID) of every request so far."""
    return {(r.event or "", r.hook_id or "") for r in receiver.requests()}


def test_group_subscription(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A hook subscribed to the group `job` gets every job event and no cluster event."""
    hookd.start([hook_entry("jobs", receiver.url("/jobs"), events=["job"])])

    for event in ("job.submitted", "job.started", "job.stopped", "job.completed", "job.failed", "cluster.error"):
        amqp.publish_event(prefix, event)

    receiver.wait_for(5)
    settle()
    assert sorted(r.event or "" for r in receiver.requests()) == [
        "job.completed",
        "job.failed",
        "job.started",
        "job.stopped",
        "job.submitted",
    ]


def test_explicit_event_names(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A hook listing event names gets exactly those events."""
    hookd.start([hook_entry("failures", receiver.url("/f"), events=["job.failed", "cluster.error"])])

    for event in ("job.completed", "job.failed", "cluster.available", "cluster.error", "cluster.idled"):
        amqp.publish_event(prefix, event)

    receiver.wait_for(2)
    settle()
    assert received(receiver) == {("job.failed", "failures"), ("cluster.error", "failures")}
    assert len(receiver.requests()) == 2


def test_other_account_not_delivered(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """An event of one account never reaches another account's hooks."""
    hookd.start(
        [
            hook_entry("acme-hook", receiver.url("/acme"), account_id="acme"),
            hook_entry("globex-hook", receiver.url("/globex"), account_id="globex"),
        ]
    )

    amqp.publish_event(prefix, "job.failed", account_id="globex")

    receiver.wait_for(1, "/globex")
    settle()
    assert received(receiver) == {("job.failed", "globex-hook")}


def test_inactive_hook_not_delivered(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """A hook with active: false gets nothing, while an active hook of the same account does."""
    hookd.start(
        [
            hook_entry("off", receiver.url("/off"), active=False),
            hook_entry("on", receiver.url("/on"), active=True),
        ]
    )

    amqp.publish_event(prefix, "cluster.terminated")

    receiver.wait_for(1, "/on")
    settle()
    assert received(receiver) == {("cluster.terminated", "on")}


def test_account_ids_compare_as_text(hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names) -> None:
    """Integer and string account ids match each other, in the hooks file and in the header."""
    hookd.start(
        [
            hook_entry("int-acct", receiver.url("/int"), account_id=42, events=["job.completed"]),
            hook_entry("str-acct", receiver.url("/str"), account_id="42", events=["job.completed"]),
        ]
    )

    int_id = amqp.publish_event(prefix, "job.completed", account_id=42)
    str_id = amqp.publish_event(prefix, "job.completed", account_id="42")

    receiver.wait_for(4)
    settle()
    by_hook: dict[str, set[str]] = {}
    for request in receiver.requests():
        by_hook.setdefault(request.hook_id or "", set()).add(request.delivery or "")
    assert set(by_hook) == {"int-acct", "str-acct"}
    assert all(len(deliveries) == 2 for deliveries in by_hook.values()), by_hook
    assert len(receiver.requests()) == 4
    assert int_id != str_id
