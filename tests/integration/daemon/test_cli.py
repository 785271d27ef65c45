"""The command line around the daemon: publish, ping, check-config, receive."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support.factory import HookdFactory
from support.helpers import (
    Amqp,
    Names,
    Receiver,
    free_port,
    hook_entry,
    hookd_command,
    secret_of,
    signature,
    wait_until,
)


def test_publish_cli_round_trip(hookd: HookdFactory, receiver: Receiver, prefix: Names, tmp_path: Path) -> None:
    """`hookd publish` from a file and from stdin reaches the hook byte for byte under the given id."""
    hooks = [hook_entry("h", receiver.url("/h"), account_id="acme", events=["job", "cluster"])]
    daemon = hookd.start(hooks)
    body = b'{"id": 1042,  "status" : "completed", "note": "\xc3\xa9t\xc3\xa9"}\n'
    (tmp_path / "job.json").write_bytes(body)

    publish_file = ["publish", "job.completed", "--account", "acme", "--id", "evt-cli-1", "job.json"]
    publish_stdin = ["publish", "cluster.idled", "--account", "acme", "-"]
    config = ["--config", str(hookd.config_path)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # two interpreter start-ups at once
        file_run = pool.submit(hookd.cli, *publish_file, *config)
        stdin_run = pool.submit(hookd.cli, *publish_stdin, *config, stdin=b'{"id": 7}')
    from_file, from_stdin = file_run.result(), stdin_run.result()

    assert from_file.returncode == 0, from_file.stderr
    assert from_stdin.returncode == 0, from_stdin.stderr
    requests = {r.event: r for r in receiver.wait_for(2, "/h")}
    assert requests["job.completed"].body == body
    assert requests["job.completed"].header("X-Hook-Signature") == signature(secret_of(hooks, "h"), body)
    assert requests["cluster.idled"].body == b'{"id": 7}'
    daemon.wait_log("delivery.attempt", event_id="evt-cli-1", outcome="delivered")


def test_publish_cli_refuses_invalid_body(hookd: HookdFactory, amqp: Amqp, prefix: Names, tmp_path: Path) -> None:
    """`hookd publish` exits 2 and publishes nothing when the body is not JSON."""
    hookd.write_config([])
    (tmp_path / "bad.json").write_bytes(b"{not json")
    observer = amqp.observe(prefix.exchange)

    result = hookd.cli("publish", "job.failed", "--account", "acme", "--config", str(hookd.config_path), "bad.json")

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "invalid" in result.stderr
    assert amqp.drain(observer) == []


def test_publish_cli_refuses_unknown_event(hookd: HookdFactory, tmp_path: Path) -> None:
    """`hookd publish` exits 2 for an event name outside the catalogue."""
    hookd.write_config([])
    (tmp_path / "job.json").write_bytes(b'{"id": 1}')

    result = hookd.cli("publish", "job.exploded", "--account", "acme", "--config", str(hookd.config_path), "job.json")

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "job.exploded" in result.stderr


def test_ping_reaches_hook_signed_without_secret(hookd: HookdFactory, receiver: Receiver, prefix: Names) -> None:
    """`hookd ping ID` delivers a signed `ping` whose body is the hook's public fields, never its secret."""
    hooks = [
        hook_entry(
            "p1",
            receiver.url("/ping"),
            name="ops",
            events=["job.failed"],
            basic_auth={"username": "u", "password": "pw-not-in-body"},
        ),
        hook_entry("p2", receiver.url("/other")),
    ]
    hookd.start(hooks)
    secret = secret_of(hooks, "p1")

    result = hookd.cli("ping", "p1", "--config", str(hookd.config_path))

    assert result.returncode == 0, result.stderr
    [request] = receiver.wait_for(1, "/ping")
    assert request.event == "ping"
    assert request.hook_id == "p1"
    assert request.attempt == 1
    assert request.header("X-Hook-Signature") == signature(secret, request.body)
    assert secret.encode() not in request.body
    assert b"pw-not-in-body" not in request.body
    public = json.loads(request.body)
    assert str(public["id"]) == "p1"
    assert receiver.url("/ping") in request.body.decode()
    assert receiver.requests("/other") == []


def test_ping_unknown_hook_fails(hookd: HookdFactory) -> None:
    """`hookd ping` of an id that is not in the hooks file fails with a non-zero exit."""
    hookd.write_config([hook_entry("p1", "http://127.0.0.1:9/")])

    result = hookd.cli("ping", "nope", "--config", str(hookd.config_path))

    assert result.returncode != 0
    assert "nope" in result.stderr


def test_check_config_ok(hookd: HookdFactory) -> None:
    """`hookd check-config` exits 0 for valid files."""
    hookd.write_config([hook_entry("1", "https://hooks.example.com/a"), hook_entry("2", "https://x.example.org/")])

    result = hookd.cli("check-config", "--config", str(hookd.config_path))

    assert result.returncode == 0, result.stderr


def test_check_config_warns_about_hooks_the_network_policy_refuses(hookd: HookdFactory) -> None:
    """A hook on a private literal address is valid config but would be refused on every attempt:
    check-config still exits 0 and warns about that hook only (not one the operator allowed)."""
    hookd.write_config(
        [
            hook_entry("internal", "http://10.1.2.3/hook"),
            hook_entry("local", "http://localhost:8080/hook"),
            {**hook_entry("allowed", "http://10.1.2.4/hook"), "allow_private": True},
            hook_entry("public", "https://hooks.example.com/a"),
        ],
        delivery={"allow_private_networks": False},
    )

    result = hookd.cli("check-config", "--config", str(hookd.config_path))

    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("hookd: warning:")]
    assert [line.split()[3] for line in warned] == ["internal:", "local:"], result.stderr
    assert all("ssrf_blocked" in line for line in warned)


def test_check_config_lists_every_config_problem(hookd: HookdFactory) -> None:
    """`hookd check-config` exits 2 and names every bad key of hookd.yaml at once."""
    hookd.write_config(
        [],
        broker={"queue_type": "lazy", "surprise": 1},
        delivery={"timeout_s": -1, "retry_delays_s": "soon"},
    )

    result = hookd.cli("check-config", "--config", str(hookd.config_path))

    assert result.returncode == 2, (result.stdout, result.stderr)
    for key in ("broker.queue_type", "broker.surprise", "delivery.timeout_s", "delivery.retry_delays_s"):
        assert key in result.stderr, key


def test_check_config_lists_every_hooks_problem(hookd: HookdFactory) -> None:
    """`hookd check-config` exits 2 and names every problem of the hooks file at once."""
    hookd.write_config(
        [
            hook_entry("1", "ftp://hooks.example.com/a"),
            hook_entry("2", "https://ok.example.com/", events=["job.exploded"]),
            {"id": "3", "account_id": "acme", "url": "https://ok.example.com/", "events": ["job"]},
        ]
    )

    result = hookd.cli("check-config", "--config", str(hookd.config_path))

    assert result.returncode == 2, (result.stdout, result.stderr)
    for where in ("hooks[0].url", "hooks[1].events", "hooks[2]"):
        assert where in result.stderr, where


def test_check_config_lists_problems_of_both_files(hookd: HookdFactory) -> None:
    """`hookd check-config` reports the problems of hookd.yaml and of the hooks file in one run."""
    hookd.write_config([hook_entry("1", "ftp://hooks.example.com/a")], delivery={"timeout_s": -1})

    result = hookd.cli("check-config", "--config", str(hookd.config_path))

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "delivery.timeout_s" in result.stderr
    assert "hooks[0].url" in result.stderr


def test_receive_prints_verified_line(hookd: HookdFactory, amqp: Amqp, prefix: Names, tmp_path: Path) -> None:
    """`hookd receive` prints `EVENT hook=ID delivery=DID attempt=N signature verified` for each delivery."""
    port = free_port()
    hookd.write_config([hook_entry("r1", f"http://127.0.0.1:{port}/in", events=["job.failed"])])
    out_path = tmp_path / "receive.out"
    with out_path.open("wb") as out:
        receive = subprocess.Popen(
            hookd_command("receive", "--port", str(port), "--config", str(hookd.config_path)),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "listening" in out_path.read_text(), what="hookd receive to listen")
        daemon = hookd.start()
        event_id = amqp.publish_event(prefix, "job.failed")

        [attempt] = daemon.wait_log("delivery.attempt", event_id=event_id)
        line = wait_until(
            lambda: re.search(
                r"^job\.failed hook=r1 delivery=(\S+) attempt=1 signature verified$", out_path.read_text(), re.M
            ),
            what="the receiver's line",
        )
        assert line.group(1) == attempt["delivery_id"]
        assert attempt["status"] == 200
    finally:
        # SIGTERM, not SIGINT: a shell without job control starts background jobs with SIGINT ignored,
        # children inherit that, and Python then installs no KeyboardInterrupt (the run hung here).
        receive.terminate()
        try:
            receive.wait(timeout=10)
        except subprocess.TimeoutExpired:
            receive.kill()
            receive.wait(timeout=10)
            raise


def test_run_refuses_invalid_config(hookd: HookdFactory) -> None:
    """`hookd run` with an invalid config exits 2 and names the problem, without consuming anything."""
    hookd.write_config([], delivery={"max_in_flight": 0})

    result = hookd.cli("run", "--config", str(hookd.config_path))

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "delivery.max_in_flight" in result.stderr
