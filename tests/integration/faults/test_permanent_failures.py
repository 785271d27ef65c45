"""Answers that end a delivery at once: 410 disables the hook, a redirect is never followed."""

from __future__ import annotations

from support.factory import HookdFactory
from support.helpers import Amqp, Names, hook_entry, settle

from .harness import dead_letters, delivery, publish_events, wait_accepted
from .ledger import DeadLetter, classify
from .receiver import FaultReceiver, Reply, Script


def test_gone_hook_is_disabled_and_dead_lettered(
    hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names
) -> None:
    """A 410 dead-letters the delivery as hook_gone and disables the hook: its next event is not sent to it."""
    receiver.on("/gone", Script(then=410))
    hooks = [hook_entry("gone", receiver.url("/gone")), hook_entry("control", receiver.url("/control"))]
    daemon = hookd.start(hooks, delivery=delivery())
    [first] = publish_events(amqp, prefix, 1)

    [got] = amqp.wait_messages(prefix.dead, 1, timeout_s=15)
    letter = DeadLetter.from_headers(got.headers)
    assert (letter.hook_id, letter.event_id, letter.reason) == ("gone", first, "hook_gone")
    disabled = daemon.wait_log("hook.disabled", hook_id="gone", timeout_s=10)[0]
    assert "gone" in str(disabled.get("reason")), disabled

    [second] = publish_events(amqp, prefix, 1)
    wait_accepted(receiver, [(second, "control")], timeout_s=15)  # the second event has been handled
    settle(0.5)
    assert [r.event_id for r in receiver.requests("/gone")] == [first]
    later = dead_letters(amqp, prefix)
    assert all(lt.reason == "hook_disabled" for lt in later if lt.hook_id == "gone"), later
    expected = [(first, "gone"), (first, "control"), (second, "control")]
    tally = classify(expected, receiver.receipts(), [letter, *later], label="410")
    assert tally.counts() == {"delivered": 2, "duplicated": 0, "lost": 0, "dead_lettered": 1}


def test_redirect_is_not_followed(hookd: HookdFactory, receiver: FaultReceiver, amqp: Amqp, prefix: Names) -> None:
    """A 302 is not followed (its Location gets nothing) and the delivery is dead-lettered as permanent_failure."""
    receiver.on("/moved", Script(then=Reply(302, {"Location": receiver.url("/elsewhere")})))
    hookd.start([hook_entry("moved", receiver.url("/moved"))], delivery=delivery())
    [event_id] = publish_events(amqp, prefix, 1)

    [got] = amqp.wait_messages(prefix.dead, 1, timeout_s=15)
    settle(0.5)
    assert receiver.requests("/elsewhere") == []
    assert len(receiver.requests("/moved")) == 1
    letter = DeadLetter.from_headers(got.headers)
    assert (letter.reason, got.headers.get("last_status")) == ("permanent_failure", 302)
    tally = classify([(event_id, "moved")], receiver.receipts(), [letter], label="302")
    assert tally.counts() == {"delivered": 0, "duplicated": 0, "lost": 0, "dead_lettered": 1}
