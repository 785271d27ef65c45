"""The REST routes: the platform's hooks API (v2) under `/{account_id}/api`, plus the event catalogue.

Every request under `/{account_id}/api` is first refused when a browser marks it as coming from
another site (403, `crosssite`), then authenticated (HTTP Basic, the key as user name: 401
otherwise), counted against the key's hourly quota (429 past it), and authorized: a key of another
account gets the same 404 as a hook that does not exist. A body must be JSON and say so
(`Content-Type: application/json`, else 415); an invalid one is a 422 listing every problem, a URL
the network policy refuses is a 403, and nothing is written.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, request

from hookd.api import crosssite, keys, ratelimit
from hookd.api.admin import DeliveryFilter, plausible_id
from hookd.api.bodies import API_FIELDS, Changes, api_changes, renamed
from hookd.api.context import context, json_response
from hookd.api.errors import ApiError, invalid, not_found, unauthorized
from hookd.api.paging import link_header, page, since_parameter
from hookd.events import CATALOGUE, EVENTS, PING, normalize_account
from hookd.outcomes import DeliveryState
from hookd.resource import delivery_resource, hook_resource
from hookd.subscriptions.model import Hook
from hookd.subscriptions.rules import InvalidHook, Problem

api = Blueprint("api", __name__)
#: The longest rotation overlap `reset_salt` accepts (as `hookd hooks reset-secret --overlap`).
MAX_OVERLAP_S = 30 * 86400
_HOOK = "/<account_id>/api/hooks/<hook_id>"


def catalogue() -> list[dict[str, str]]:
    """`GET /hook_events`: per group, the group (`job`, "All Job Notifications") then its events."""
    entries: list[dict[str, str]] = []
    for group in CATALOGUE:
        entries.append({"id": group.id, "group_name": group.name, "name": group.label})
        entries += [{"id": e.name, "group_name": group.name, "name": e.label} for e in group.events]
    return entries


def presented_key() -> str | None:
    """The API key of an HTTP Basic `Authorization` header: the user name (else the password)."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return auth.username or auth.password or None


@api.before_request
def _authenticate() -> None:
    why = crosssite.refusal(dict(request.headers), request.host_url)
    if why is not None:
        raise ApiError(403, f"Refused: {why}. Use the console in a browser; the API is for programs.")
    ctx = context()
    text = presented_key()
    key = None if text is None else keys.lookup(ctx.db, text)
    if key is None:
        raise unauthorized(browser=crosssite.is_browser(dict(request.headers)))
    g.key_id = key.id
    quota = ratelimit.hit(ctx.db, key.id, ctx.settings.api.rate_limit_per_hour, time.time())
    g.quota = quota
    if quota.exceeded:
        wait = max(1, quota.reset_at - int(time.time()))
        raise ApiError(
            429,
            f"Rate limit exceeded: {quota.limit} requests an hour per API key. Try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    account = normalize_account((request.view_args or {}).get("account_id"))
    if account is None or not plausible_id(account) or not key.may_manage(account):
        raise not_found()
    g.account = account


#: The query parameters each route reads; any other is a 422 (the spec lists exactly these).
_PARAMETERS = {
    "api.list_hooks": frozenset({"offset", "limit", "sort", "direction"}),
    "api.list_deliveries": frozenset({"status", "event", "since", "offset", "limit"}),
}


@api.before_request
def _known_parameters() -> None:
    known = _PARAMETERS.get(request.endpoint or "", frozenset())
    unknown = [Problem(name, "unknown query parameter") for name in request.args if name not in known]
    if unknown:
        raise invalid(unknown, "Invalid query parameters.")


def _body(*, required: bool = True) -> Any:
    """The JSON body: 415 unless it is sent as `application/json`, 422 when it is not JSON. An optional
    body may be left out (any Content-Type, or none): it reads as `{}`."""
    raw = request.get_data(cache=False)
    if not raw and not required:
        return {}
    if not crosssite.is_json(request.mimetype):
        raise ApiError(415, "Send the body as JSON, with Content-Type: application/json.")
    if not raw.strip():
        raise invalid([Problem("body", "required: a JSON object")])
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise invalid([Problem("body", "is not valid JSON")]) from None


def _checked(read: Changes, current: Hook | None) -> dict[str, Any]:
    """The changes of a well-formed body; else 422 with the shape problems and whatever else the store
    would have said, or 409 when the body conflicts with the hook's state."""
    if read.problems:
        flagged = {p.field for p in read.problems}
        found = renamed(context().admin.problems(g.account, read.changes, current), API_FIELDS)
        raise invalid([*read.problems, *(p for p in found if p.field not in flagged)])
    if read.conflict is not None:
        raise ApiError(409, read.conflict)
    return read.changes


def _refused(exc: InvalidHook) -> ApiError:
    """A store's refusal: 403 when the network policy refused the URL of valid fields, else 422."""
    problems = renamed(exc.invalid, API_FIELDS)
    if exc.from_check:
        return ApiError(403, "The network policy of this installation refuses this URL.", problems=problems)
    return invalid(problems)


def _resource(hook: Hook, **extra: Any) -> dict[str, Any]:
    return hook_resource(hook, ordered_default=context().settings.delivery.ordered_default, **extra)


@api.get("/<account_id>/api/hooks")
def list_hooks(account_id: str) -> Response:
    """List the account's hooks, a page at a time (Link headers), sorted as asked."""
    wanted = page(request.args.to_dict())
    hooks = context().admin.hooks(g.account, sort=wanted.sort, direction=wanted.direction)
    shown = hooks[wanted.offset : wanted.offset + wanted.limit]
    headers = {"X-Total-Count": str(len(hooks))}
    more = wanted.offset + wanted.limit < len(hooks)
    link = link_header(request.base_url, request.args.to_dict(), wanted, total=len(hooks), more=more)
    if link:
        headers["Link"] = link
    return json_response([_resource(h) for h in shown], headers=headers)


@api.post("/<account_id>/api/hooks")
def create_hook(account_id: str) -> Response:
    """Create a hook; 201 with its generated `salt`."""
    changes = _checked(api_changes(_body()), None)
    try:
        hook = context().admin.create(g.account, changes)
    except InvalidHook as exc:
        raise _refused(exc) from None
    location = f"{request.base_url}/{hook.id}"
    return json_response(_resource(hook, reveal=True), 201, {"Location": location})


@api.get(_HOOK)
def show_hook(account_id: str, hook_id: str) -> Response:
    """One hook, with its salt and the last trigger of each event it subscribes to."""
    admin = context().admin
    hook = admin.hook(g.account, hook_id)
    return json_response(_resource(hook, reveal=True, statuses=admin.statuses(hook)))


@api.put(_HOOK)
def update_hook(account_id: str, hook_id: str) -> Response:
    """Change the given fields; `events` replaces the whole list."""
    admin = context().admin
    current = admin.hook(g.account, hook_id)
    changes = _checked(api_changes(_body(), current=current), current)
    try:
        hook = admin.update(g.account, hook_id, changes)
    except InvalidHook as exc:
        raise _refused(exc) from None
    return json_response(_resource(hook))


@api.delete(_HOOK)
def delete_hook(account_id: str, hook_id: str) -> Response:
    """Delete a hook; 200 with what it was."""
    return json_response(_resource(context().admin.delete(g.account, hook_id)))


@api.get(_HOOK + "/ping")
def ping_hook(account_id: str, hook_id: str) -> Response:
    """Send a ping through the broker and the normal delivery path."""
    hook, _ = context().admin.ping(g.account, hook_id)
    return json_response(_resource(hook))


@api.put(_HOOK + "/reset_salt")
def reset_salt(account_id: str, hook_id: str) -> Response:
    """A new salt; `{"overlap_s": N}` keeps the old one valid for N more seconds."""
    admin = context().admin
    admin.hook(g.account, hook_id)
    body = _body(required=False)
    problems: list[Problem] = []
    overlap = None
    if not isinstance(body, dict):
        problems.append(Problem("body", "must be a JSON object"))
    else:
        problems += [Problem(k, "unknown field") for k in body if k != "overlap_s"]
        raw = body.get("overlap_s")
        if raw is not None:
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= MAX_OVERLAP_S:
                problems.append(Problem("overlap_s", f"must be a number of seconds from 0 to {MAX_OVERLAP_S}"))
            elif raw > 0:
                overlap = timedelta(seconds=raw)
    if problems:
        raise invalid(problems)
    hook = admin.reset_salt(g.account, hook_id, overlap)
    return json_response({"salt": hook.secret})


@api.get(_HOOK + "/deliveries")
def list_deliveries(account_id: str, hook_id: str) -> Response:
    """Recent deliveries of the hook with their attempts; filters `status`, `event`, `since`."""
    args = request.args.to_dict()
    wanted = page(args, sortable=False)
    found = _delivery_filter(args)
    rows = context().admin.deliveries(g.account, hook_id, found, limit=wanted.limit + 1, offset=wanted.offset)
    more = len(rows) > wanted.limit
    rows = rows[: wanted.limit]
    headers = {}
    link = link_header(request.base_url, args, wanted, total=None, more=more)
    if link:
        headers["Link"] = link
    return json_response([delivery_resource(r, r.pop("attempt_log")) for r in rows], headers=headers)


def _delivery_filter(args: dict[str, str]) -> DeliveryFilter:
    """`status`, `event`, `since`: each, when given, must be valid (an empty value is not)."""
    problems: list[Problem] = []
    status = args.get("status")
    if status is not None and status not in set(DeliveryState):
        problems.append(Problem("status", f"must be one of {', '.join(DeliveryState)}"))
    event = args.get("event")
    if event is not None and event not in EVENTS | {PING}:
        problems.append(Problem("event", "must be an event name, e.g. job.failed, or ping"))
    since = None
    if "since" in args:
        since = since_parameter(args["since"])
        if since is None:
            problems.append(Problem("since", "must be an RFC 3339 time with its offset, e.g. 2026-11-29T03:00:00Z"))
    if problems:
        raise invalid(problems, "Invalid query parameters.")
    return DeliveryFilter(status=status, event=event, since=since)


@api.post(_HOOK + "/deliveries/<delivery_id>/redeliver")
def redeliver(account_id: str, hook_id: str, delivery_id: str) -> Response:
    """Send a recorded delivery again through the broker, with the same delivery id; 202."""
    delivery = context().admin.redeliver(g.account, hook_id, delivery_id)
    body = {"delivery_id": delivery.delivery_id, "hook_id": delivery.hook_id, "event": delivery.event, "queued": True}
    return json_response(body, 202)


@api.get("/<account_id>/api/hook_events")
def account_hook_events(account_id: str) -> Response:
    """The event catalogue, under the account's API too."""
    return json_response(catalogue())
