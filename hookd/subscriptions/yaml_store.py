"""Hooks from a YAML file (config as code). Every problem in the file is reported at once.

Secrets need not sit in the file: `secret_env`/`secret_file` (and `password_env`/`password_file` for
basic auth) read them from the environment or from files, so the hooks file can be world-readable
while the secrets are not. The file is operator-controlled, so it may also set `allow_private`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hookd.errors import ConfigError, yaml_problem
from hookd.events import normalize_account
from hookd.subscriptions.matching import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.validation import events_problems, url_problem

_HOOK_KEYS = frozenset(
    {
        "id",
        "account_id",
        "name",
        "url",
        "events",
        "active",
        "secret",
        "secret_env",
        "secret_file",
        "basic_auth",
        "insecure_ssl",
        "allow_private",
    }
)
_SECRET_KEYS = ("secret", "secret_env", "secret_file")
_PASSWORD_KEYS = ("password", "password_env", "password_file")


class YamlStore:
    """Reads the hooks file on every `load`, so SIGHUP picks up edits."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = environ if environ is not None else os.environ

    def describe(self) -> str:
        return f"yaml:{self.path}"

    def load(self) -> HookSet:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"cannot read hooks file: {exc.strerror}"], str(self.path)) from None
        except UnicodeDecodeError:
            raise ConfigError(["hooks file is not UTF-8 text"], str(self.path)) from None
        except ValueError:  # the OS cannot even be asked: the name holds a NUL character
            problem = "cannot read hooks file: its name contains a NUL character"
            raise ConfigError([problem], repr(str(self.path))) from None
        return parse_hooks(text, source=str(self.path), base_dir=self.path.parent, environ=self._environ)


def parse_hooks(text: str, *, source: str, base_dir: Path, environ: Mapping[str, str]) -> HookSet:
    """Parse and validate a hooks document; raise `ConfigError` listing every problem."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_problem(exc)], source) from None
    if doc is None:
        doc = {"hooks": []}
    if not isinstance(doc, dict):
        raise ConfigError(["top level must be a mapping with a 'hooks' list"], source)
    problems = [f"{key}: unknown key" for key in doc if key != "hooks"]
    entries = doc.get("hooks") or []
    if not isinstance(entries, list):
        raise ConfigError([*problems, "hooks: must be a list"], source)
    hooks: list[Hook] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        hook = _parse_hook(entry, f"hooks[{index}]", problems, base_dir, environ)
        if hook is None:
            continue
        if hook.id in seen:
            problems.append(f"hooks[{index}].id: duplicate id {hook.id!r} (also hooks[{seen[hook.id]}])")
            continue
        seen[hook.id] = index
        hooks.append(hook)
    if problems:
        raise ConfigError(problems, source)
    return HookSet(hooks)


def _parse_hook(
    entry: object, where: str, problems: list[str], base_dir: Path, environ: Mapping[str, str]
) -> Hook | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    before = len(problems)
    problems.extend(f"{where}.{key}: unknown key" for key in entry if key not in _HOOK_KEYS)
    hook_id = normalize_account(entry.get("id"))  # same text-or-integer rule as account ids
    if hook_id is None:
        problems.append(f"{where}.id: required, a string or integer")
    account = normalize_account(entry.get("account_id"))
    if account is None:
        problems.append(f"{where}.account_id: required, a string or integer")
    url = entry.get("url")
    if (why := url_problem(url)) is not None:
        problems.append(f"{where}.url: {why}")
    events = entry.get("events")
    problems.extend(f"{where}.events: {p}" for p in events_problems(events))
    name = entry.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str):
        problems.append(f"{where}.name: must be a string")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        problems.append(f"{where}.active: must be true or false")
    insecure = entry.get("insecure_ssl", False)
    if not isinstance(insecure, bool):
        problems.append(f"{where}.insecure_ssl: must be true or false")
    allow_private = entry.get("allow_private", False)
    if not isinstance(allow_private, bool):
        problems.append(f"{where}.allow_private: must be true or false")
    auth = _parse_basic_auth(entry.get("basic_auth"), f"{where}.basic_auth", problems, base_dir, environ)
    secret = _resolve_secret(entry, where, problems, base_dir, environ, keys=_SECRET_KEYS)
    if len(problems) > before:
        return None
    assert hook_id is not None and account is not None and secret is not None
    return Hook(
        id=hook_id,
        account_id=account,
        url=str(url).strip(),
        events=tuple(events),  # type: ignore[arg-type]
        secret=secret,
        name=name,
        active=active,
        basic_auth=auth,
        insecure_ssl=insecure,
        allow_private=allow_private,
    )


def _parse_basic_auth(
    value: object, where: str, problems: list[str], base_dir: Path, environ: Mapping[str, str]
) -> BasicAuth | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"username", *_PASSWORD_KEYS}:
        problems.append(f"{where}: must be a mapping with username and password (or password_env, password_file)")
        return None
    username = value.get("username")
    if not isinstance(username, str) or not username or ":" in username:
        problems.append(f"{where}.username: required, a string without ':'")
        return None
    present = [key for key in _PASSWORD_KEYS if key in value]
    if not present:
        return BasicAuth(username, "")
    if present == ["password"]:  # inline; unlike the others it may be empty
        if not isinstance(value["password"], str):
            problems.append(f"{where}.password: must be a string")
            return None
        return BasicAuth(username, value["password"])
    password = _resolve_secret(value, where, problems, base_dir, environ, keys=_PASSWORD_KEYS)
    return None if password is None else BasicAuth(username, password)


def _resolve_secret(
    entry: Mapping[str, Any],
    where: str,
    problems: list[str],
    base_dir: Path,
    environ: Mapping[str, str],
    *,
    keys: tuple[str, str, str],
) -> str | None:
    """The value of exactly one of `keys` (inline, `*_env` variable, `*_file` path), or None after a problem."""
    inline, env_key, file_key = keys
    given = [key for key in keys if key in entry]
    if len(given) != 1:
        problems.append(f"{where}: exactly one of {inline}, {env_key} or {file_key} is required")
        return None
    key = given[0]
    value = entry[key]
    if not isinstance(value, str) or not value:
        problems.append(f"{where}.{key}: must be a non-empty string")
        return None
    if key == inline:
        return value
    if "\x00" in value:  # no variable or file name holds NUL; the OS would refuse it with ValueError
        problems.append(f"{where}.{key}: must not contain a NUL character")
        return None
    if key == env_key:
        secret = environ.get(value)
        if not secret:
            problems.append(f"{where}.{key}: environment variable {value} is not set or empty")
        return secret or None
    path = Path(value) if os.path.isabs(value) else base_dir / value
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"{where}.{key}: cannot read {path}: {exc.strerror}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{where}.{key}: {path} is not UTF-8 text")
        return None
    if not secret:
        problems.append(f"{where}.{key}: {path} is empty")
        return None
    return secret
