"""`/openapi.json`: the API described in OpenAPI 3.1, built from the same catalogue and limits as the code."""

from __future__ import annotations

from typing import Any

from hookd import __version__
from hookd.api.admin import DIRECTIONS, SORTS
from hookd.api.hooks_api import MAX_OVERLAP_S
from hookd.api.paging import DEFAULT_LIMIT, MAX_LIMIT
from hookd.events import CATALOGUE, EVENTS, GROUPS, PING
from hookd.outcomes import DeliveryState


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
_COMMON = {"401": _error("Unauthorized"), "404": _error("NotFound"), "429": _error("TooManyRequests")}
_ACCOUNT = {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}
_HOOK_ID = {"name": "hook_id", "in": "path", "required": True, "schema": {"type": "string"}}
_OFFSET = {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "description": f"page size; above {MAX_LIMIT} is served as {MAX_LIMIT}",
    "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT},
}


def _op(summary: str, responses: dict[str, Any], *, params: list[Any] = (), body: Any = None, **extra: Any) -> Any:  # type: ignore[assignment]
    op: dict[str, Any] = {"summary": summary, "parameters": [_ACCOUNT, *params], "responses": {**responses, **_COMMON}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op.update(extra)
    return op


def document() -> dict[str, Any]:
    """The OpenAPI document served at `/openapi.json`."""
    hook = "/{account_id}/api/hooks/{hook_id}"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookd hooks API",
            "version": __version__,
            "description": "Account webhooks (service hooks), shaped like the platform's hooks API v2. "
            "Authenticate with HTTP Basic: the API key as the user name, an empty password.",
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/hook_events": {
                "get": {
                    "summary": "The event catalogue: each group, then its events",
                    "security": [],
                    "responses": {"200": _json({"type": "array", "items": _ref("HookEvent")}, "the catalogue")},
                }
            },
            "/{account_id}/api/hook_events": {
                "get": _op(
                    "The event catalogue",
                    {"200": _json({"type": "array", "items": _ref("HookEvent")}, "the catalogue", _RATE)},
                )
            },
            "/{account_id}/api/hooks": {
                "get": _op(
                    "List the account's hooks",
                    {
                        "200": _json({"type": "array", "items": _ref("Hook")}, "a page of hooks (no salt)", _PAGE),
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
                    "Create a hook",
                    {"201": _json(_ref("Hook"), "the hook, with its generated salt", _RATE), "422": _error("Invalid")},
                    body=_ref("HookInput"),
                ),
            },
            hook: {
                "get": _op(
                    "One hook, with its salt and per-event last status",
                    {"200": _json(_ref("Hook"), "the hook", _RATE)},
                    params=[_HOOK_ID],
                ),
                "put": _op(
                    "Change the given fields (events replaced as a whole)",
                    {"200": _json(_ref("Hook"), "the changed hook", _RATE), "422": _error("Invalid")},
                    params=[_HOOK_ID],
                    body=_ref("HookInput"),
                ),
                "delete": _op(
                    "Delete a hook", {"200": _json(_ref("Hook"), "the deleted hook", _RATE)}, params=[_HOOK_ID]
                ),
            },
            hook + "/ping": {
                "get": _op(
                    "Send a ping through the normal delivery path",
                    {"200": _json(_ref("Hook"), "the hook", _RATE), "503": _error("Unavailable")},
                    params=[_HOOK_ID],
                )
            },
            hook + "/reset_salt": {
                "put": _op(
                    "Generate a new salt",
                    {
                        "200": _json(
                            {"type": "object", "properties": {"salt": {"type": "string"}}, "required": ["salt"]},
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
                                "type": "number",
                                "minimum": 0,
                                "maximum": MAX_OVERLAP_S,
                                "description": "keep the old salt valid this long",
                            }
                        },
                        "additionalProperties": False,
                    },
                )
            },
            hook + "/deliveries": {
                "get": _op(
                    "Recent deliveries of the hook with their attempts, most recent first",
                    {
                        "200": _json({"type": "array", "items": _ref("Delivery")}, "deliveries", _PAGE),
                        "422": _error("Invalid"),
                    },
                    params=[
                        _HOOK_ID,
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(DeliveryState)}},
                        {"name": "event", "in": "query", "schema": {"type": "string", "enum": sorted(EVENTS | {PING})}},
                        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                        _OFFSET,
                        _LIMIT,
                    ],
                )
            },
            hook + "/deliveries/{delivery_id}/redeliver": {
                "post": _op(
                    "Send a recorded delivery again, with the same delivery id",
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


def _schemas() -> dict[str, Any]:
    subscribable = sorted(EVENTS | set(GROUPS))
    settings = {
        "url": {"type": "string", "format": "uri"},
        "basic_auth": {"type": "boolean"},
        "basic_auth_data": {"type": "string", "description": "base64 of user:password"},
        "insecure_ssl": {"type": "boolean", "description": "skip TLS verification"},
    }
    return {
        "HookEvent": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "group_name": {"type": "string", "enum": [g.name for g in CATALOGUE]},
                "name": {"type": "string"},
            },
            "required": ["id", "group_name", "name"],
        },
        "HookInput": {
            "type": "object",
            "properties": {
                "type": {"const": "web"},
                "name": {"type": "string"},
                "active": {"type": "boolean", "default": True},
                "events": {"type": "array", "items": {"type": "string", "enum": subscribable}, "minItems": 1},
                "settings": {"type": "object", "properties": settings, "additionalProperties": False},
            },
            "required": ["events", "settings"],
        },
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
                        **settings,
                        "allow_private": {"type": "boolean", "description": "operator-only, read-only here"},
                    },
                },
                "account_id": {"type": "string"},
                "salt": {"type": "string", "description": "the signing secret: on create and show only"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "statuses": {"type": "array", "items": _ref("Status")},
            },
        },
        "Status": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "last_trigger_status": {"type": ["string", "null"], "enum": ["success", "failure", None]},
                "last_trigger_time": {"type": ["string", "null"], "format": "date-time"},
                "last_response_code": {"type": ["integer", "null"]},
                "last_response": {"type": ["string", "null"]},
            },
        },
        "Delivery": {
            "type": "object",
            "properties": {
                "delivery_id": {"type": "string"},
                "hook_id": {"type": "string"},
                "event": {"type": "string"},
                "event_id": {"type": "string"},
                "state": {"type": "string", "enum": list(DeliveryState)},
                "attempts": {"type": "integer"},
                "last_status": {"type": ["integer", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "attempt_log": {"type": "array", "items": {"type": "object"}},
            },
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
                    },
                },
            },
            "required": ["message"],
        },
    }


def _responses() -> dict[str, Any]:
    error = {"application/json": {"schema": _ref("Error")}}
    return {
        "Unauthorized": {"description": 'no or bad key (WWW-Authenticate: Basic realm="hookd")', "content": error},
        "NotFound": {
            "description": '{"message": "Item not found."}: no such item, or another account\'s',
            "content": error,
        },
        "TooManyRequests": {
            "description": "past the key's hourly limit (Retry-After)",
            "content": error,
            "headers": _RATE,
        },
        "Invalid": {
            "description": "invalid body or parameters: one entry per problem under errors; nothing changed",
            "content": error,
        },
        "Conflict": {"description": "the delivery has no stored body to send again", "content": error},
        "Unavailable": {"description": "the broker or the database is unreachable; nothing was done", "content": error},
    }
