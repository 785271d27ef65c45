"""The field rules of a hook (pure): the one home of what a valid hook is, for every source and caller.

The YAML source, the SQL store, the CLI and the admin API all judge a hook here. Values are checked
for their types too, because callers pass them straight from user input (a YAML document, an API
body, a row typed by hand into the database). Each problem names its field, so a CLI prints
`url: must use http or https` and an API answers 422 with the field beside the message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hookd import urls
from hookd.errors import ConfigError
from hookd.events import GROUPS, SUBSCRIBABLE
from hookd.netpolicy import NetworkPolicy
from hookd.subscriptions.model import Hook

_GROUP_NAMES = ", ".join(GROUPS)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a hook is invalid: the field it concerns and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


#: A caller's extra rule for a hook about to be written (e.g. the network policy): one `Problem` each.
HookCheck = Callable[[Hook], list[Problem]]


class InvalidHook(ConfigError):
    """A hook a store refused to write; `invalid` keeps each problem with its field, so the admin API
    can answer 422 with one entry per field while the CLI prints the same `field: message` lines."""

    def __init__(self, problems: Sequence[Problem], source: str) -> None:
        self.invalid: tuple[Problem, ...] = tuple(problems)
        super().__init__([str(p) for p in self.invalid], source)


def url_problem(url: object) -> str | None:
    """Why `url` is not an acceptable hook URL, or None: RFC 3986's rules, read once in `hookd.urls`."""
    return urls.problem(url)


def events_problems(events: object) -> list[str]:
    """Problems with an `events` list: non-empty, each a known event name or group."""
    if not isinstance(events, Sequence) or isinstance(events, str | bytes) or not events:
        return [f"must be a non-empty list of event names or groups ({_GROUP_NAMES})"]
    problems = []
    for name in events:
        if not isinstance(name, str) or name not in SUBSCRIBABLE:
            known = ", ".join(sorted(SUBSCRIBABLE))
            problems.append(f"unknown event {name!r} (known: {known})")
    return problems


def hook_problems(hook: Hook, *, require_id: bool = True) -> list[Problem]:
    """Every reason `hook` may not be stored or delivered to; empty when it is valid.

    `require_id=False` for a hook about to be created, whose id the store allocates.
    """
    problems: list[Problem] = []
    if require_id and not _text(hook.id):
        problems.append(Problem("id", "required, a non-empty string or integer"))
    if not _text(hook.account_id):
        problems.append(Problem("account_id", "required, a non-empty string or integer"))
    if (why := url_problem(hook.url)) is not None:
        problems.append(Problem("url", why))
    problems.extend(Problem("events", p) for p in events_problems(hook.events))
    fields: dict[str, object] = {  # typed as object: the annotations promise what we are here to check
        "name": hook.name,
        "active": hook.active,
        "insecure_ssl": hook.insecure_ssl,
        "allow_private": hook.allow_private,
    }
    if not isinstance(fields["name"], str):
        problems.append(Problem("name", "must be a string"))
    problems.extend(
        Problem(key, "must be true or false")
        for key in ("active", "insecure_ssl", "allow_private")
        if type(fields[key]) is not bool
    )
    auth = hook.basic_auth
    if auth is not None:
        if not _text(auth.username) or ":" in auth.username:
            problems.append(Problem("basic_auth.username", "required, a string without ':'"))
        password: object = auth.password
        if not isinstance(password, str):
            problems.append(Problem("basic_auth.password", "must be a string"))
    if not _text(hook.secret):
        problems.append(Problem("secret", "must be a non-empty string"))
    return problems


def policy_check(policy: NetworkPolicy) -> HookCheck:
    """The network policy's creation-time rule, for a store to apply to a hook it is about to write
    (`url: host 127.0.0.1 is not a public address ...`): what can be known without resolving names."""

    def check(hook: Hook) -> list[Problem]:
        why = policy.for_hook(hook.allow_private).creation_problem(hook.url)
        return [] if why is None else [Problem("url", why)]

    return check


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
