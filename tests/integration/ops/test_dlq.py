"""`hookd dlq`: list, show, replay and purge dead letters on a real broker, without losing or reordering any."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Receiver, hook_entry, settle, wait_until

from hookd.broker import BrokerConnection, Outgoing, connect
from hookd.cli.dlq import read_dead_letter, replay_one
from hookd.config import load_settings
from hookd.errors import PublishFailed
from hookd.messages import Delivery, dead_letter_headers, delivery_id

from .conftest import Cli, OpsConfig


class DeadLetters:
    """Publishes dead letters the way the daemon does (hookd's own header builder) to `<prefix>.dead`."""

    def __init__(self, config: OpsConfig) -> None:
        self.config = config
        self.conn: BrokerConnection = connect(load_settings(config.path), name="hookd ops test")

    def add(
        self,
        hook_id: str = "1",
        event: str = "job.failed",
        *,
        account_id: str = "acme",
        attempts: int = 3,
        reason: str = "retries_exhausted",
        at: datetime | None = None,
        body: bytes = b'{"id": 1}',
    ) -> str:
        event_id = f"evt-{uuid.uuid4()}"
        target = Delivery(hook_id, event, event_id, account_id, delivery_id(event_id, hook_id), b"", attempts, 5)
        headers = dead_letter_headers(target, reason=reason, last_status=503, error="HTTP 503", now=at)
        self.conn.publish(Outgoing(self.conn.topology.dead, body, headers, event_id))
        return target.delivery_id

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def dead(ops_config: OpsConfig) -> Iterator[DeadLetters]:
    """The test's config (one hook, id 1) and a publisher of dead letters onto its topology."""
    ops_config.write([hook_entry("1", "http://127.0.0.1:9/x"), hook_entry("2", "http://127.0.0.1:9/y")])
    letters = DeadLetters(ops_config)
    yield letters
    letters.close()


def queued(amqp: Amqp, queue: str, count: int) -> list[dict[str, Any]]:
    """Take the messages of `queue` once `count` are there (for assertions at the end of a test).

    A command's connection returns its unacked messages as it closes, which the broker applies a
    few milliseconds later: wait for them rather than read too early.
    """
    got = [g.headers for g in amqp.wait_messages(queue, count, timeout_s=15)]
    settle()
    return got + [g.headers for g in amqp.drain(queue)]


def ready(amqp: Amqp, queue: str, count: int) -> None:
    """Wait until `queue` holds `count` ready messages, then check it stays so (nothing more arrives)."""
    wait_until(lambda: amqp.message_count(queue) == count, timeout_s=15, what=f"{count} message(s) in {queue}")
    settle()
    assert amqp.message_count(queue) == count


def test_list_prints_one_line_per_dead_letter_and_keeps_the_queue_intact(
    dead: DeadLetters, cli: Cli, amqp: Amqp
) -> None:
    """Each line names hook, event, reason, attempts and time; afterwards the queue holds the same, in order."""
    ids = [dead.add("1", "job.failed"), dead.add("2", "cluster.error", reason="permanent_failure", attempts=1)]
    result = cli("dlq", "list", "--config", str(dead.config.path))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(ids[0])
    for needle in ("hook=1", "event=job.failed", "reason=retries_exhausted", "attempts=3", "at=20"):
        assert needle in lines[0]
    assert "hook=2" in lines[1] and "reason=permanent_failure" in lines[1] and "attempts=1" in lines[1]
    assert [h["delivery_id"] for h in queued(amqp, dead.config.names.dead, len(ids))] == ids


def test_list_filters_by_hook_event_and_since(dead: DeadLetters, cli: Cli) -> None:
    """--hook, --event (name or group) and --since must all match."""
    old = datetime.now(UTC) - timedelta(days=2)
    a = dead.add("1", "job.failed", at=old)
    b = dead.add("1", "job.completed")
    c = dead.add("2", "cluster.error")
    config = str(dead.config.path)

    def listed(*filters: str) -> list[str]:
        result = cli("dlq", "list", "--config", config, "--json", *filters)
        return [row["delivery_id"] for row in result.json()]

    assert listed() == [a, b, c]
    assert listed("--hook", "1") == [a, b]
    assert listed("--event", "job") == [a, b]
    assert listed("--event", "cluster.error") == [c]
    assert listed("--hook", "1", "--since", "1h") == [b]


def test_show_prints_headers_and_body(dead: DeadLetters, cli: Cli) -> None:
    """show gives every header of the dead letter and its original body."""
    ident = dead.add("2", "cluster.error", body=b'{"id": 99, "status": "error"}')
    result = cli("dlq", "show", ident, "--config", str(dead.config.path))
    assert result.code == 0, result.err
    assert f"dead letter {ident}" in result.out
    for needle in (
        "hook id",
        "cluster.error",
        "retries_exhausted",
        "last status",
        "503",
        '{"id": 99, "status": "error"}',
    ):
        assert needle in result.out


def test_unknown_delivery_id_is_exit_2_and_changes_nothing(dead: DeadLetters, cli: Cli, amqp: Amqp) -> None:
    """Asking for a dead letter that is not there is refused before anything is touched."""
    ident = dead.add()
    result = cli("dlq", "replay", "no-such-id", ident, "--config", str(dead.config.path))
    assert result.code == 2
    assert "no-such-id" in result.err
    ready(amqp, dead.config.names.deliveries, 0)
    assert [h["delivery_id"] for h in queued(amqp, dead.config.names.dead, 1)] == [ident]


def test_replay_dry_run_changes_nothing(dead: DeadLetters, cli: Cli, amqp: Amqp) -> None:
    """--dry-run lists what would be replayed and leaves both queues alone."""
    ids = [dead.add(), dead.add()]
    result = cli("dlq", "replay", "--dry-run", "--config", str(dead.config.path))
    assert result.code == 0, result.err
    assert result.out.count("would replay") == 2
    ready(amqp, dead.config.names.deliveries, 0)
    assert [h["delivery_id"] for h in queued(amqp, dead.config.names.dead, len(ids))] == ids


def test_replay_moves_selected_letters_with_their_delivery_ids_and_keeps_the_rest_in_order(
    dead: DeadLetters, cli: Cli, amqp: Amqp
) -> None:
    """Replayed copies carry the same delivery id, attempts so far and a fresh retry budget."""
    first = dead.add("1", attempts=4)
    other = dead.add("2")
    second = dead.add("1", attempts=2)
    last = dead.add("2")
    result = cli("dlq", "replay", "--hook", "1", "--rate", "100/s", "--config", str(dead.config.path))
    assert result.code == 0, result.err
    copies = queued(amqp, dead.config.names.deliveries, 2)
    assert [(h["delivery_id"], h["attempts"], h["retries"], h["hook_id"]) for h in copies] == [
        (first, 4, 0, "1"),
        (second, 2, 0, "1"),
    ]
    assert [h["delivery_id"] for h in queued(amqp, dead.config.names.dead, 2)] == [other, last]


def test_replay_is_rate_capped(dead: DeadLetters, cli: Cli, amqp: Amqp) -> None:
    """--rate 10/s spaces five replays over at least 0.4 s."""
    for _ in range(5):
        dead.add()
    started = time.monotonic()
    result = cli("dlq", "replay", "--rate", "10/s", "--config", str(dead.config.path))
    assert result.code == 0, result.err
    assert time.monotonic() - started >= 0.4
    ready(amqp, dead.config.names.deliveries, 5)


def test_purge_removes_only_the_selected_letters(dead: DeadLetters, cli: Cli, amqp: Amqp) -> None:
    """purge acks what the filters select; --dry-run first changes nothing."""
    keep = dead.add("1", "job.failed")
    drop = dead.add("2", "cluster.error")
    config = str(dead.config.path)
    dry = cli("dlq", "purge", "--hook", "2", "--dry-run", "--config", config)
    assert dry.code == 0 and "would purge" in dry.out and drop in dry.out
    ready(amqp, dead.config.names.dead, 2)
    result = cli("dlq", "purge", "--hook", "2", "--config", config)
    assert result.code == 0, result.err
    assert [h["delivery_id"] for h in queued(amqp, dead.config.names.dead, 1)] == [keep]


def test_bad_rate_and_unknown_event_are_usage_errors(dead: DeadLetters, cli: Cli) -> None:
    """Arguments are checked before the broker is touched (exit 2)."""
    config = str(dead.config.path)
    assert cli("dlq", "replay", "--rate", "fast", "--config", config).code == 2
    assert cli("dlq", "replay", "--rate", "0/s", "--config", config).code == 2
    assert cli("dlq", "list", "--event", "job.exploded", "--config", config).code == 2


class _FakeConnection:
    """Records publish/ack order; `fail` makes publish raise like an unconfirmed message."""

    def __init__(self, *, fail: bool) -> None:
        self.calls: list[str] = []
        self.fail = fail
        self.topology = type("T", (), {"dead": "p.dead", "deliveries": "p.deliveries"})()

    def publish(self, message: Outgoing) -> None:
        self.calls.append(f"publish {message.routing_key} {message.headers['delivery_id']}")
        if self.fail:
            raise PublishFailed("nack")

    def ack(self, tag: int) -> None:
        self.calls.append(f"ack {tag}")


def _letter() -> Any:
    target = Delivery("1", "job.failed", "evt-1", "acme", "d-1", b"", 3, 5)
    return read_dead_letter(7, dead_letter_headers(target, reason="x", last_status=None, error=None), "evt-1", b"{}")


def test_replay_acks_the_dead_letter_only_after_the_copy_is_confirmed() -> None:
    """Publish (confirmed) first, then ack; a refused publish acks nothing."""
    ok = _FakeConnection(fail=False)
    replay_one(ok, _letter())  # type: ignore[arg-type]
    assert ok.calls == ["publish p.deliveries d-1", "ack 7"]
    failing = _FakeConnection(fail=True)
    with pytest.raises(PublishFailed):
        replay_one(failing, _letter())  # type: ignore[arg-type]
    assert failing.calls == ["publish p.deliveries d-1"]


def test_replay_of_a_real_dead_letter_delivers_it_with_the_same_delivery_id(
    ops_config: OpsConfig, hookd: HookdFactory, receiver: Receiver, amqp: Amqp, cli: Cli
) -> None:
    """A delivery refused with 400 is dead-lettered by hookd; replayed, it arrives again with the same id."""
    receiver.program("/r", 400, then=200)
    ops_config.write([hook_entry("1", receiver.url("/r"))], delivery={"breaker_threshold": 0})
    hookd.start()
    names = ops_config.names
    amqp.publish_event(names, "job.failed")
    refused = receiver.wait_for(1, "/r")[0]
    wait_until(lambda: amqp.message_count(names.dead) == 1, what="the refused delivery in the dead-letter queue")

    listed = cli("dlq", "list", "--json", "--config", str(ops_config.path)).json()
    assert [(row["delivery_id"], row["reason"]) for row in listed] == [(refused.delivery, "permanent_failure")]
    result = cli("dlq", "replay", "--config", str(ops_config.path))
    assert result.code == 0, result.err

    again = receiver.wait_for(2, "/r")[1]
    assert again.delivery == refused.delivery
    assert again.attempt == refused.attempt + 1
    ready(amqp, names.dead, 0)
