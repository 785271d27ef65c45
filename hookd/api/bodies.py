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
from typing import Any

from hookd.events import GROUPS
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
_SETTINGS = frozenset({"url", "basic_auth", "basic_auth_data", "insecure_ssl", "allow_private"})
#: The store's field names (rules.hook_problems) as the API names them.
API_FIELDS = {
    "url": "settings.url",
    "insecure_ssl": "settings.insecure_ssl",
    "allow_private": "settings.allow_private",
    "basic_auth.username": "settings.basic_auth_data",
    "basic_auth.password": "settings.basic_auth_data",
}
#: ... and as the console's form names them.
FORM_FIELDS = {"basic_auth.username": "basic_auth_user", "basic_auth.password": "basic_auth_password"}
OPERATOR_ONLY = "only the operator can change this (hookd hooks update --allow-private)"


def renamed(problems: Sequence[Problem], names: Mapping[str, str]) -> list[Problem]:
    """The store's problems under the caller's field names."""
    return [Problem(names.get(p.field, p.field), p.message) for p in problems]


def api_changes(body: object, *, current: Hook | None = None) -> tuple[dict[str, Any], list[Problem]]:
    """`POST /hooks` (current None) or `PUT /hooks/{id}` body as store changes, and its shape problems.

    Creating needs `events` and `settings.url`; updating changes only the fields given (`events`
    replaces the whole list). `basic_auth: false` removes basic auth; `basic_auth_data` sets it.
    """
    if not isinstance(body, dict):
        return {}, [Problem("body", "must be a JSON object")]
    problems: list[Problem] = [Problem(k, "unknown field") for k in body if k not in _TOP and k not in READ_ONLY]
    changes: dict[str, Any] = {}
    if body.get("type", "web") != "web":
        problems.append(Problem("type", 'must be "web"'))
    if "name" in body:
        if body["name"] is None or isinstance(body["name"], str):
            changes["name"] = (body["name"] or "").strip()
        else:
            problems.append(Problem("name", "must be a string"))
    if "active" in body:
        _boolean(body, "active", "active", changes, problems)
    if "events" in body or current is None:
        events = body.get("events")
        if isinstance(events, list) and all(isinstance(e, str) for e in events):
            changes["events"] = list(dict.fromkeys(e.strip() for e in events))
        else:
            problems.append(
                Problem("events", f"must be a non-empty list of event names or groups ({', '.join(GROUPS)})")
            )
    settings = body.get("settings", {} if current is not None else None)
    if not isinstance(settings, dict):
        problems.append(Problem("settings", "must be an object with at least url"))
        return changes, problems
    problems += [Problem(f"settings.{k}", "unknown field") for k in settings if k not in _SETTINGS]
    if "url" in settings or current is None:
        changes["url"] = settings.get("url")
    if "insecure_ssl" in settings:
        _boolean(settings, "insecure_ssl", "settings.insecure_ssl", changes, problems)
    allowed = current.allow_private if current is not None else False
    if "allow_private" in settings and settings["allow_private"] is not allowed:
        problems.append(Problem("settings.allow_private", OPERATOR_ONLY))
    _basic_auth(settings, current, changes, problems)
    return changes, problems


def _boolean(source: Mapping[str, Any], key: str, field: str, changes: dict[str, Any], problems: list[Problem]) -> None:
    if isinstance(source[key], bool):
        changes[key] = source[key]
    else:
        problems.append(Problem(field, "must be true or false"))


def _basic_auth(
    settings: Mapping[str, Any], current: Hook | None, changes: dict[str, Any], problems: list[Problem]
) -> None:
    wanted = settings.get("basic_auth")
    data = settings.get("basic_auth_data")
    if wanted is not None and not isinstance(wanted, bool):
        problems.append(Problem("settings.basic_auth", "must be true or false"))
        return
    if wanted is False:
        if current is None or current.basic_auth is not None:
            changes["basic_auth"] = None
        return
    if data is None:
        if wanted and (current is None or current.basic_auth is None):
            problems.append(Problem("settings.basic_auth_data", "required with basic_auth: base64 of user:password"))
        return
    auth = decode_basic_auth(data)
    if auth is None:
        problems.append(Problem("settings.basic_auth_data", "must be base64 of user:password, with a user"))
    else:
        changes["basic_auth"] = auth


def decode_basic_auth(data: object) -> BasicAuth | None:
    """`basic_auth_data` (base64 of `user:password`) as credentials; None when it is not that."""
    if not isinstance(data, str):
        return None
    try:
        text = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = text.partition(":")
    return BasicAuth(user, password) if colon and user.strip() else None


def form_changes(form: Mapping[str, Any], *, current: Hook | None = None) -> dict[str, Any]:
    """The console's hook form as store changes; the store reports what is wrong with them.

    `form` maps each field to its list of values (a `MultiDict.to_dict(flat=False)`). A checked
    group box stands for its whole group, whatever its events' boxes say. Basic auth: an empty user
    removes it; an empty password keeps the current one (the page never shows it).
    """

    def one(name: str) -> str:
        values = form.get(name) or [""]
        return str(values[0])

    chosen = [str(e) for e in form.get("events", [])]
    groups = [g for g in GROUPS if g in chosen]
    events = groups + [e for e in chosen if e not in GROUPS and not any(e in GROUPS[g] for g in groups)]
    changes: dict[str, Any] = {
        "url": one("url").strip(),
        "name": one("name").strip(),
        "events": list(dict.fromkeys(events)),
        "active": "active" in form,
        "insecure_ssl": "insecure_ssl" in form,
    }
    user, password = one("basic_auth_user").strip(), one("basic_auth_password")
    if not user:
        changes["basic_auth"] = None
    elif current is not None and current.basic_auth is not None and not password:
        changes["basic_auth"] = BasicAuth(user, current.basic_auth.password)
    else:
        changes["basic_auth"] = BasicAuth(user, password)
    return changes
