"""`/openapi.json`: the API described in OpenAPI 3.1, built from the same catalogue, rules and limits as
the code, so that it requires exactly what the server requires and documents every field it returns
(`additionalProperties: false` everywhere). schemathesis holds the two together in `make test`
(tests/integration/api/test_schemathesis.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hookd import __version__
from hookd.api.admin import DIRECTIONS, SORTS
from hookd.api.bodies import READ_ONLY
from hookd.api.hooks_api import MAX_OVERLAP_S
from hookd.api.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from hookd.events import CATALOGUE, EVENTS, GROUPS, PING
from hookd.outcomes import DeliveryState
from hookd.subscriptions.rules import (
    NAME_MAX,
    PASSWORD_MAX,
    RATE_LIMIT_MAX,
    TEXT_PATTERN,
    URL_MAX,
    USERNAME_MAX,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error(description: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{description}"}


_RATE = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "requests allowed per key and hour"},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "requests left in this hour"},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Unix time the hour's window ends"},
}
_PAGE = {"Link": {"schema": {"type": "string"}, "description": "RFC 5988 links: first, prev, next, last"}, **_RATE}
_COMMON = {
    "401": _error("Unauthorized"),
    "403": _error("Forbidden"),
    "404": _error("NotFound"),
    "429": _error("TooManyRequests"),
}
_ACCOUNT = {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}
_HOOK_ID = {"name": "hook_id", "in": "path", "required": True, "schema": {"type": "string"}}
_OFFSET = {
    "name": "offset",
    "in": "query",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "description": f"page size; above {MAX_LIMIT} is served as {MAX_LIMIT}",
    "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT},
}
#: The longest `basic_auth_data`: base64 of the longest user and password at 4 UTF-8 bytes a character.
BASIC_AUTH_DATA_MAX = 4 * -(-(4 * USERNAME_MAX + 1 + 4 * PASSWORD_MAX) // 3)
#: The format names of `basic_auth_data` and of a hook URL, for tools that generate requests from this
#: document: each rule is more than a JSON Schema pattern says (tests/integration/api/schemathesis_hooks.py).
BASIC_AUTH_FORMAT = "basic-auth-data"
URL_FORMAT = "hook-url"


def _op(
    op_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    params: Sequence[Any] = (),
    body: Any = None,
    body_required: bool = True,
    example: Any = None,
    **extra: Any,
) -> Any:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": [_ACCOUNT, *params],
        "responses": {**responses, **_COMMON},
    }
    if body is not None:
        media: dict[str, Any] = {"schema": body}
        if example is not None:
            media["example"] = example
        op["requestBody"] = {"required": body_required, "content": {"application/json": media}}
        op["responses"]["415"] = _error("UnsupportedMediaType")
    op.update(extra)
    return op


def _links(*names: str) -> dict[str, Any]:
    """Links from an answer carrying a hook (`id`) to the operations on that hook (stateful testing)."""
    return {name: {"operationId": name, "parameters": {"hook_id": "$response.body#/id"}} for name in names}


def document() -> dict[str, Any]:
    """The OpenAPI document served at `/openapi.json`."""
    hook = "/{account_id}/api/hooks/{hook_id}"
    created = _json(
        _ref("Hook"), "the hook, with its generated salt", {**_RATE, "Location": {"schema": {"type": "string"}}}
    )
    created["links"] = _links("showHook", "updateHook", "deleteHook", "pingHook", "resetSalt", "listDeliveries")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookd hooks API",
            "version": __version__,
            "description": "Account webhooks (service hooks), shaped like the platform's hooks API v2. "
            "Authenticate with HTTP Basic: the API key as the user name, an empty password. "
            "Send bodies as JSON with Content-Type: application/json (else 415). A request a browser "
            "marks as coming from another site (Sec-Fetch-Site other than same-origin or none, or an "
            "Origin other than this server's) is refused with 403 before anything else.",
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/hook_events": {
                "get": {
                    "operationId": "hookEvents",
                    "summary": "The event catalogue: each group, then its events",
                    "security": [],
                    "responses": {"200": _json({"type": "array", "items": _ref("HookEvent")}, "the catalogue")},
                }
            },
            "/{account_id}/api/hook_events": {
                "get": _op(
                    "accountHookEvents",
                    "The event catalogue",
                    {"200": _json({"type": "array", "items": _ref("HookEvent")}, "the catalogue", _RATE)},
                )
            },
            "/{account_id}/api/hooks": {
                "get": _op(
                    "listHooks",
                    "List the account's hooks",
                    {
                        "200": _json(
                            {"type": "array", "items": _ref("Hook")},
                            "a page of hooks (no salt)",
                            {**_PAGE, "X-Total-Count": {"schema": {"type": "integer"}, "description": "hooks in all"}},
                        ),
                        "422": _error("Invalid"),
                    },
                    params=[
                        _OFFSET,
                        _LIMIT,
                        {"name": "sort", "in": "query", "schema": {"type": "string", "enum": list(SORTS)}},
                        {
                            "name": "direction",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(DIRECTIONS), "default": "asc"},
                        },
                    ],
                ),
                "post": _op(
                    "createHook",
                    "Create a hook (403 when the installation's network policy refuses its URL)",
                    {"201": created, "422": _error("Invalid")},
                    body=_ref("HookCreate"),
                    example={
                        "type": "web",
                        "name": "ops monitor",
                        "events": ["job.failed", "cluster"],
                        "settings": {"url": "https://ops.example.com/hooks", "ordered": True, "rate_limit": 2},
                    },
                ),
            },
            hook: {
                "get": _op(
                    "showHook",
                    "One hook, with its salt and per-event last status",
                    {"200": _json(_ref("Hook"), "the hook", _RATE)},
                    params=[_HOOK_ID],
                ),
                "put": _op(
                    "updateHook",
                    "Change the given fields (events replaced as a whole; 403 when the network policy "
                    "refuses a new URL; 409 for basic_auth true on a hook without credentials and no "
                    "basic_auth_data)",
                    {
                        "200": _json(_ref("Hook"), "the changed hook", _RATE),
                        "409": _error("Conflict"),
                        "422": _error("Invalid"),
                    },
                    params=[_HOOK_ID],
                    body=_ref("HookUpdate"),
                    example={"active": False, "settings": {"rate_limit": None}},
                ),
                "delete": _op(
                    "deleteHook",
                    "Delete a hook",
                    {"200": _json(_ref("Hook"), "the deleted hook", _RATE)},
                    params=[_HOOK_ID],
                ),
            },
            hook + "/ping": {
                "get": _op(
                    "pingHook",
                    "Send a ping through the normal delivery path",
                    {"200": _json(_ref("Hook"), "the hook", _RATE), "503": _error("Unavailable")},
                    params=[_HOOK_ID],
                )
            },
            hook + "/reset_salt": {
                "put": _op(
                    "resetSalt",
                    "Generate a new salt (the body is optional)",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"salt": {"type": "string"}},
                                "required": ["salt"],
                                "additionalProperties": False,
                            },
                            "the new salt",
                            _RATE,
                        ),
                        "422": _error("Invalid"),
                    },
                    params=[_HOOK_ID],
                    body={
                        "type": "object",
                        "properties": {
                            "overlap_s": {
                                "type": ["number", "null"],
                                "minimum": 0,
                                "maximum": MAX_OVERLAP_S,
                                "description": "keep the old salt valid this long (0 or null: not at all)",
                            }
                        },
                        "additionalProperties": False,
                    },
                    body_required=False,
                    example={"overlap_s": 86400},
                )
            },
            hook + "/deliveries": {
                "get": _op(
                    "listDeliveries",
                    "Recent deliveries of the hook with their attempts, most recent first",
                    {
                        "200": _json({"type": "array", "items": _ref("Delivery")}, "deliveries", _PAGE),
                        "422": _error("Invalid"),
                    },
                    params=[
                        _HOOK_ID,
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(DeliveryState)}},
                        {"name": "event", "in": "query", "schema": {"type": "string", "enum": sorted(EVENTS | {PING})}},
                        {
                            "name": "since",
                            "in": "query",
                            "description": "deliveries updated at or after this RFC 3339 time (with its offset)",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        _OFFSET,
                        _LIMIT,
                    ],
                )
            },
            hook + "/deliveries/{delivery_id}/redeliver": {
                "post": _op(
                    "redeliver",
                    "Send a recorded delivery again, with the same delivery id (no body)",
                    {
                        "202": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "delivery_id": {"type": "string"},
                                    "hook_id": {"type": "string"},
                                    "event": {"type": "string"},
                                    "queued": {"type": "boolean"},
                                },
                                "required": ["delivery_id", "hook_id", "event", "queued"],
                                "additionalProperties": False,
                            },
                            "queued",
                            _RATE,
                        ),
                        "409": _error("Conflict"),
                        "503": _error("Unavailable"),
                    },
                    params=[
                        _HOOK_ID,
                        {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                )
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "basic"}},
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }


def _settings_input() -> dict[str, Any]:
    return {
        "url": {
            "type": "string",
            "format": URL_FORMAT,
            "minLength": 1,
            "maxLength": URL_MAX,
            "description": f"format {URL_FORMAT}: an absolute http or https URL by RFC 3986 (hookd.urls): a host "
            "(a name read by IDNA 2008, an IPv4 address in dotted decimal, or an IPv6 address in brackets; no "
            "trailing dot, no percent-encoding), a port from 1 to 65535, a path and query of the characters RFC "
            "3986 allows there (% only as %XX), no userinfo, no fragment, no control or space characters",
        },
        "basic_auth": {"type": "boolean", "description": "false removes basic auth"},
        "basic_auth_data": {
            "type": "string",
            "format": BASIC_AUTH_FORMAT,
            "maxLength": BASIC_AUTH_DATA_MAX,
            "description": f"format {BASIC_AUTH_FORMAT}: base64 (RFC 4648, padded) of UTF-8 `user:password`: a user "
            f"of 1 to {USERNAME_MAX} characters "
            f"without ':', a password of up to {PASSWORD_MAX}, neither with control characters or bidirectional "
            "overrides; not with basic_auth false",
        },
        "insecure_ssl": {"type": "boolean", "description": "skip TLS verification"},
        "ordered": {
            "type": ["boolean", "null"],
            "description": "deliver each job's or cluster's events one at a time, in order; null: the "
            "installation's default",
        },
        "rate_limit": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": RATE_LIMIT_MAX,
            "description": "at most this many deliveries per second to the hook, across every worker; null: no limit",
        },
        "allow_private": {"type": "boolean", "readOnly": True, "description": "operator-only"},
    }


def _hook_input(*, create: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "type": "object",
        "properties": _settings_input(),
        "additionalProperties": False,
        # basic_auth false removes credentials: basic_auth_data beside it is refused
        "allOf": [
            {
                "if": {"properties": {"basic_auth": {"const": False}}, "required": ["basic_auth"]},
                "then": {"not": {"required": ["basic_auth_data"]}},
            }
        ],
    }
    if create:
        settings["required"] = ["url"]
        settings["allOf"].append(
            {
                "if": {"properties": {"basic_auth": {"const": True}}, "required": ["basic_auth"]},
                "then": {"required": ["basic_auth_data"]},
            }
        )
    read_only = {name: {"readOnly": True} for name in READ_ONLY}
    schema: dict[str, Any] = {
        "type": "object",
        "description": "read-only fields of the resource may be sent back unchanged: they are ignored",
        "properties": {
            **read_only,
            "type": {"const": "web"},
            "name": {
                "type": ["string", "null"],
                "maxLength": NAME_MAX,
                "pattern": TEXT_PATTERN,
                "description": "empty or null: the URL is shown; no control characters or bidirectional overrides",
            },
            "active": {"type": "boolean", "default": True},
            "events": {
                "type": "array",
                "items": {"type": "string", "enum": sorted(EVENTS | set(GROUPS))},
                "minItems": 1,
            },
            "settings": settings,
        },
        "additionalProperties": False,
    }
    if create:
        schema["required"] = ["events", "settings"]
    return schema


def _schemas() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    return {
        "HookEvent": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "group_name": {"type": "string", "enum": [g.name for g in CATALOGUE]},
                "name": {"type": "string"},
            },
            "required": ["id", "group_name", "name"],
            "additionalProperties": False,
        },
        "HookCreate": _hook_input(create=True),
        "HookUpdate": _hook_input(create=False),
        "Hook": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "web"},
                "name": {"type": "string", "description": "defaults to the URL"},
                "active": {"type": "boolean"},
                "events": {"type": "array", "items": {"type": "string"}},
                "settings": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "string"},
                        "basic_auth": {"type": "boolean"},
                        "basic_auth_data": {
                            "type": "string",
                            "description": "base64 of user:password: on create and show only",
                        },
                        "insecure_ssl": {"type": "boolean"},
                        "ordered": {"type": "boolean", "description": "the hook's choice, else the installation's"},
                        "rate_limit": {"type": ["number", "null"]},
                        "allow_private": {"type": "boolean", "description": "operator-only; present when true"},
                    },
                    "required": ["url", "basic_auth", "insecure_ssl", "ordered", "rate_limit"],
                    "additionalProperties": False,
                },
                "account_id": {"type": "string"},
                "salt": {"type": "string", "description": "the signing secret: on create and show only"},
                "secret": {"type": "string", "description": "the same secret as salt (create and show only)"},
                "secret_whsec": {
                    "type": "string",
                    "description": "the secret in the Standard Webhooks form (whsec_ + base64), for the "
                    "standardwebhooks and svix libraries: create and show only",
                },
                "previous_secret_expires_at": {
                    **nullable_time,
                    "description": "during a rotation overlap: when the previous secret stops verifying",
                },
                "created_at": time,
                "updated_at": time,
                "statuses": {"type": "array", "items": _ref("Status"), "description": "show only"},
            },
            "required": ["id", "type", "name", "active", "events", "settings", "account_id"],
            "additionalProperties": False,
        },
        "Status": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "last_trigger_status": {"type": ["string", "null"], "enum": ["success", "failure", None]},
                "last_trigger_time": nullable_time,
                "last_response_code": {"type": ["integer", "null"]},
                "last_response": {"type": ["string", "null"]},
            },
            "required": ["name", "last_trigger_status", "last_trigger_time", "last_response_code", "last_response"],
            "additionalProperties": False,
        },
        "Attempt": {
            "type": "object",
            "properties": {
                "attempt": {"type": "integer"},
                "status": {"type": ["integer", "null"]},
                "duration_ms": {"type": "number"},
                "outcome": {"type": "string"},
                "error": {"type": ["string", "null"]},
                "response_excerpt": {"type": ["string", "null"]},
                "at": time,
            },
            "required": ["attempt", "status", "duration_ms", "outcome", "error", "response_excerpt", "at"],
            "additionalProperties": False,
        },
        "Delivery": {
            "type": "object",
            "properties": {
                "delivery_id": {"type": "string"},
                "hook_id": {"type": "string"},
                "event": {"type": "string"},
                "event_id": {"type": "string"},
                "account_id": {"type": "string"},
                "state": {"type": "string", "enum": list(DeliveryState)},
                "attempts": {"type": "integer"},
                "last_status": {"type": ["integer", "null"]},
                "created_at": time,
                "updated_at": time,
                "attempt_log": {"type": "array", "items": _ref("Attempt")},
            },
            "required": [
                "delivery_id",
                "hook_id",
                "event",
                "event_id",
                "account_id",
                "state",
                "attempts",
                "last_status",
                "created_at",
                "updated_at",
                "attempt_log",
            ],
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["field", "message"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["message"],
            "additionalProperties": False,
        },
    }


def _responses() -> dict[str, Any]:
    error = {"application/json": {"schema": _ref("Error")}}
    challenge = {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": 'Basic realm="hookd"; to a browser, a scheme it does not prompt for',
        }
    }
    return {
        "Unauthorized": {"description": "no or bad key", "content": error, "headers": challenge},
        "Forbidden": {
            "description": "a browser marked the request as coming from another site; or, on create and "
            "update, the installation's network policy refuses the URL (errors names settings.url)",
            "content": error,
        },
        "NotFound": {
            "description": '{"message": "Item not found."}: no such item, or another account\'s',
            "content": error,
        },
        "TooManyRequests": {
            "description": "past the key's hourly limit (Retry-After)",
            "content": error,
            "headers": {**_RATE, "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
        },
        "Invalid": {
            "description": "invalid body or parameters: one entry per problem under errors; nothing changed",
            "content": error,
        },
        "UnsupportedMediaType": {
            "description": "the body is not sent as application/json; nothing changed",
            "content": error,
        },
        "Conflict": {
            "description": "the request conflicts with the item's state (no stored body to send again; "
            "basic auth asked for without credentials); nothing changed",
            "content": error,
        },
        "Unavailable": {"description": "the broker or the database is unreachable; nothing was done", "content": error},
    }
