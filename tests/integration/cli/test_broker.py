"""`hooks ping` and `deliveries redeliver` publish targeted messages to `<prefix>.deliveries` (real RabbitMQ)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookd.messages import delivery_id
from hookd.state.db import Database

from .conftest import Broker, Cli, ConfigWriter, Recorder, attempt, settlement


@pytest.fixture
def broker_cli(
    capsys: pytest.CaptureFixture[str], write_config: ConfigWriter, yaml_config: Path, state_url: str, broker: Broker
) -> Cli:
    """`hookd` on the YAML hooks (hook 42), the state database `state_url` and the test's own topology."""
    hooks = str(yaml_config.parent / "hooks.yaml")
    sections = broker.sections()
    return Cli(
        capsys, write_config(subscriptions={"source": "yaml", "path": hooks}, state={"url": state_url}, **sections)
    )


def test_ping_publishes_a_ping_for_the_hook(broker_cli: Cli, broker: Broker) -> None:
    """hooks ping puts a ping for that hook on the deliveries queue, with the hook's public fields as body."""
    result = broker_cli("hooks", "ping", "42", "--json")
    sent = result.json()
    message = broker.get(broker.topology.deliveries)
    assert message is not None
    props, body = message
    assert props.headers == {
        "hook_id": "42",
        "event": "ping",
        "event_id": props.message_id,
        "account_id": "acme",
        "delivery_id": sent["delivery_id"],
        "attempts": 0,
        "retries": 0,
    }
    assert sent["delivery_id"] == delivery_id(props.message_id, "42") and sent["queue"] == broker.topology.deliveries
    assert json.loads(body)["id"] == "42" and b"yaml-secret-value" not in body


def test_ping_prints_the_same_line_as_hookd_ping(broker_cli: Cli, broker: Broker) -> None:
    """The human output of hooks ping is `hookd ping`'s: "ping queued for hook ID delivery=..."."""
    result = broker_cli("hooks", "ping", "42")
    assert result.code == 0 and result.out.startswith("ping queued for hook 42 delivery=")


def test_redeliver_publishes_the_stored_body_with_the_same_delivery_id(
    broker_cli: Cli, broker: Broker, record: Recorder
) -> None:
    """redeliver sends the recorded body again: same delivery id, attempts continue, retries reset, message_id."""
    body = b'{"id": 7, "status": "failed"}'
    record(
        attempt("d-1", status=500, outcome="retryable", body=body),
        attempt("d-1", number=2, status=500, outcome="retryable", body=body),
        settlement("d-1", "failed", 2, body=body),
    )
    result = broker_cli("deliveries", "redeliver", "d-1")
    assert result.code == 0 and result.out.startswith("redelivery queued for delivery d-1")
    message = broker.get(broker.topology.deliveries)
    assert message is not None
    props, sent = message
    assert sent == body and props.message_id == "evt-d-1"
    assert props.headers == {
        "hook_id": "42",
        "event": "job.failed",
        "event_id": "evt-d-1",
        "account_id": "acme",
        "delivery_id": "d-1",
        "attempts": 2,
        "retries": 0,
    }


def test_redeliver_unknown_delivery_is_refused(broker_cli: Cli, broker: Broker, record: Recorder) -> None:
    """An id the state database does not know exits 2 and publishes nothing."""
    record(attempt("d-1"))
    result = broker_cli("deliveries", "redeliver", "nope")
    assert result.code == 2 and "no delivery with id 'nope'" in result.err
    assert broker.get(broker.topology.deliveries) is None


def test_redeliver_without_a_body_is_refused(broker_cli: Cli, broker: Broker, record: Recorder, state_url: str) -> None:
    """A delivery whose body is not stored cannot be sent again: exit 2, nothing published."""
    record(attempt("d-1"))
    with Database.from_url(state_url) as db, db.transaction(write=True) as tx:
        tx.execute("UPDATE hookd_deliveries SET body = NULL WHERE delivery_id = ?", ("d-1",))
    result = broker_cli("deliveries", "redeliver", "d-1")
    assert result.code == 2 and "no stored body" in result.err
    assert broker.get(broker.topology.deliveries) is None
