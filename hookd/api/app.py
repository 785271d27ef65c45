"""The Flask app: the API and console blueprints, the headers every answer carries, one log line per request.

Every response, whatever produced it (a route, an error handler, a static file), gets the same
security headers, among them a `Content-Security-Policy` that allows nothing but this origin's own
stylesheet and images and forms posting back here: no script, no frame, nothing from elsewhere.
Dynamic answers are `Cache-Control: no-store` (they may hold a secret). Errors under
`/{account_id}/api` and `/hook_events` are JSON; the console's are HTML pages.

Logging: one `api.request` line per request, with the route's template (never the path with its
values, nor the query), the status, the account, the key id and the duration: never the key, the
session cookie, a secret or a body.
"""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as BaseResponse

from hookd import logs
from hookd.api import (
    console,
    hook_pages,  # noqa: F401 (its routes join the console blueprint when imported)
    hooks_api,
    openapi,
)
from hookd.api.admin import Admin
from hookd.api.context import Context, install, json_response
from hookd.api.errors import NOT_FOUND, ApiError, ItemNotFound
from hookd.config import Settings
from hookd.errors import BrokerError, HookNotFound, StoreError, UndecryptableSecrets, UsageError
from hookd.state.db import Database
from hookd.subscriptions.rules import shown
from hookd.subscriptions.sql_store import SqlStore

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_BODY_BYTES = 256 * 1024
_HERE = Path(__file__).parent
_log = logs.get_logger("hookd.api")


def create_app(settings: Settings, store: SqlStore, state: Database) -> Flask:
    """The WSGI app for `hookd serve` (store: the migrated hooks database; state: delivery history)."""
    app = Flask(__name__, static_folder=None, template_folder=str(_HERE / "templates"))
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, TEMPLATES_AUTO_RELOAD=False)
    install(app, Context(settings, store, state, Admin(settings, store, state)))
    app.register_blueprint(hooks_api.api)
    app.register_blueprint(console.console)  # with the hook pages' routes (imported above)
    app.add_url_rule("/hook_events", "hook_events", lambda: json_response(hooks_api.catalogue()))
    app.add_url_rule("/openapi.json", "openapi", lambda: json_response(openapi.document()))
    app.before_request(_start_clock)
    app.after_request(_finish)
    app.register_error_handler(Exception, _error)
    if settings.api.trust_proxy_headers:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)  # type: ignore[method-assign]
    return app


def _start_clock() -> None:
    g.started = time.monotonic()


def is_api_request() -> bool:
    """JSON errors for the API, the catalogue and /openapi.json; HTML for the console."""
    parts = request.path.strip("/").split("/")
    return (len(parts) > 1 and parts[1] == "api") or request.path in ("/hook_events", "/openapi.json")


def _finish(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers.setdefault("Cache-Control", "no-store")
    quota = g.get("quota")
    if quota is not None:
        response.headers.update(quota.headers())
    started = g.get("started")
    _log.info(
        "api.request",
        method=request.method,
        route=request.url_rule.rule if request.url_rule is not None else None,
        status=response.status_code,
        account_id=g.get("account"),
        key_id=g.get("key_id"),
        duration_ms=round((time.monotonic() - started) * 1000, 1) if started is not None else None,
    )
    return response


def _error(exc: Exception) -> BaseResponse:
    """Every error as JSON (API) or an HTML page (console), with its status. Rendering the answer
    cannot fail in turn: if it does, a fixed 500 in the right format is sent and the cause logged."""
    try:
        error = _as_api_error(exc)
        if is_api_request():
            return json_response(error.body(), error.status, error.headers)
        return console.error_page(error.status, shown(error.message), error.headers)
    except Exception:  # the last resort: whatever went wrong, answer and log it
        _log.exception("api.error_page_failed")
        if is_api_request():
            return Response('{"message":"Internal error."}', status=500, mimetype="application/json")
        return Response("Internal error.", status=500, mimetype="text/plain")


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ItemNotFound | HookNotFound):
        return ApiError(404, NOT_FOUND)
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        message = NOT_FOUND if code == 404 else (exc.description or exc.name)
        headers = {}
        if code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return ApiError(code, message, headers=headers)
    if isinstance(exc, UsageError):
        return ApiError(409, str(exc))
    if isinstance(exc, BrokerError):
        _log.error("api.broker_unavailable", error=str(exc))
        return ApiError(503, "The message broker is unreachable; nothing was sent. Try again later.")
    if isinstance(exc, UndecryptableSecrets):  # a value altered since start-up (serve checked them all)
        _log.error("api.secrets_unreadable", key_ids=list(exc.key_ids), problems=list(exc.problems))
        return ApiError(503, "Stored secrets cannot be read with this server's keys; nothing was changed.")
    if isinstance(exc, StoreError):
        _log.error("api.store_unavailable", error=str(exc))
        return ApiError(503, "The database is unavailable; nothing was changed. Try again later.")
    _log.exception("api.failed")
    return ApiError(500, "Internal error.")
