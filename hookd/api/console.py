"""The Service Hooks console: server-rendered pages for account admins, working without JavaScript.

Sign in with an API key (a session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS), then the
account's hooks (`hook_pages`): list, create, show, edit, show or reset the secret, ping, disable or
enable, delete (after a confirmation page), and per delivery a redelivery. Every form carries a CSRF
token and every POST without the right one is refused (403) before anything happens. The pages call
the same `Admin` operations as the API, so both enforce the same rules. An operator key picks an
account first (`/account`). Every POST that changes something answers with a redirect (a reload
repeats nothing), and outcomes are shown after it by a fixed notice code in the URL, never by
echoing user input.

This module holds the blueprint, sessions, CSRF, rendering and sign-in; `hook_pages` the hooks' pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response

from hookd.api import keys, sessions, wording
from hookd.api.context import context
from hookd.api.errors import ApiError
from hookd.events import CATALOGUE, LABELS, normalize_account
from hookd.outcomes import Disabled
from hookd.resource import iso_time
from hookd.state import notices

console = Blueprint("console", __name__)
STATIC = Path(__file__).parent / "static"
NOTICES = {
    "created": "Webhook created. Its secret is on this page, behind Show secret.",
    "saved": "Saved.",
    "pinged": "Ping sent through the normal delivery path: it appears under Recent deliveries within seconds.",
    "secret-reset": "New secret made: give it to the receiver. Running workers sign with it once they have "
    "reloaded the hook, within subscriptions.poll_interval_s (a second by default).",
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled: it receives nothing until enabled again.",
    "deleted": "Webhook deleted.",
    "redelivered": "Redelivery queued, with the same delivery id.",
    "signed-out": "Signed out.",
}
View = TypeVar("View", bound=Callable[..., Any])


# -- sessions, CSRF and rendering ------------------------------------------------------------------
def _csrf_field() -> Markup:
    """A form's hidden CSRF token (with a hidden label, so that every input has one)."""
    g.forms = g.get("forms", 0) + 1
    ident = f"csrf-{g.forms}"
    return Markup(
        '<input type="hidden" name="csrf_token" id="{0}" value="{1}"><label for="{0}" hidden>Form token</label>'
    ).format(ident, g.get("csrf", ""))


def _when(moment: datetime | None) -> Markup:
    """A time as people read it ("3 min ago"), the exact UTC time in `datetime` and the title."""
    if moment is None:
        return Markup("never")
    return Markup('<time datetime="{0}" title="{1}">{2}</time>').format(
        iso_time(moment), wording.exact(moment), wording.ago(moment)
    )


@console.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "csrf_field": _csrf_field,
        "labels": LABELS,
        "catalogue": CATALOGUE,
        "iso_time": iso_time,
        "when": _when,
        "plain_error": wording.plain_error,
        "outcome": wording.outcome,
    }


def page(template: str, status: int = 200, **values: Any) -> Response:
    session = g.get("session")
    notice = NOTICES.get(request.args.get("notice", ""))
    html = render_template(template, session=session, account=g.get("account"), notice=notice, **values)
    return make_response(html, status)


def error_page(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    g.csrf = g.session.csrf_token if g.get("session") else None
    response = page("error.html", status, code=status, message=message)
    response.headers.update({k: v for k, v in (headers or {}).items() if k != "WWW-Authenticate"})
    return response


def _cookie_session() -> sessions.Session | None:
    return sessions.find(context().db, request.cookies.get(sessions.COOKIE))


def _refuse_forged() -> None:
    if request.method == "POST" and not sessions.csrf_ok(g.csrf, request.form.get("csrf_token")):
        raise ApiError(
            403,
            "This form has expired or did not come from this console; nothing was done. Reload the page and try again.",
        )


def signed_in(view: View) -> View:
    """Require a live session (else back to sign-in) with an account chosen, and a CSRF token on POST."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = _cookie_session()
        if session is None:
            return redirect(url_for("console.home"), 303)
        g.session, g.csrf, g.key_id = session, session.csrf_token, session.key.id
        _refuse_forged()
        if session.account_id is None and view.__name__ not in ("account", "choose_account"):
            return redirect(url_for("console.account"), 303)
        g.account = session.account_id
        return view(*args, **kwargs)

    return cast(View, wrapper)


def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=request.is_secure, httponly=True, samesite="Strict"
    )


def back(endpoint: str, notice: str | None = None, **values: Any) -> Response:
    """A 303 to a page of the console, with a notice code to show there."""
    if notice:
        values["notice"] = notice
    return redirect(url_for(endpoint, **values), 303)


@dataclass(frozen=True, slots=True)
class Health:
    """A hook's health as the console shows it: a CSS class, a word, how it came about, since when."""

    css: str
    text: str
    how: str
    at: datetime


def health_of(state: notices.NoticeState | None) -> Health | None:
    """Failing since, disabled because, recovered at: from the hook's last `hook.*` notice (None: no
    notice ever, the hook never failed for long)."""
    if state is None:
        return None
    if state.state == notices.FAILING:
        return Health("failure", "Failing", "deliveries keep failing, since", state.since)
    if state.state == notices.DISABLED:
        if state.reason == Disabled.GONE:
            why = "its receiver answered 410 Gone"
        else:
            why = f"it kept failing for {_duration(context().settings.delivery.disable_after_s)}"
        return Health("failure", "Disabled automatically", f"because {why},", state.since)
    return Health("success", "Healthy", "recovered", state.since)


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size, 1)
            shown = int(count) if count == int(count) else count
            return f"{shown} {unit}{'' if shown == 1 else 's'}"
    return f"{seconds:g} seconds"


# -- sign in and out, account ------------------------------------------------------------------------
@console.get("/")
def home() -> Response:
    session = _cookie_session()
    if session is not None:
        return back("console.hooks" if session.account_id else "console.account")
    return _sign_in_page()


@console.get("/sign-in")
def sign_in_form() -> Response:
    """The sign-in form even when signed in (to switch keys): signing in replaces the session."""
    return _sign_in_page()


def _sign_in_page(error: str | None = None, status: int = 200) -> Response:
    g.csrf = sessions.new_token()
    response = page("sign_in.html", status, error=error)
    _set_cookie(response, sessions.SIGNIN_COOKIE, g.csrf, None)
    return response


@console.post("/sign-in")
def sign_in() -> Response:
    if not sessions.csrf_ok(request.cookies.get(sessions.SIGNIN_COOKIE), request.form.get("csrf_token")):
        raise ApiError(
            403,
            "This form has expired or did not come from this console; nothing was done. Reload the page and try again.",
        )
    ctx = context()
    key = keys.lookup(ctx.db, request.form.get("api_key", "").strip())
    if key is None:
        return _sign_in_page("That API key is not valid (or was revoked).", 422)
    ttl = timedelta(seconds=ctx.settings.api.session_ttl_s)
    cookie, session = sessions.start(ctx.db, key, ttl, replacing=request.cookies.get(sessions.COOKIE))
    g.key_id, g.account = key.id, session.account_id
    response = back("console.hooks" if session.account_id else "console.account")
    _set_cookie(response, sessions.COOKIE, cookie, int(ttl.total_seconds()))
    response.delete_cookie(sessions.SIGNIN_COOKIE, path="/")
    return response


@console.post("/sign-out")
@signed_in
def sign_out() -> Response:
    sessions.end(context().db, request.cookies.get(sessions.COOKIE))
    response = back("console.home", "signed-out")
    response.delete_cookie(sessions.COOKIE, path="/", secure=request.is_secure, httponly=True, samesite="Strict")
    return response


@console.get("/account")
@signed_in
def account() -> Response:
    if not g.session.key.operator:
        return back("console.hooks")
    return page("account.html", accounts=context().admin.accounts())


@console.post("/account")
@signed_in
def choose_account() -> Response:
    chosen = normalize_account(request.form.get("account", ""))
    if chosen is None or not g.session.key.operator:
        return page("account.html", 422, accounts=context().admin.accounts(), error="Enter an account id.")
    sessions.choose_account(context().db, g.session, chosen)
    return back("console.hooks")


@console.get("/static/<name>")
def static_file(name: str) -> Response:
    response = send_from_directory(STATIC, name, max_age=300)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
