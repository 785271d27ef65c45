"""Hooks from a YAML file (config as code). Every problem in the file is reported at once.

Secrets need not sit in the file: `secret_env`/`secret_file` (and `password_env`/`password_file` for
basic auth) read them from the environment or from files, so the hooks file can be world-readable
while the secrets are not. The file is operator-controlled, so it may also set `allow_private`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hookd.errors import ConfigError, yaml_problem
from hookd.events import normalize_account
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import hook_problems
from hookd.subscriptions.store import ordered

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

    def revision(self) -> None:
        """A file has no change counter: SIGHUP reloads it."""
        return None

    def check(self) -> None:
        self.load()  # re-read and validated: a file broken since the last reload is unhealthy

    def list(self, account_id: str | None = None) -> list[Hook]:
        return ordered(self.load(), account_id)

    def get(self, hook_id: str) -> Hook | None:
        return self.load().get(hook_id)

    def deactivate(self, hook_id: str) -> bool:
        """The file is the operator's and hookd never writes it: the daemon keeps its disables in the state
        database instead (`hookd.state.disables`), until the hook's entry changes."""
        return False


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
    """One entry as a `Hook`: the file's own concerns here (unknown keys, where secrets come from),
    then the field rules every source shares (`rules.hook_problems`)."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    found = [f"{where}.{key}: unknown key" for key in entry if key not in _HOOK_KEYS]
    auth = _parse_basic_auth(entry.get("basic_auth"), f"{where}.basic_auth", found, base_dir, environ)
    secret = _resolve_secret(entry, where, found, base_dir, environ, keys=_SECRET_KEYS)
    name = entry.get("name", "")
    url: Any = entry.get("url")  # any type: the rules below judge what it is
    events: Any = entry.get("events")
    hook = Hook(
        id=normalize_account(entry.get("id")) or "",  # text or integer, the same rule as account ids
        account_id=normalize_account(entry.get("account_id")) or "",
        url=url.strip() if isinstance(url, str) else url,
        events=tuple(events) if isinstance(events, list) else events,
        secret=secret or "",
        name="" if name is None else name,
        active=entry.get("active", True),
        basic_auth=auth,
        insecure_ssl=entry.get("insecure_ssl", False),
        allow_private=entry.get("allow_private", False),
    )
    # A secret that could not be resolved was reported above, with where it was looked for.
    found += [f"{where}.{p}" for p in hook_problems(hook) if secret is not None or p.field != "secret"]
    problems.extend(found)
    return None if found else hook


def _parse_basic_auth(
    value: object, where: str, problems: list[str], base_dir: Path, environ: Mapping[str, str]
) -> BasicAuth | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"username", *_PASSWORD_KEYS}:
        problems.append(f"{where}: must be a mapping with username and password (or password_env, password_file)")
        return None
    username: Any = value.get("username")  # judged with the other fields (rules.hook_problems)
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


def dump_hooks(hooks: Iterable[Hook]) -> str:
    """The hooks in this file's format (`config/hooks.yaml`), secrets inline: `hookd hooks export`,
    which `parse_hooks` (and `hookd hooks import`) reads back unchanged."""
    entries = []
    for hook in hooks:
        entry: dict[str, Any] = {"id": hook.id, "account_id": hook.account_id}
        if hook.name:
            entry["name"] = hook.name
        entry.update({"url": hook.url, "events": list(hook.events), "active": hook.active, "secret": hook.secret})
        if hook.basic_auth is not None:
            entry["basic_auth"] = {"username": hook.basic_auth.username, "password": hook.basic_auth.password}
        entry["insecure_ssl"] = hook.insecure_ssl
        if hook.allow_private:
            entry["allow_private"] = True
        entries.append(entry)
    header = "# hookd hooks export: the hooks-file format, secrets included. Keep it private.\n"
    body = yaml.safe_dump({"hooks": entries}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000)
    return header + body
