"""Which of hookd's files hold secrets that other local users can read (warnings, never errors).

A config file with a broker or database password, a hooks file with inline secrets or basic-auth
passwords, and every `secret_file`/`password_file` are credentials: any local user who can read them
can forge deliveries or reach the broker. `permission_problems` lists each such file that its group
or others may read, so the daemon can warn at startup; it never refuses to start (the operator may
have reasons, e.g. a group only hookd belongs to). Files without secrets are not reported: a hooks
file that takes every secret from `secret_env`/`secret_file` may be world-readable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from hookd.config import absolute_sqlite_url

_GROUP_OR_OTHER_READ = stat.S_IRGRP | stat.S_IROTH
_URL_KEYS = (("broker", "url"), ("subscriptions", "url"), ("state", "url"))


def permission_problems(config_path: Path) -> list[str]:
    """One warning per file of this configuration that holds secrets and is readable by group or others.

    Looks at the config file, the hooks file it names and every secret file its hooks reference
    (YAML source), or the SQLite hooks database, which holds every secret (database source).
    Unreadable or invalid files are skipped: the loader reports those as errors.
    """
    problems: list[str] = []
    config = _load(config_path)
    if config is None:
        return problems
    if _config_holds_secrets(config):
        problems += _exposed(config_path, "config file (holds a password in a URL)")
    subscriptions = config.get("subscriptions")
    if not isinstance(subscriptions, Mapping):
        return problems
    if subscriptions.get("source") == "db":
        url = subscriptions.get("url")
        if isinstance(url, str) and url.startswith("sqlite:///") and "\x00" not in url:
            database = Path(absolute_sqlite_url(url, config_path.parent).removeprefix("sqlite:///"))
            problems += _exposed(database, "hooks database (holds every hook's secret)")
        return problems
    raw = subscriptions.get("path")
    if not isinstance(raw, str) or not raw.strip():
        return problems
    hooks_path = Path(raw) if Path(raw).is_absolute() else config_path.parent / raw
    hooks = _load(hooks_path)
    if hooks is None:
        return problems
    listed = hooks.get("hooks") if isinstance(hooks, Mapping) else None
    entries = [e for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []
    if any(_inline_secret(entry) for entry in entries):
        problems += _exposed(hooks_path, "hooks file (holds inline secrets or passwords)")
    for secret_file in dict.fromkeys(_secret_files(entries, hooks_path.parent)):
        problems += _exposed(secret_file, "secret file")
    return problems


def _exposed(path: Path, what: str) -> list[str]:
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # ValueError: a NUL in the name, which the loader reports
        return []
    if not mode & _GROUP_OR_OTHER_READ:
        return []
    readers = " and ".join(
        name for bit, name in ((stat.S_IRGRP, "its group"), (stat.S_IROTH, "every local user")) if mode & bit
    )
    return [
        f"{path}: {what} is readable by {readers} (mode {stat.S_IMODE(mode):04o}); "
        "chmod 600 it, or move the secrets to the environment (secret_env, HOOKD_AMQP_URL) or to secret files"
    ]


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):  # ValueError: not UTF-8, or a NUL in the name
        return None


def _config_holds_secrets(config: Any) -> bool:
    if not isinstance(config, Mapping):
        return False
    for section, key in _URL_KEYS:
        part = config.get(section)
        value = part.get(key) if isinstance(part, Mapping) else None
        if isinstance(value, str) and _url_has_password(value):
            return True
    return False


def _url_has_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.password) or any(k == "password" and v for k, v in parse_qsl(parts.query))
    except ValueError:
        return False


def _inline_secret(entry: Mapping[Any, Any]) -> bool:
    if entry.get("secret"):
        return True
    auth = entry.get("basic_auth")
    return isinstance(auth, Mapping) and bool(auth.get("password"))


def _secret_files(entries: list[Mapping[Any, Any]], base: Path) -> Iterator[Path]:
    for entry in entries:
        auth = entry.get("basic_auth")
        for value in (entry.get("secret_file"), auth.get("password_file") if isinstance(auth, Mapping) else None):
            if isinstance(value, str) and value:
                yield Path(value) if os.path.isabs(value) else base / value
