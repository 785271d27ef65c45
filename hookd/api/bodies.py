"""Request bodies (API JSON) and console forms, turned into the changes `SqlStore.create/update` take.

Shape problems are found here (a field of the wrong type, an unknown field, basic-auth data that is
not base64 of `user:password`); what a valid hook is stays `rules.hook_problems`' alone, checked by
the store. Both kinds of problem come back as `Problem`s named after the caller's own fields: the
API's dotted names (`settings.url`), or the console form's input names (`url`). `allow_private` is
never passed on: an account admin cannot set it, and asking to change it is a problem.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hookd.events import CATALOGUE, GROUPS
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.rules import Problem

#: Fields of the resource that a client may send back unchanged (a GET edited and PUT) but not set.
READ_ONLY = frozenset(
    {
        "id",
        "salt",
        "secret",
        "secret_whsec",
        "account_id",
        "created_at",
        "updated_at",
        "statuses",
        "previous_secret_expires_at",
    }
)
_TOP = frozenset({"type", "name", "active", "events", "settings"})
_SETTINGS = frozenset(
    {"url", "basic_auth", "basic_auth_data", "insecure_ssl", "ordered", "rate_limit", "allow_private"}
)
#: The store's field names (rules.hook_problems) as the API names them.
API_FIELDS = {
    "url": "settings.url",
    "insecure_ssl": "settings.insecure_ssl",
    "allow_private": "settings.allow_private",
    "ordered": "settings.ordered",
    "rate_limit": "settings.rate_limit",
    "basic_auth.username": "settings.basic_auth_data",
    "basic_auth.password": "settings.basic_auth_data",
}
#: ... and as the console's form names them.
FORM_FIELDS = {"basic_auth.username": "basic_auth_user", "basic_auth.password": "basic_auth_password"}
OPERATOR_ONLY = "only the operator can change this (hookd hooks update --allow-private)"
#: `basic_auth: true` on a hook without credentials and without `basic_auth_data`: a conflict with the
#: hook's state (409), not a malformed request.
NO_CREDENTIALS = "basic_auth: true needs basic_auth_data: this hook has no credentials to keep"


@dataclass(frozen=True, slots=True)
class Changes:
    """A request body read: the store changes, the shape problems (422), and a conflict with the
    hook's current state (409), if any."""

    changes: dict[str, Any]
    problems: list[Problem]
    conflict: str | None = None


def renamed(problems: Sequence[Problem], names: Mapping[str, str]) -> list[Problem]:
    """The store's problems under the caller's field names."""
    return [Problem(names.get(p.field, p.field), p.message) for p in problems]


def api_changes(body: object, *, current: Hook | None = None) -> Changes:
    """`POST /hooks` (current None) or `PUT /hooks/{id}` body as store changes, and its shape problems.

    Creating needs `events` and `settings.url`; updating changes only the fields given (`events`
    replaces the whole list). Values are taken as sent (nothing trimmed): what the spec calls valid
    is what the field rules accept. `basic_auth: false` removes basic auth (and refuses
    `basic_auth_data` beside it); `basic_auth_data` sets it. Read-only fields of the resource
    (`READ_ONLY`: a GET edited and sent back) are ignored.
    """
    if not isinstance(body, dict):
        return Changes({}, [Problem("body", "must be a JSON object")])
    problems: list[Problem] = [Problem(k, "unknown field") for k in body if k not in _TOP and k not in READ_ONLY]
    changes: dict[str, Any] = {}
    if "type" in body and body["type"] != "web":
        problems.append(Problem("type", 'must be "web"'))
    if "name" in body:
        changes["name"] = "" if body["name"] is None else body["name"]  # the rules judge its type and text
    if "active" in body:
        _boolean(body, "active", "active", changes, problems)
    if "events" in body or current is None:
        events = body.get("events")
        if isinstance(events, list) and all(isinstance(e, str) for e in events):
            changes["events"] = list(dict.fromkeys(events))
        else:
            problems.append(
                Problem("events", f"must be a non-empty list of event names or groups ({', '.join(GROUPS)})")
            )
    settings = body.get("settings", {} if current is not None else None)
    if not isinstance(settings, dict):
        problems.append(Problem("settings", "must be an object with at least url"))
        return Changes(changes, problems)
    problems += [Problem(f"settings.{k}", "unknown field") for k in settings if k not in _SETTINGS]
    if "url" in settings or current is None:
        changes["url"] = settings.get("url")
    if "insecure_ssl" in settings:
        _boolean(settings, "insecure_ssl", "settings.insecure_ssl", changes, problems)
    for key in ("ordered", "rate_limit"):  # null: the installation's default, no limit
        if key in settings:
            changes[key] = settings[key]
    allowed = current.allow_private if current is not None else False
    if "allow_private" in settings and settings["allow_private"] is not allowed:
        problems.append(Problem("settings.allow_private", OPERATOR_ONLY))
    conflict = _basic_auth(settings, current, changes, problems)
    return Changes(changes, problems, conflict)


def _boolean(source: Mapping[str, Any], key: str, field: str, changes: dict[str, Any], problems: list[Problem]) -> None:
    if isinstance(source[key], bool):
        changes[key] = source[key]
    else:
        problems.append(Problem(field, "must be true or false"))


def _basic_auth(
    settings: Mapping[str, Any], current: Hook | None, changes: dict[str, Any], problems: list[Problem]
) -> str | None:
    """`basic_auth` and `basic_auth_data` as a change of `basic_auth`; returns a conflict, if any."""
    wanted = settings.get("basic_auth")
    if "basic_auth" in settings and not isinstance(wanted, bool):
        problems.append(Problem("settings.basic_auth", "must be true or false"))
        return None
    if "basic_auth_data" not in settings:
        if wanted is False and (current is None or current.basic_auth is not None):
            changes["basic_auth"] = None
        elif wanted is True and current is None:
            problems.append(Problem("settings.basic_auth_data", "required with basic_auth: base64 of user:password"))
        elif wanted is True and current is not None and current.basic_auth is None:
            return NO_CREDENTIALS
        return None
    if wanted is False:
        problems.append(Problem("settings.basic_auth_data", "must not be given with basic_auth: false"))
        return None
    auth = decode_basic_auth(settings["basic_auth_data"])
    if auth is None:
        problems.append(Problem("settings.basic_auth_data", "must be base64 (RFC 4648) of UTF-8 user:password"))
    else:
        changes["basic_auth"] = auth
    return None


def decode_basic_auth(data: object) -> BasicAuth | None:
    """`basic_auth_data` (base64 of `user:password`) as credentials, for the rules to judge; None when it
    is not base64 of UTF-8 text with a `:` in it."""
    if not isinstance(data, str):
        return None
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = text.partition(":")
    return BasicAuth(user, password) if colon else None


def form_changes(form: Mapping[str, Any], *, ordered_default: bool, current: Hook | None = None) -> dict[str, Any]:
    """The console's hook form as store changes; the store reports what is wrong with them.

    `form` maps each field to its list of values (a `MultiDict.to_dict(flat=False)`). Events: a
    ticked group box stands for its whole group (future events included) unless one of the group's
    events that the page showed ticked (`shown_events`) was unticked: then the events still ticked
    are stored one by one. Basic auth: an empty user removes it; an empty password keeps the current
    one (the page never shows it). `ordered` stays unset (the installation's default) while the box
    says what the default says; the rate limit is a number of deliveries per second, empty for none.
    """

    def one(name: str) -> str:
        values = form.get(name) or [""]
        return str(values[0])

    chosen = [str(e) for e in form.get("events", [])]
    shown = set(one("shown_events").split(","))
    events: list[str] = []
    for group in CATALOGUE:
        members = [e.name for e in group.events]
        unticked = [e for e in members if e in shown and e not in chosen]
        if group.id in chosen and not unticked:
            events.append(group.id)
        else:
            events += [e for e in members if e in chosen]
    events += [e for e in chosen if e not in GROUPS and not any(e in members for members in GROUPS.values())]
    changes: dict[str, Any] = {
        "url": one("url").strip(),
        "name": one("name").strip(),
        "events": list(dict.fromkeys(events)),
        "active": "active" in form,
        "insecure_ssl": "insecure_ssl" in form,
    }
    ordered = "ordered" in form
    kept_default = (current is None or current.ordered is None) and ordered == ordered_default
    changes["ordered"] = None if kept_default else ordered
    changes["rate_limit"] = _number(one("rate_limit").strip())
    user, password = one("basic_auth_user").strip(), one("basic_auth_password")
    if not user:
        changes["basic_auth"] = None
    elif current is not None and current.basic_auth is not None and not password:
        changes["basic_auth"] = BasicAuth(user, current.basic_auth.password)
    else:
        changes["basic_auth"] = BasicAuth(user, password)
    return changes


def _number(text: str) -> float | str | None:
    """A form's number as a float; empty as None; anything else as given, for the rules to refuse."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text
