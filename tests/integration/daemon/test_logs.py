"""Secrets never reach the logs: not the hooks' signing secrets, not basic-auth passwords."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from support.factory import HookdFactory
from support.helpers import Amqp, Names, Receiver, hook_entry


def test_no_secret_in_logs_after_full_cycle(
    hookd: HookdFactory, receiver: Receiver, amqp: Amqp, prefix: Names, tmp_path: Path
) -> None:
    """No secret or password is logged across deliveries, retry, dead letter, invalid, ping, reloads, SIGTERM."""
    token = uuid.uuid4().hex
    secrets = {
        "plain": f"whsec-plain-{token}",
        "env": f"whsec-env-{token}",
        "file": f"whsec-file-{token}",
        "password": f"basic-pw-{token}",
    }
    env = {"HOOKD_IT_SECRET": secrets["env"]}
    (tmp_path / "hook.secret").write_text(secrets["file"] + "\n", encoding="utf-8")
    receiver.program("/flaky", 500)
    receiver.program("/gone", then=404)
    hooks = [
        hook_entry("plain", receiver.url("/ok"), secret=secrets["plain"]),
        hook_entry("env", receiver.url("/flaky"), secret_env="HOOKD_IT_SECRET"),
        hook_entry("file", receiver.url("/gone"), secret_file="hook.secret"),
        hook_entry(
            "auth",
            receiver.url("/auth"),
            secret=secrets["plain"] + "-2",
            basic_auth={"username": "hookd", "password": secrets["password"]},
        ),
    ]
    daemon = hookd.start(hooks, env=env, logging={"level": "debug"})

    event_id = amqp.publish_event(prefix, "job.failed", {"id": 1, "note": "full cycle"})
    amqp.publish(prefix.exchange, "job.failed", b"not json", message_id="evt-bad", headers={"account_id": "acme"})
    daemon.wait_log("delivery.attempt", event_id=event_id, hook_id="env", outcome="delivered")
    daemon.wait_log("delivery.dead_lettered", hook_id="file")
    daemon.wait_log("event.invalid")
    ping = hookd.cli("ping", "auth", "--config", str(hookd.config_path), env=env)
    assert ping.returncode == 0, ping.stderr
    receiver.wait_for(2, "/auth")
    daemon.send(signal.SIGHUP)
    daemon.wait_log("subscriptions.reloaded")
    hookd.write_hooks([*hooks, {**hook_entry("broken", "ftp://nowhere/"), "secret": secrets["plain"]}])
    daemon.send(signal.SIGHUP)
    daemon.wait_log("subscriptions.reload_failed")
    daemon.send(signal.SIGTERM)
    assert daemon.wait_exit() == 0

    output = daemon.output() + ping.stdout + ping.stderr
    assert len(daemon.logs()) >= 10
    for name, secret in secrets.items():
        assert secret not in output, f"the {name} secret appears in hookd's output"


def test_reload_failure_does_not_log_secret(hookd: HookdFactory, receiver: Receiver) -> None:
    """A hooks file whose YAML breaks on a secret's line is reported on reload without echoing the secret."""
    secret = f"tk-{uuid.uuid4().hex[:12]}"  # short enough for YAML's error snippet to quote it whole
    daemon = hookd.start([hook_entry("h", receiver.url("/h"))])

    hookd.hooks_path.write_text(
        "hooks:\n"
        '  - id: "h"\n'
        '    account_id: "acme"\n'
        f'    url: "{receiver.url("/h")}"\n'
        '    events: ["job"]\n'
        f'    secret: "{secret}\n',  # the closing quote is missing
        encoding="utf-8",
    )
    daemon.send(signal.SIGHUP)

    [failed] = daemon.wait_log("subscriptions.reload_failed")
    assert secret not in daemon.output(), failed
