"""The security acceptance tests against the real daemon, broker and receiver (issue 5).

SSRF: internal destinations in many spellings, a name resolving to loopback and a redirect to an
internal address are each dead-lettered `ssrf_blocked`, logged, and never connected to; allowlists
and the per-hook override let exactly what they name through. Only loopback is ever a target here:
the internal listeners are 127.0.0.1, 127.0.0.2 and ::1, so a failing guard hits nothing but them.
Signatures: real deliveries verify with the PyPI `standardwebhooks` library, also during a rotation
overlap with either secret. Logs: a full delivery cycle with known secrets leaves none in the output.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, Reply, config_document, hook_entry, settle, signature
from support.netfakes import Tripwire, host_in_url

from hookd.signing import whsec

#: Spellings of internal addresses that all land on the tripwire's loopback listeners. Other IPv4
#: spellings (`2130706433`, `0x7f.1`, `127.1`...) never get this far: the URL rules refuse them in the
#: hooks file, and a stored one at every attempt (tests/integration/security/test_delivery_guard.py).
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.0.0.2",
    "0.0.0.0",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "0:0:0:0:0:ffff:7f00:1",
]


def _headers(recorded: Any) -> dict[str, str]:
    return {name: value for name, value in recorded.headers.items()}


def _blocked(amqp: Amqp, names: Names, count: int) -> dict[str, dict[str, Any]]:
    letters = amqp.wait_messages(names.dead, count, timeout_s=20)
    return {str(letter.headers["hook_id"]): letter.headers for letter in letters}


# -- SSRF ---------------------------------------------------------------------------------------------------------
def test_internal_spellings_are_dead_lettered_without_connection(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, tripwire: Tripwire
) -> None:
    """Every spelling of an internal address is dead-lettered ssrf_blocked, logged, and never connected to."""
    hosts = [h for h in LOOPBACK_SPELLINGS if ":" not in h or tripwire.has("::1")]
    hooks = [hook_entry(f"h{i}", f"http://{host_in_url(h)}:{tripwire.port}/in") for i, h in enumerate(hosts)]
    daemon = hookd.start(hooks, delivery={"allow_private_networks": False})

    amqp.publish_event(prefix, "job.failed")

    letters = _blocked(amqp, prefix, len(hooks))
    assert {hook_id: h["reason"] for hook_id, h in letters.items()} == {h["id"]: "ssrf_blocked" for h in hooks}
    daemon.wait_log("delivery.dead_lettered", count=len(hooks), reason="ssrf_blocked")
    assert len(daemon.find("delivery.attempt", outcome="blocked")) >= len(hooks)
    settle()
    assert tripwire.accepted == 0


def test_name_resolving_to_loopback_is_dead_lettered_without_connection(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, tripwire: Tripwire
) -> None:
    """A hook on `localhost` (a name whose addresses are loopback) is refused after resolution, no connection."""
    daemon = hookd.start(
        [hook_entry("local-name", f"http://localhost:{tripwire.port}/in")], delivery={"allow_private_networks": False}
    )

    amqp.publish_event(prefix, "job.failed")

    assert _blocked(amqp, prefix, 1)["local-name"]["reason"] == "ssrf_blocked"
    [line] = daemon.wait_log("delivery.dead_lettered", hook_id="local-name")
    assert line["reason"] == "ssrf_blocked"
    settle()
    assert tripwire.accepted == 0


def test_redirect_to_an_internal_address_is_dead_lettered_ssrf_blocked(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver, tripwire: Tripwire
) -> None:
    """A 302 from an allowed receiver to an internal address is not followed and is dead-lettered ssrf_blocked."""
    receiver.program("/redirect", then=Reply(302, headers={"Location": tripwire.url("127.0.0.2", "/meta-data")}))
    hookd.start(
        [hook_entry("redirect", receiver.url("/redirect"))],
        delivery={"allow_private_networks": False, "allowed_networks": ["127.0.0.1/32"]},
    )

    amqp.publish_event(prefix, "job.failed")

    assert _blocked(amqp, prefix, 1)["redirect"]["reason"] == "ssrf_blocked"
    settle()
    assert tripwire.accepted == 0 and len(receiver.requests("/redirect")) == 1


def test_allowlist_lets_exactly_what_it_names_through(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver, tripwire: Tripwire
) -> None:
    """With allowed_networks [127.0.0.1/32], 127.0.0.1 is delivered to; 127.0.0.2 and ::1 are blocked."""
    hooks = [hook_entry("allowed", receiver.url("/ok")), hook_entry("alias", tripwire.url("127.0.0.2"))]
    if tripwire.has("::1"):
        hooks.append(hook_entry("v6", tripwire.url("::1")))
    hookd.start(hooks, delivery={"allow_private_networks": False, "allowed_networks": ["127.0.0.1/32"]})

    amqp.publish_event(prefix, "job.failed")

    receiver.wait_for(1, "/ok")
    letters = _blocked(amqp, prefix, len(hooks) - 1)
    assert set(letters) == {h["id"] for h in hooks[1:]}
    assert all(h["reason"] == "ssrf_blocked" for h in letters.values())
    settle()
    assert tripwire.accepted == 0


def test_per_hook_allow_private_lets_only_that_hook_through(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver
) -> None:
    """A hook the operator marked allow_private in the hooks file is delivered; its sibling is blocked."""
    hookd.start(
        [
            hook_entry("trusted", receiver.url("/trusted"), allow_private=True),
            hook_entry("untrusted", receiver.url("/untrusted")),
        ],
        delivery={"allow_private_networks": False},
    )

    amqp.publish_event(prefix, "job.failed")

    receiver.wait_for(1, "/trusted")
    assert _blocked(amqp, prefix, 1)["untrusted"]["reason"] == "ssrf_blocked"
    assert receiver.requests("/untrusted") == []


# -- Standard Webhooks --------------------------------------------------------------------------------------------
def test_deliveries_verify_with_the_standardwebhooks_library(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver
) -> None:
    """Each attempt (first and retry) verifies with standardwebhooks and the whsec_ secret; ids match, stamps move."""
    secret = "XP_bXIFLbBngvoCGxhywFDBi7iV5DzZBJrbbwiKbmsk"
    receiver.program("/std", 503)
    hookd.start(
        [hook_entry("std", receiver.url("/std"), secret=secret)],
        delivery={"inline_attempts": 1, "retry_delays_s": [2]},
    )

    amqp.publish_event(prefix, "job.failed", {"id": 7, "state": "failed"})

    first, second = receiver.wait_for(2, "/std", timeout_s=20)[:2]
    for recorded in (first, second):
        Webhook(whsec(secret)).verify(recorded.body, _headers(recorded), json_parse=False)
        assert recorded.header("webhook-id") == recorded.header("X-Hook-Delivery")
        assert recorded.header("X-Hook-Signature") == signature(secret, recorded.body)
    assert int(second.header("webhook-timestamp") or 0) > int(first.header("webhook-timestamp") or 0)
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec("not-the-secret")).verify(first.body, _headers(first), json_parse=False)


def _db_config(hookd: HookdFactory, url: str) -> Path:
    doc = config_document(broker_url=hookd.broker_url, names=hookd.names, hooks_path=hookd.hooks_path)
    doc["subscriptions"] = {"source": "db", "url": url, "poll_interval_s": 0.2}
    hookd.config_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return hookd.config_path


def _hooks_cli(hookd: HookdFactory, *args: str) -> dict[str, Any]:
    result = hookd.cli("hooks", *args, "--config", str(hookd.config_path), "--json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_rotation_overlap_verifies_with_either_secret(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver, tmp_path: Path
) -> None:
    """During a reset-secret --overlap, receivers with either secret verify; X-Hook-Signature uses the new one."""
    _db_config(hookd, f"sqlite:///{tmp_path / 'hooks.sqlite3'}")
    hook = _hooks_cli(hookd, "create", "--account", "acme", "--url", receiver.url("/rot"), "--events", "job")
    daemon = hookd.start()
    reloads = len(daemon.find("subscriptions.reloaded"))
    rotated = _hooks_cli(hookd, "reset-secret", hook["id"], "--overlap", "1h")
    assert rotated["secret_whsec"] == whsec(rotated["secret"])
    daemon.wait_log("subscriptions.reloaded", count=reloads + 1, timeout_s=10)

    amqp.publish_event(prefix, "job.failed")

    [recorded] = receiver.wait_for(1, "/rot")
    headers = _headers(recorded)
    Webhook(hook["secret_whsec"]).verify(recorded.body, headers, json_parse=False)  # a receiver not yet switched
    Webhook(rotated["secret_whsec"]).verify(recorded.body, headers, json_parse=False)  # one already switched
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert recorded.header("X-Hook-Signature") == signature(rotated["secret"], recorded.body)


def test_rotation_without_overlap_leaves_only_the_new_secret(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver, tmp_path: Path
) -> None:
    """After a plain reset-secret, only the new secret verifies webhook-signature."""
    _db_config(hookd, f"sqlite:///{tmp_path / 'hooks.sqlite3'}")
    hook = _hooks_cli(hookd, "create", "--account", "acme", "--url", receiver.url("/rot"), "--events", "job")
    daemon = hookd.start()
    reloads = len(daemon.find("subscriptions.reloaded"))
    rotated = _hooks_cli(hookd, "reset-secret", hook["id"])
    daemon.wait_log("subscriptions.reloaded", count=reloads + 1, timeout_s=10)

    amqp.publish_event(prefix, "job.failed")

    [recorded] = receiver.wait_for(1, "/rot")
    Webhook(rotated["secret_whsec"]).verify(recorded.body, _headers(recorded), json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret_whsec"]).verify(recorded.body, _headers(recorded), json_parse=False)


# -- logs -------------------------------------------------------------------------------------------------------------
def test_full_cycle_leaves_no_secret_in_the_logs(
    hookd: HookdFactory, amqp: Amqp, prefix: Names, receiver: Receiver
) -> None:
    """Success, retries, a permanent failure, a reload and a stop (debug level): no known secret in the output."""
    secrets = {name: f"{name}-secret-{os.urandom(12).hex()}" for name in ("ok", "flaky", "bad", "env")}
    password = f"pw-{os.urandom(8).hex()}"
    receiver.program("/flaky", 500, 500, 500)
    receiver.program("/bad", 401)
    auth = {"username": "hookd", "password": password}
    hooks = [
        hook_entry("ok", receiver.url("/ok"), secret=secrets["ok"], basic_auth=auth),
        hook_entry("flaky", receiver.url("/flaky"), secret=secrets["flaky"], basic_auth=auth),
        hook_entry("bad", receiver.url("/bad"), secret=secrets["bad"]),
        hook_entry("env", receiver.url("/env"), secret_env="HOOK_ENV_SECRET"),
    ]
    daemon = hookd.start(
        hooks,
        env={"HOOK_ENV_SECRET": secrets["env"]},
        delivery={"retry_delays_s": [1]},
        logging={"level": "debug"},
    )

    amqp.publish_event(prefix, "job.failed")
    receiver.wait_for(1, "/ok")
    receiver.wait_for(1, "/env")
    amqp.wait_messages(prefix.dead, 1, timeout_s=20)  # bad: a permanent failure
    receiver.wait_for(4, "/flaky", timeout_s=20)  # two inline attempts, then the durable retry
    daemon.send(signal.SIGHUP)
    daemon.wait_log("subscriptions.reloaded")
    daemon.send(signal.SIGTERM)
    assert daemon.wait_exit() == 0

    output = daemon.output()
    basic = base64.b64encode(f"hookd:{password}".encode()).decode()
    forbidden = [password, basic, *secrets.values(), *(whsec(s) for s in secrets.values())]
    forbidden += [base64.b64encode(s.encode()).decode() for s in secrets.values()]
    assert [value for value in forbidden if value in output] == []
    assert daemon.find("delivery.attempt")  # the logs were written, and are JSON lines
