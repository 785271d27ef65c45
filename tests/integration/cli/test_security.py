"""`hookd hooks` security: the whsec_ secret, rotation with --overlap, and the SSRF guard at creation."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli, ConfigWriter

Create = Callable[..., dict[str, Any]]
_CREATE = ["hooks", "create", "--account", "acme", "--events", "job"]


def _whsec(secret: str) -> str:
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def _config(write_config: ConfigWriter, hooks_url: str, **delivery: Any) -> Path:
    return write_config(subscriptions={"source": "db", "url": hooks_url}, delivery=delivery)


# -- the secret in both forms --------------------------------------------------------------------------------------
def test_show_json_gives_the_secret_raw_and_as_whsec(cli: Cli, create: Create) -> None:
    """show --json carries `secret` (raw) and `secret_whsec` (whsec_ + base64 of its bytes)."""
    hook = create()
    shown = cli("hooks", "show", hook["id"], "--json").json()
    assert shown["secret"] == hook["secret"] and shown["secret_whsec"] == _whsec(hook["secret"])


def test_create_json_gives_the_whsec_form(create: Create) -> None:
    """create --json prints the whsec_ form next to the raw secret."""
    hook = create()
    assert hook["secret_whsec"] == _whsec(hook["secret"])


def test_show_reveal_secret_table_has_both_forms(cli: Cli, create: Create) -> None:
    """The table with --reveal-secret shows the raw secret and its whsec_ form."""
    hook = create()
    out = cli("hooks", "show", hook["id"], "--reveal-secret").out
    assert hook["secret"] in out and _whsec(hook["secret"]) in out


def test_show_table_hides_the_whsec_form_by_default(cli: Cli, create: Create) -> None:
    """Without --reveal-secret neither form of the secret is printed."""
    hook = create()
    out = cli("hooks", "show", hook["id"]).out
    assert hook["secret"] not in out and _whsec(hook["secret"]) not in out


def test_list_json_never_carries_secrets(cli: Cli, create: Create) -> None:
    """list --json has neither form of any secret."""
    create()
    listed = cli("hooks", "list", "--json").json()
    assert all("secret" not in h and "secret_whsec" not in h for h in listed)


# -- rotation ---------------------------------------------------------------------------------------------------------
def test_reset_secret_with_overlap_reports_when_the_old_secret_expires(cli: Cli, create: Create) -> None:
    """reset-secret --overlap 24h prints the new secret and when the old one stops verifying; never the old one."""
    hook = create()
    result = cli("hooks", "reset-secret", hook["id"], "--overlap", "24h", "--json")
    rotated = result.json()
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert rotated["secret"] != hook["secret"] and hook["secret"] not in result.out
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)


def test_show_reports_an_overlap_in_progress(cli: Cli, create: Create) -> None:
    """show --json during an overlap says until when the previous secret is valid."""
    hook = create()
    cli("hooks", "reset-secret", hook["id"], "--overlap", "30m")
    shown = cli("hooks", "show", hook["id"], "--json").json()
    assert shown["previous_secret_expires_at"] is not None and hook["secret"] not in str(shown)


def test_reset_secret_table_names_the_overlap_end(cli: Cli, create: Create) -> None:
    """The table title of an overlapping reset says until when the old secret still verifies."""
    hook = create()
    out = cli("hooks", "reset-secret", hook["id"], "--overlap", "7d").out
    assert "the old one still verifies webhook-signature until" in out


def test_reset_secret_without_overlap_ends_it(cli: Cli, create: Create) -> None:
    """A plain reset-secret leaves no overlap behind."""
    hook = create()
    cli("hooks", "reset-secret", hook["id"], "--overlap", "1h")
    assert "previous_secret_expires_at" not in cli("hooks", "reset-secret", hook["id"], "--json").json()


@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("duration", ["soon", "0s", "0m", "31d", "5w", "-5m", "5x", "1.5h", "", "99999999999999w"])
def test_reset_secret_refuses_bad_overlaps(cli: Cli, create: Create, duration: str) -> None:
    """A malformed, zero or over-30-day overlap exits 2 and leaves the secret as it was."""
    hook = create()
    result = cli("hooks", "reset-secret", hook["id"], "--overlap", duration)
    assert result.code == 2 and "--overlap" in result.err
    assert cli("hooks", "show", hook["id"], "--json").json()["secret"] == hook["secret"]


@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("duration", ["30s", "30m", "24h", "7d", "1w", "30d"])
def test_reset_secret_accepts_durations(cli: Cli, create: Create, duration: str) -> None:
    """Seconds, minutes, hours, days and weeks up to 30 days are accepted."""
    assert cli("hooks", "reset-secret", create()["id"], "--overlap", duration).code == 0


# -- the SSRF guard at creation ----------------------------------------------------------------------------------------
INTERNAL_URLS = [
    "http://127.0.0.1:8080/in",
    "http://[::1]/in",
    "http://[::ffff:127.0.0.1]/in",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/in",
    "http://100.64.0.1/in",
    "http://[fd00::1]/in",
    "http://localhost:9000/in",
]


@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_create_refuses_internal_literals(cli: Cli, url: str) -> None:
    """create on a literal internal address or localhost exits 2 and creates nothing."""
    result = cli(*_CREATE, "--url", url)
    assert result.code == 2 and "not a public address" in result.err and "--allow-private" in result.err
    assert cli("hooks", "list", "--json").json() == []


@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("url", ["http://2130706433/in", "http://0177.0.0.1/in", "http://0x7f.1/in"])
def test_create_refuses_other_spellings_of_an_address(cli: Cli, url: str) -> None:
    """create on an IPv4 address not in dotted decimal exits 2, names the dotted form, and creates nothing."""
    result = cli(*_CREATE, "--url", url)
    assert result.code == 2 and "write it as 127.0.0.1" in result.err
    assert cli("hooks", "list", "--json").json() == []


def test_create_with_allow_private_is_accepted_and_shown(cli: Cli) -> None:
    """--allow-private (operator only) lets a hook target an internal address; the resource says so."""
    hook = cli(*_CREATE, "--url", "http://10.1.2.3/in", "--allow-private", "--json").json()
    assert hook["settings"]["allow_private"] is True


def test_resource_omits_allow_private_when_off(create: Create) -> None:
    """A hook without the override keeps the platform's settings shape."""
    assert "allow_private" not in create()["settings"]


def test_allow_private_networks_config_permits_internal_literals(
    cli: Cli, write_config: ConfigWriter, hooks_url: str
) -> None:
    """With delivery.allow_private_networks true, internal literals may be created."""
    config = _config(write_config, hooks_url, allow_private_networks=True)
    assert cli(*_CREATE, "--url", "http://127.0.0.1:8080/in", config=config).code == 0


@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
def test_allowed_networks_permit_exactly_what_they_name(cli: Cli, write_config: ConfigWriter, hooks_url: str) -> None:
    """delivery.allowed_networks lets literals inside it be created, and nothing else."""
    config = _config(write_config, hooks_url, allowed_networks=["10.20.0.0/16"])
    assert cli(*_CREATE, "--url", "http://10.20.0.5/in", config=config).code == 0
    assert cli(*_CREATE, "--url", "http://10.21.0.5/in", config=config).code == 2


def test_update_refuses_an_internal_url(cli: Cli, create: Create) -> None:
    """update --url to an internal literal exits 2 and changes nothing."""
    hook = create()
    before = cli.export()
    result = cli("hooks", "update", hook["id"], "--url", "http://127.0.0.1/")
    assert result.code == 2 and "not a public address" in result.err
    assert cli.export() == before


def test_update_allow_private_false_on_an_internal_url_is_refused(cli: Cli) -> None:
    """Turning the override off on a hook that targets an internal address is refused (exit 2)."""
    hook = cli(*_CREATE, "--url", "http://10.1.2.3/in", "--allow-private", "--json").json()
    result = cli("hooks", "update", hook["id"], "--allow-private", "false")
    assert result.code == 2 and "not a public address" in result.err


def test_update_can_set_allow_private_and_an_internal_url_together(cli: Cli, create: Create) -> None:
    """--allow-private true with --url in one update is accepted."""
    hook = create()
    updated = cli("hooks", "update", hook["id"], "--url", "http://10.1.2.3/", "--allow-private", "true", "--json")
    assert updated.json()["settings"]["allow_private"] is True


def test_import_refuses_internal_literals_without_the_override(cli: Cli, tmp_path: Path) -> None:
    """import applies the same rule: an internal literal needs allow_private in the file."""
    path = tmp_path / "in.yaml"
    entry = "{id: 5, account_id: a, url: 'http://10.0.0.9/', events: [job], secret: s3cr3t-value"
    path.write_text(f"hooks:\n  - {entry}}}\n")
    assert cli("hooks", "import", str(path)).code == 2
    path.write_text(f"hooks:\n  - {entry}, allow_private: true}}\n")
    assert cli("hooks", "import", str(path)).code == 0


def test_export_round_trips_allow_private(cli: Cli) -> None:
    """export writes allow_private: true for hooks that have it, so import restores it."""
    cli(*_CREATE, "--url", "http://10.1.2.3/in", "--allow-private")
    assert "allow_private: true" in cli.export()


def test_names_are_not_resolved_at_creation(cli: Cli) -> None:
    """A name is accepted at creation (it is checked on every delivery attempt, against its addresses then)."""
    assert cli(*_CREATE, "--url", "https://internal.invalid/in").code == 0


def test_other_changes_to_a_hook_outside_the_policy_still_work(
    cli: Cli, write_config: ConfigWriter, hooks_url: str
) -> None:
    """A hook created under a wider policy can still be renamed or disabled once the policy is narrower."""
    wide = _config(write_config, hooks_url, allow_private_networks=True)
    hook = cli(*_CREATE, "--url", "http://10.1.2.3/in", "--json", config=wide).json()
    assert cli("hooks", "update", hook["id"], "--name", "legacy").code == 0
    assert cli("hooks", "disable", hook["id"]).code == 0
