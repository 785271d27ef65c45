"""The hook's security fields: rotation secrets, the operator's allow_private, secrets kept out of files and reprs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hookd.broker import Topology
from hookd.errors import ConfigError
from hookd.publisher import ping_message
from hookd.signing import whsec
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.yaml_store import parse_hooks

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
_ENTRY = "hooks:\n  - {id: 1, account_id: a, url: 'https://x.example/', events: [job], "


def _hook(**fields: Any) -> Hook:
    base: dict[str, Any] = {"id": "1", "account_id": "a", "url": "https://x.example/", "events": ("job",)}
    hook: Hook = Hook(**{**base, "secret": "new-secret", **fields})
    return hook


def _parse(tail: str, environ: dict[str, str] | None = None, base_dir: Path = Path("/nonexistent")) -> Hook:
    hooks = parse_hooks(_ENTRY + tail + "}\n", source="hooks.yaml", base_dir=base_dir, environ=environ or {})
    found: list[Hook] = list(hooks)  # HookSet.__iter__ is untyped
    assert len(found) == 1
    return found[0]


def _problems(tail: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _parse(tail, environ)
    return list(caught.value.problems)


# -- rotation --------------------------------------------------------------------------------------------------
def test_signing_secrets_is_the_current_secret_alone_by_default() -> None:
    """A hook without a rotation in progress signs with its secret only."""
    assert _hook().signing_secrets(NOW) == ("new-secret",)


def test_signing_secrets_include_old_ones_during_the_overlap() -> None:
    """During the overlap the current secret comes first, then the old one."""
    hook = _hook(old_secrets=("old-secret",), old_secrets_expire_at=NOW + timedelta(hours=1))
    assert hook.signing_secrets(NOW) == ("new-secret", "old-secret")


def test_signing_secrets_drop_old_ones_once_the_overlap_ends() -> None:
    """At the expiry the old secret stops signing, even in a hook loaded before it expired."""
    hook = _hook(old_secrets=("old-secret",), old_secrets_expire_at=NOW)
    assert hook.signing_secrets(NOW) == ("new-secret",)


def test_repr_hides_old_secrets() -> None:
    """Old secrets never appear in a hook's repr."""
    assert "old-secret" not in repr(_hook(old_secrets=("old-secret",)))


def test_sensitive_values_cover_every_spelling_of_the_credentials() -> None:
    """sensitive_values lists secrets, old secrets, their base64 (whsec_ body), the password and the auth data."""
    hook = _hook(old_secrets=("old-secret",), basic_auth=BasicAuth("ops", "pw-1234"))
    values = set(hook.sensitive_values())
    assert {"new-secret", "old-secret", "pw-1234", base64.b64encode(b"ops:pw-1234").decode()} <= values
    assert whsec("new-secret").removeprefix("whsec_") in values


def test_the_ping_body_has_no_security_internals() -> None:
    """The ping body (the hook's resource for its receiver) carries neither secrets nor the operator's override."""
    hook = _hook(old_secrets=("old-secret",), allow_private=True)
    message, _ = ping_message(hook, Topology(exchange="x", prefix="p", retry_delays_s=(5.0,)))
    body = json.loads(message.body)
    assert body["settings"]["url"] == hook.url and body["id"] == hook.id
    assert "old-secret" not in str(body) and "new-secret" not in str(body) and "allow_private" not in str(body)


# -- the hooks file ---------------------------------------------------------------------------------------------
def test_hooks_file_may_set_allow_private() -> None:
    """The operator's hooks file may let a hook reach internal addresses."""
    assert _parse("secret: s, allow_private: true").allow_private is True


def test_allow_private_defaults_to_false() -> None:
    """Without the key, a hook gets the configured policy only."""
    assert _parse("secret: s").allow_private is False


def test_allow_private_must_be_a_boolean() -> None:
    """allow_private: yes-ish strings are refused like every other flag."""
    assert "hooks[0].allow_private: must be true or false" in _problems("secret: s, allow_private: 'sure'")


def test_basic_auth_password_from_the_environment() -> None:
    """basic_auth.password_env reads the password from an environment variable."""
    hook = _parse("secret: s, basic_auth: {username: u, password_env: HOOK_PW}", {"HOOK_PW": "pw"})
    assert hook.basic_auth == BasicAuth("u", "pw")


def test_basic_auth_password_from_a_file(tmp_path: Path) -> None:
    """basic_auth.password_file reads the password from a file next to the hooks file."""
    (tmp_path / "pw.txt").write_text("file-pw\n")
    hook = _parse("secret: s, basic_auth: {username: u, password_file: pw.txt}", base_dir=tmp_path)
    assert hook.basic_auth == BasicAuth("u", "file-pw")


def test_basic_auth_password_env_unset_is_reported_without_a_value() -> None:
    """An unset password variable is a problem naming the variable."""
    problems = _problems("secret: s, basic_auth: {username: u, password_env: NOPE}")
    assert problems == ["hooks[0].basic_auth.password_env: environment variable NOPE is not set or empty"]


def test_basic_auth_with_two_password_sources_is_refused() -> None:
    """password and password_env together are ambiguous: refused."""
    problems = _problems("secret: s, basic_auth: {username: u, password: p, password_env: X}", {"X": "x"})
    assert problems == ["hooks[0].basic_auth: exactly one of password, password_env or password_file is required"]


def test_nul_in_a_secret_file_name_is_a_problem_not_a_crash() -> None:
    """A secret_file name with a NUL character is reported (the OS would raise ValueError)."""
    assert _problems('secret_file: "a\\0b"') == ["hooks[0].secret_file: must not contain a NUL character"]


def test_hooks_file_name_with_nul_is_a_config_error() -> None:
    """A hooks path holding a NUL character (possible from YAML) is a ConfigError, not a ValueError."""
    from hookd.subscriptions.yaml_store import YamlStore

    with pytest.raises(ConfigError, match="NUL character"):
        YamlStore(Path("/etc/hookd/hooks\x00.yaml")).load()
