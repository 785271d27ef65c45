"""`hookd hooks` create, list, show, update, enable, disable, delete, reset-secret on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from hookd.events import CLUSTER_EVENTS
from hookd.state.db import Database
from hookd.state.history import write_batch

from .conftest import Cli, attempt

Create = Callable[..., dict[str, Any]]


def test_create_prints_the_hook_resource_with_its_secret(create: Create) -> None:
    """create --json prints the web hook resource, with an id and a secret of 32 random bytes (43+ chars)."""
    hook = create("--name", "ops", events="job.failed,cluster.available")
    assert hook["id"] and hook["type"] == "web" and hook["account_id"] == "acme"
    assert hook["name"] == "ops" and hook["active"] is True
    assert hook["events"] == ["job.failed", "cluster.available"]
    assert hook["settings"] == {
        "url": "https://hooks.example.com/in",
        "basic_auth": False,
        "insecure_ssl": False,
        "ordered": True,
        "rate_limit": None,
    }
    assert len(hook["secret"]) >= 43 and hook["salt"] == hook["secret"]
    assert hook["created_at"] and hook["updated_at"]


def test_create_generates_a_different_secret_each_time(create: Create) -> None:
    """Two hooks never share a generated secret."""
    assert create()["secret"] != create()["secret"]


def test_create_prints_the_secret_for_people(cli: Cli) -> None:
    """Without --json, create prints the hook as a block that includes the secret."""
    argv = ["hooks", "create", "--account", "acme", "--url", "https://h.example.com/", "--events", "job"]
    result = cli(*argv)
    assert result.code == 0
    secret = cli("hooks", "show", "1", "--reveal-secret", "--json").json()["secret"]
    assert result.out.startswith("created hook 1\n") and secret in result.out


def test_create_with_basic_auth_shows_basic_auth_data(create: Create) -> None:
    """--basic-auth USER:PASS is stored; basic_auth_data is base64 of user:password (the password may hold ':')."""
    hook = create("--basic-auth", "hookd:pa:ss")
    assert hook["settings"]["basic_auth"] is True
    assert base64.b64decode(hook["settings"]["basic_auth_data"]) == b"hookd:pa:ss"


def test_create_inactive_with_insecure_ssl(create: Create) -> None:
    """--inactive and --insecure-ssl set active false and insecure_ssl true."""
    hook = create("--inactive", "--insecure-ssl")
    assert hook["active"] is False and hook["settings"]["insecure_ssl"] is True


def test_list_filters_by_account(cli: Cli, create: Create) -> None:
    """list --account returns only that account's hooks, without secrets."""
    first, _, third = create(), create(account="other"), create()
    listed = cli("hooks", "list", "--account", "acme", "--json").json()
    assert [h["id"] for h in listed] == [first["id"], third["id"]]
    assert all("secret" not in h and "salt" not in h for h in listed)


def test_list_prints_one_row_per_hook(cli: Cli, create: Create) -> None:
    """The list table has a header and one row per hook, starting with its id."""
    create()
    create(events="cluster")
    lines = cli("hooks", "list").out.splitlines()
    assert lines[0].split()[:4] == ["ID", "ACCOUNT", "ACTIVE", "EVENTS"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]


def test_show_json_includes_id_and_secret(cli: Cli, create: Create) -> None:
    """show --json gives the hook resource for scripts, with its id and secret (as salt too)."""
    hook = create("--basic-auth", "u:hunter2")
    shown = cli("hooks", "show", hook["id"], "--json").json()
    assert shown["id"] == hook["id"]
    assert shown["secret"] == shown["salt"] == hook["secret"]


def test_show_table_hides_the_secret_by_default(cli: Cli, create: Create) -> None:
    """show's table without --reveal-secret prints neither the secret nor the basic-auth password."""
    hook = create("--basic-auth", "u:hunter2")
    human = cli("hooks", "show", hook["id"]).out
    assert hook["secret"] not in human and "hunter2" not in human


def test_show_reveal_secret_prints_it(cli: Cli, create: Create) -> None:
    """show --reveal-secret prints the secret as salt and secret, and basic_auth_data."""
    hook = create("--basic-auth", "u:p")
    shown = cli("hooks", "show", hook["id"], "--reveal-secret", "--json").json()
    assert shown["secret"] == shown["salt"] == hook["secret"]
    assert shown["settings"]["basic_auth_data"] == hook["settings"]["basic_auth_data"]


def test_show_lists_the_last_status_of_each_subscribed_event(cli: Cli, create: Create, hooks_url: str) -> None:
    """statuses has one entry per subscribed event (groups expanded), read from hookd_delivery_status."""
    hook = create(events="job.failed,cluster")
    with Database.from_url(hooks_url) as db, db.transaction(write=True) as tx:
        write_batch(tx, [attempt("d1", hook_id=hook["id"], event="cluster.error", status=503, outcome="retryable")])
    statuses = cli("hooks", "show", hook["id"], "--json").json()["statuses"]
    assert [s["name"] for s in statuses] == ["job.failed", *CLUSTER_EVENTS]
    error = next(s for s in statuses if s["name"] == "cluster.error")
    assert error["last_trigger_status"] == "failure" and error["last_response"] == "answer 503"
    assert error["last_trigger_time"].endswith("Z")
    assert statuses[0]["last_trigger_status"] is None


def test_update_replaces_events_as_a_whole(cli: Cli, create: Create) -> None:
    """update --events replaces the list; the other fields stay as they were."""
    hook = create("--name", "keep", events="job.failed,cluster")
    updated = cli("hooks", "update", hook["id"], "--events", "job.completed", "--json").json()
    assert updated["events"] == ["job.completed"]
    assert updated["name"] == "keep" and updated["settings"]["url"] == hook["settings"]["url"]


def test_update_changes_url_name_and_flags(cli: Cli, create: Create) -> None:
    """update sets --url, --name, --active false and --insecure-ssl true together; the secret is kept."""
    hook = create()
    argv = ["--url", "http://new.example.com/x", "--name", "n", "--active", "false", "--insecure-ssl", "true"]
    updated = cli("hooks", "update", hook["id"], *argv, "--json").json()
    assert updated["settings"]["url"] == "http://new.example.com/x" and updated["name"] == "n"
    assert updated["active"] is False and updated["settings"]["insecure_ssl"] is True
    assert cli("hooks", "show", hook["id"], "--reveal-secret", "--json").json()["secret"] == hook["secret"]


def test_update_with_empty_basic_auth_removes_it(cli: Cli, create: Create) -> None:
    """update --basic-auth "" removes basic auth."""
    hook = create("--basic-auth", "u:p")
    assert cli("hooks", "update", hook["id"], "--basic-auth", "", "--json").json()["settings"]["basic_auth"] is False


def test_disable_then_enable(cli: Cli, create: Create) -> None:
    """disable makes a hook inactive and enable active again."""
    hook = create()
    assert cli("hooks", "disable", hook["id"], "--json").json()["active"] is False
    assert cli("hooks", "show", hook["id"], "--json").json()["active"] is False
    assert cli("hooks", "enable", hook["id"], "--json").json()["active"] is True


def test_delete_removes_the_hook(cli: Cli, create: Create) -> None:
    """delete removes the hook: it is no longer listed and show says there is no such hook."""
    hook = create()
    result = cli("hooks", "delete", hook["id"])
    assert result.code == 0 and result.out == f"deleted hook {hook['id']}\n"
    assert cli("hooks", "list", "--json").json() == []
    assert cli("hooks", "show", hook["id"]).code == 2


def test_reset_secret_changes_the_secret(cli: Cli, create: Create) -> None:
    """reset-secret prints a new secret of the same strength, and show reveals the new one."""
    hook = create()
    reset = cli("hooks", "reset-secret", hook["id"], "--json").json()
    assert reset["secret"] != hook["secret"] and len(reset["secret"]) >= 43
    assert cli("hooks", "show", hook["id"], "--reveal-secret", "--json").json()["salt"] == reset["secret"]


def test_ordered_and_rate_limit_through_create_update_show_and_export(cli: Cli, create: Create) -> None:
    """--unordered/--ordered/--ordered-default and --rate-limit N|none reach the store, show and export."""
    hook = create("--unordered", "--rate-limit", "0.5")
    assert (hook["settings"]["ordered"], hook["settings"]["rate_limit"]) == (False, 0.5)
    shown = cli("hooks", "show", hook["id"])
    assert "ordered" in shown.out and "0.5/s" in shown.out
    assert "ordered: false" in cli.export() and "rate_limit: 0.5" in cli.export()
    changed = cli("hooks", "update", hook["id"], "--ordered-default", "--rate-limit", "none", "--json").json()
    assert (changed["settings"]["ordered"], changed["settings"]["rate_limit"]) == (True, None)
    assert "ordered" not in cli.export() and "rate_limit" not in cli.export()
    again = cli("hooks", "update", hook["id"], "--ordered", "--rate-limit", "120/m", "--json").json()
    assert (again["settings"]["ordered"], again["settings"]["rate_limit"]) == (True, 2.0)


def test_a_bad_rate_limit_is_refused_and_changes_nothing(cli: Cli, create: Create) -> None:
    """--rate-limit 0, a word, or a limit above the maximum: exit 2, nothing changed."""
    hook = create()
    before = cli.export()
    for value in ("0", "fast", "20000"):
        result = cli("hooks", "update", hook["id"], "--rate-limit", value)
        assert result.code == 2 and "--rate-limit" in result.err, result.err
    assert cli("hooks", "create", "--account", "a", "--url", "https://x.example/", "--events", "job",
               "--rate-limit", "none").code == 2  # fmt: skip
    assert cli.export() == before


def test_names_and_urls_follow_the_field_rules(cli: Cli) -> None:
    """The CLI refuses what the API refuses: a URL with a space, a name with a control character or too long."""
    base = ["hooks", "create", "--account", "a", "--events", "job"]
    for flags in (["--url", "https://x.example/a b"], ["--url", "https://x.example/", "--name", "ops\x1b[2J"],
                  ["--url", "https://x.example/", "--name", "n" * 201]):  # fmt: skip
        result = cli(*base, *flags)
        assert result.code == 2, result.out
    assert cli("hooks", "list").out.startswith("no hooks")
