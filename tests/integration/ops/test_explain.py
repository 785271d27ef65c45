"""`hookd explain`: for each hook of an account, would it receive the event, and the reason why not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.helpers import hook_entry, wait_until

from hookd.broker import Outgoing, connect
from hookd.cli.explain import explain
from hookd.config import DeliverySettings, load_settings
from hookd.messages import Delivery, dead_letter_headers, delivery_id
from hookd.ordering import ChainKey
from hookd.state import ordered
from hookd.state.db import Database
from hookd.subscriptions.model import Hook

from .conftest import Cli, OpsConfig

PUBLIC = "https://8.8.8.8/hooks"  # a public address literal: no DNS lookup, allowed by the policy
OPENED = datetime(2026, 11, 29, 2, 54, 25, tzinfo=UTC)


def hooks() -> list[dict[str, Any]]:
    """One hook per reason, plus one that receives, and one of another account."""
    return [
        hook_entry("1", PUBLIC, events=["job.failed"]),
        hook_entry("2", PUBLIC, events=["job"], active=False),
        hook_entry("3", PUBLIC, events=["cluster"]),
        hook_entry("4", PUBLIC, events=["job.failed"]),
        hook_entry("5", PUBLIC, events=["job.failed"]),
        hook_entry("6", "http://127.0.0.1:8080/in", events=["job.failed"]),
        hook_entry("7", PUBLIC, events=["job.failed"], account_id="other"),
    ]


def health(state: Path, *rows: tuple[str, str, datetime | None, str | None]) -> Database:
    """The state database with hookd_hook_health rows (hook, breaker, opened_at, disabled_reason)."""
    db = Database.from_url(f"sqlite:///{state}")
    db.migrate()
    with db.transaction(write=True) as tx:
        for hook_id, breaker, opened_at, reason in rows:
            tx.execute(
                "INSERT INTO hookd_hook_health (hook_id, breaker, opened_at, disabled_reason, disabled_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (hook_id, breaker, opened_at, reason, OPENED if reason else None, OPENED),
            )
    return db


@pytest.fixture
def config(ops_config: OpsConfig) -> OpsConfig:
    """Hooks 1-7 (see `hooks`), the SSRF guard on, hook 4 disabled as gone, hook 5's circuit open."""
    ops_config.write(hooks(), delivery={"allow_private_networks": False})
    health(ops_config.state_path, ("4", "closed", None, "gone"), ("5", "open", OPENED, None)).close()
    return ops_config


def test_each_reason_is_explained_per_hook_of_the_account(config: OpsConfig, cli: Cli) -> None:
    """Receives, inactive, not subscribed, disabled, circuit open, blocked; other accounts' hooks are not listed."""
    result = cli("explain", "--config", str(config.path), "--account", "acme", "job.failed")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "1  would receive",
        "2  would not receive: inactive",
        "3  would not receive: not subscribed to job.failed",
        "4  would not receive: disabled: gone",
        "5  would not receive: circuit open since 2026-11-29T02:54:25Z",
        "6  would not receive: blocked by network policy: loopback address 127.0.0.1 is not allowed (ssrf guard)",
    ]


def test_json_output_carries_codes_and_health(config: OpsConfig, cli: Cli) -> None:
    """--json gives a machine-readable verdict per hook."""
    result = cli("explain", "--config", str(config.path), "--account", "acme", "job.failed", "--json")
    doc = result.json()
    assert (doc["event"], doc["account_id"]) == ("job.failed", "acme")
    by_id = {h["hook_id"]: h for h in doc["hooks"]}
    assert set(by_id) == {"1", "2", "3", "4", "5", "6"}
    assert by_id["1"]["would_receive"] is True
    assert [by_id[i]["code"] for i in "23456"] == ["inactive", "not_subscribed", "disabled", "circuit_open", "blocked"]
    assert by_id["5"]["opened_at"] == "2026-11-29T02:54:25.000Z"


def test_private_networks_allowed_lifts_the_network_reason(ops_config: OpsConfig, cli: Cli) -> None:
    """With delivery.allow_private_networks the loopback hook would receive."""
    ops_config.write(hooks(), delivery={"allow_private_networks": True})
    result = cli("explain", "--config", str(ops_config.path), "--account", "acme", "job.failed")
    assert "6  would receive" in result.out.splitlines()


def test_a_missing_state_database_means_healthy(ops_config: OpsConfig, cli: Cli) -> None:
    """No state database yet (no worker ran): no hook is reported disabled or open."""
    ops_config.write(hooks(), delivery={"allow_private_networks": False})
    result = cli("explain", "--config", str(ops_config.path), "--account", "acme", "job.failed")
    assert result.code == 0, result.err
    assert "4  would receive" in result.out.splitlines()
    assert "5  would receive" in result.out.splitlines()
    assert not ops_config.state_path.exists()


def test_inactive_hooks_still_answer_pings(config: OpsConfig, cli: Cli) -> None:
    """ping reaches every hook, inactive ones too, as in the daemon."""
    result = cli("explain", "--config", str(config.path), "--account", "acme", "ping")
    assert "2  would receive" in result.out.splitlines()
    assert "3  would receive" in result.out.splitlines()


def test_unknown_event_or_missing_account_is_exit_2(config: OpsConfig, cli: Cli) -> None:
    """An event outside the catalogue, or an event without --account, is a usage error."""
    unknown = cli("explain", "--config", str(config.path), "--account", "acme", "job.exploded")
    assert unknown.code == 2
    assert "unknown event 'job.exploded'" in unknown.err
    assert cli("explain", "--config", str(config.path), "job.failed").code == 2


def test_a_delivery_id_from_the_history_explains_its_hook(config: OpsConfig, cli: Cli) -> None:
    """Given a recorded delivery id, only that delivery's hook is explained, for its event."""
    ident = delivery_id("evt-77", "5")
    db = Database.from_url(f"sqlite:///{config.state_path}")
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO hookd_deliveries (delivery_id, hook_id, event, event_id, account_id, state, attempts)"
            " VALUES (?, '5', 'job.failed', 'evt-77', 'acme', 'failed', 3)",
            (ident,),
        )
    db.close()
    result = cli("explain", "--config", str(config.path), ident)
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["5  would not receive: circuit open since 2026-11-29T02:54:25Z"]


def test_a_dead_letter_id_is_found_in_the_queue_and_left_there(config: OpsConfig, cli: Cli) -> None:
    """A delivery id known only to the dead-letter queue is explained, and the dead letter stays."""
    conn = connect(load_settings(config.path), name="hookd ops test")
    try:
        event_id = f"evt-{uuid.uuid4()}"
        target = Delivery("3", "job.failed", event_id, "acme", delivery_id(event_id, "3"), b"{}", 2, 0)
        headers = dead_letter_headers(target, reason="permanent_failure", last_status=400, error=None)
        conn.publish(Outgoing(conn.topology.dead, b"{}", headers, event_id))
        result = cli("explain", "--config", str(config.path), target.delivery_id)
        assert result.code == 0, result.err
        assert result.out.splitlines() == ["3  would not receive: not subscribed to job.failed"]
        # explain's connection returns the message as it closes; the broker applies that just after.
        wait_until(lambda: conn.get(conn.topology.dead), timeout_s=15, what="the dead letter back in its queue")
    finally:
        conn.close()


def test_an_unknown_id_is_exit_2(config: OpsConfig, cli: Cli) -> None:
    """An id found neither in the history nor in the dead-letter queue is a usage error."""
    result = cli("explain", "--config", str(config.path), "0b4d6c1e-0000-5000-8000-000000000000")
    assert result.code == 2
    assert "neither an event name nor a delivery id" in result.err


def test_allowed_networks_let_exactly_those_addresses_through() -> None:
    """delivery.allowed_networks admits a private receiver inside it, and only there."""
    hook = Hook(id="9", account_id="acme", url="http://10.20.0.5/in", events=("job",), secret="s")
    allowed = DeliverySettings(allowed_networks=("10.20.0.0/16",))
    assert explain(hook, hook.id, "job.failed", None, allowed).would_receive
    elsewhere = DeliverySettings(allowed_networks=("10.30.0.0/16",))
    verdict = explain(hook, hook.id, "job.failed", None, elsewhere)
    assert (verdict.would_receive, verdict.code) == (False, "blocked")


def test_a_delivery_waiting_behind_an_earlier_one_says_which(config: OpsConfig, cli: Cli) -> None:
    """Ordered delivery: `explain DELIVERY_ID` of a delivery stored behind its job's head names the
    head (its event, attempts, and that it waits in a durable retry); --json carries the same."""
    head = Delivery("1", "job.failed", "evt-a", "acme", delivery_id("evt-a", "1"), b'{"id": 9}', 3, 1)
    waiting = Delivery("1", "job.failed", "evt-b", "acme", delivery_id("evt-b", "1"), b'{"id": 9}')
    key = ChainKey("1", "acme", "job:9")
    with Database.from_url(f"sqlite:///{config.state_path}") as db:
        db.migrate()
        ordered.store(db, [ordered.Row(key, 1, head, away=True), ordered.Row(key, 2, waiting)])
    result = cli("explain", "--config", str(config.path), waiting.delivery_id)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"1  would receive, later: it waits for delivery {head.delivery_id} (job.failed of job:9, 3 attempt(s)"
        " so far, waiting in a durable retry) to end"
    ]
    doc = cli("explain", "--config", str(config.path), waiting.delivery_id, "--json").json()
    assert doc["found_in"] == "waiting"
    assert doc["hooks"][0]["waits_for"]["delivery_id"] == head.delivery_id
