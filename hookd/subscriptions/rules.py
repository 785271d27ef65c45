"""The field rules of a hook (pure): the one home of what a valid hook is, for every source and caller.

The YAML source, the SQL store, the CLI, the admin API and the console all judge a hook here, once:
values are checked for their types too, because callers pass them straight from user input (a YAML
document, an API body, a form, a row typed by hand into the database). Each problem names its
field, so a CLI prints `url: must use http or https` and an API answers 422 with the field beside
the message. The limits below are the contract: `/openapi.json` states them from these constants.

Text (a name, a basic-auth user or password) is refused when it holds what no label or credential
needs and what makes a value lie about itself on a screen or in a log: control characters (NUL, CR,
LF, ESC, DEL, the C1 range), bidirectional overrides and isolates (U+202E turns `gpj.exe` around),
and unpaired surrogates (text JSON can carry but UTF-8 cannot store). `TEXT_PATTERN` says the same
as a JSON Schema pattern. URLs are judged by RFC 3986 and IDNA 2008 in `hookd.urls` (`url_problem`
delegates to it), which refuses controls, bidi marks and surrogates too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hookd import urls
from hookd.errors import ConfigError
from hookd.events import GROUPS, SUBSCRIBABLE
from hookd.netpolicy import NetworkPolicy
from hookd.subscriptions.model import Hook

#: Longest hook name, URL, basic-auth user and password, in characters (code points).
NAME_MAX = 200
URL_MAX = urls.MAX_URL_LENGTH
USERNAME_MAX = 256
PASSWORD_MAX = 1024
#: The fastest `rate_limit` a hook may have, in deliveries per second (above it, no limit is simpler).
RATE_LIMIT_MAX = 10_000.0

_GROUP_NAMES = ", ".join(GROUPS)
#: Characters no hook text may hold: C0 and C1 controls, DEL, and the bidirectional formatting marks
#: (ALM, LRM, RLM, the embeddings and overrides U+202A-202E, the isolates U+2066-2069).
_REFUSED_CHARS = "\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069"
#: Text without those characters, as a JSON Schema (ECMA 262) pattern; Python reads it the same way.
TEXT_PATTERN = f"^[^{_REFUSED_CHARS}]*$"
_REFUSED = re.compile(f"[{_REFUSED_CHARS}]")


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
    can answer 422 with one entry per field while the CLI prints the same `field: message` lines.
    `from_check`: the fields are valid and the caller's check refused the hook (the network policy:
    the API answers 403, not 422, since the request is well formed and the installation refuses it)."""

    def __init__(self, problems: Sequence[Problem], source: str, *, from_check: bool = False) -> None:
        self.invalid: tuple[Problem, ...] = tuple(problems)
        self.from_check = from_check
        super().__init__([str(p) for p in self.invalid], source)


def shown(text: str) -> str:
    """`text` safe to print or encode: unpaired surrogates replaced by U+FFFD (for messages that quote input)."""
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_problem(value: object, *, max_chars: int, required: bool = False) -> str | None:
    """Why `value` is not acceptable hook text (a name, a user, a password), or None.

    A string of at most `max_chars` characters (non-empty when `required`), valid Unicode (no unpaired
    surrogate), with no control character and no bidirectional override or isolate.
    """
    if not isinstance(value, str):
        return "must be a string"
    if required and not value.strip():
        return "required, a non-empty string"
    if len(value) > max_chars:
        return f"must be at most {max_chars} characters (this one has {len(value)})"
    if _has_surrogate(value):
        return "must be valid Unicode text (it holds an unpaired surrogate)"
    found = _REFUSED.search(value)
    if found is not None:
        return f"must not contain control characters or bidirectional overrides (U+{ord(found.group()):04X})"
    return None


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
            problems.append(f"unknown event {shown(name) if isinstance(name, str) else name!r} (known: {known})")
    return problems


def ordered_problem(value: object) -> str | None:
    """`ordered`: true, false, or unset (None: the installation's `delivery.ordered_default`)."""
    return None if value is None or type(value) is bool else "must be true or false (or unset for the default)"


def rate_limit_problem(value: object) -> str | None:
    """`rate_limit`: deliveries per second, more than 0 and at most `RATE_LIMIT_MAX` (fractions allowed),
    or unset (None: no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"must be a number of deliveries per second above 0 and at most {RATE_LIMIT_MAX:g} (or unset)"
    if not 0 < value <= RATE_LIMIT_MAX:
        return f"must be above 0 and at most {RATE_LIMIT_MAX:g} deliveries per second (or unset for no limit)"
    return None


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
    if (why := text_problem(fields["name"], max_chars=NAME_MAX)) is not None:
        problems.append(Problem("name", why))
    problems.extend(
        Problem(key, "must be true or false")
        for key in ("active", "insecure_ssl", "allow_private")
        if type(fields[key]) is not bool
    )
    if (why := ordered_problem(hook.ordered)) is not None:
        problems.append(Problem("ordered", why))
    if (why := rate_limit_problem(hook.rate_limit)) is not None:
        problems.append(Problem("rate_limit", why))
    auth = hook.basic_auth
    if auth is not None:
        username: object = auth.username
        if (why := text_problem(username, max_chars=USERNAME_MAX, required=True)) is not None:
            problems.append(Problem("basic_auth.username", why))
        elif ":" in auth.username:
            problems.append(Problem("basic_auth.username", "must not contain ':'"))
        if (why := text_problem(auth.password, max_chars=PASSWORD_MAX)) is not None:
            problems.append(Problem("basic_auth.password", why))
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
    return isinstance(value, str) and bool(value.strip()) and not _has_surrogate(value)
