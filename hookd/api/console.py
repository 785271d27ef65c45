"""The Service Hooks console: server-rendered pages for account admins, working without JavaScript.

Sign in with an API key (a session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS), then the
account's hooks: list, create, show, edit, show or reset the secret, ping, disable or enable, delete
(after a confirmation page), and per delivery a redelivery. Every form carries a CSRF token and
every POST without the right one is refused (403) before anything happens. The pages call the same
`Admin` operations as the API, so both enforce the same rules. An operator key picks an account
first (`/account`). Outcomes are shown after a redirect by a fixed notice code in the URL, never by
echoing user input.
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

from hookd.api import keys, sessions
from hookd.api.admin import DeliveryFilter
from hookd.api.bodies import FORM_FIELDS, form_changes, renamed
from hookd.api.context import context
from hookd.api.errors import ApiError
from hookd.dispatch import expand
from hookd.events import CATALOGUE, GROUPS, LABELS, normalize_account
from hookd.outcomes import Disabled
from hookd.resource import iso_time
from hookd.state import notices
from hookd.subscriptions.model import Hook
from hookd.subscriptions.rules import InvalidHook, Problem

console = Blueprint("console", __name__)
STATIC = Path(__file__).parent / "static"
NOTICES = {
    "created": "Webhook created. Its secret is on this page, behind Show secret.",
    "saved": "Saved.",
    "pinged": "Ping sent through the normal delivery path: its status appears below within seconds.",
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled: it receives nothing until enabled again.",
    "deleted": "Webhook deleted.",
    "redelivered": "Redelivery queued, with the same delivery id.",
    "signed-out": "Signed out.",
}
RECENT_DELIVERIES = 20
View = TypeVar("View", bound=Callable[..., Any])


# -- sessions, CSRF and rendering ------------------------------------------------------------------
def _csrf_field() -> Markup:
    """A form's hidden CSRF token (with a hidden label, so that every input has one)."""
    g.forms = g.get("forms", 0) + 1
    ident = f"csrf-{g.forms}"
    return Markup(
        '<input type="hidden" name="csrf_token" id="{0}" value="{1}"><label for="{0}" hidden>Form token</label>'
    ).format(ident, g.get("csrf", ""))


@console.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"csrf_field": _csrf_field, "labels": LABELS, "catalogue": CATALOGUE, "iso_time": iso_time}


def _page(template: str, status: int = 200, **values: Any) -> Response:
    session = g.get("session")
    notice = NOTICES.get(request.args.get("notice", ""))
    html = render_template(template, session=session, account=g.get("account"), notice=notice, **values)
    return make_response(html, status)


def error_page(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    g.csrf = g.session.csrf_token if g.get("session") else None
    response = _page("error.html", status, code=status, message=message)
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


def _back(endpoint: str, notice: str | None = None, **values: Any) -> Response:
    if notice:
        values["notice"] = notice
    return redirect(url_for(endpoint, **values), 303)


@dataclass(frozen=True, slots=True)
class Health:
    """A hook's health as the console shows it: a CSS class, the words, and since when."""

    css: str
    text: str
    at: datetime


def _health(state: notices.NoticeState | None) -> Health | None:
    """Failing since, disabled because, recovered at: from the hook's last `hook.*` notice."""
    if state is None:
        return None
    if state.state == notices.FAILING:
        return Health("failure", "Failing since", state.since)
    if state.state == notices.DISABLED:
        if state.reason == Disabled.GONE:
            why = "its receiver answered 410 Gone"
        else:
            why = f"it kept failing for {_duration(context().settings.delivery.disable_after_s)}"
        return Health("failure", f"Disabled because {why}, at", state.since)
    return Health("success", "Recovered at", state.since)


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
        return _back("console.hooks" if session.account_id else "console.account")
    return _sign_in_page()


@console.get("/sign-in")
def sign_in_form() -> Response:
    """The sign-in form even when signed in (to switch keys): signing in replaces the session."""
    return _sign_in_page()


def _sign_in_page(error: str | None = None, status: int = 200) -> Response:
    g.csrf = sessions.new_token()
    response = _page("sign_in.html", status, error=error)
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
    response = _back("console.hooks" if session.account_id else "console.account")
    _set_cookie(response, sessions.COOKIE, cookie, int(ttl.total_seconds()))
    response.delete_cookie(sessions.SIGNIN_COOKIE, path="/")
    return response


@console.post("/sign-out")
@signed_in
def sign_out() -> Response:
    sessions.end(context().db, request.cookies.get(sessions.COOKIE))
    response = _back("console.home", "signed-out")
    response.delete_cookie(sessions.COOKIE, path="/", secure=request.is_secure, httponly=True, samesite="Strict")
    return response


@console.get("/account")
@signed_in
def account() -> Response:
    if not g.session.key.operator:
        return _back("console.hooks")
    return _page("account.html", accounts=context().admin.accounts())


@console.post("/account")
@signed_in
def choose_account() -> Response:
    chosen = normalize_account(request.form.get("account", ""))
    if chosen is None or not g.session.key.operator:
        return _page("account.html", 422, accounts=context().admin.accounts(), error="Enter an account id.")
    sessions.choose_account(context().db, g.session, chosen)
    return _back("console.hooks")


# -- hooks ---------------------------------------------------------------------------------------------
@console.get("/hooks")
@signed_in
def hooks() -> Response:
    admin = context().admin
    found = admin.hooks(g.account)
    health = admin.health(found)
    rows = [(hook, admin.last_trigger(hook), _health(health.get(hook.id))) for hook in found]
    return _page("hooks.html", rows=rows)


@console.get("/hooks/new")
@signed_in
def new_hook() -> Response:
    return _page("new_hook.html", form=_form_values(None), errors={})


@console.post("/hooks")
@signed_in
def create_hook() -> Response:
    changes = form_changes(request.form.to_dict(flat=False))
    try:
        hook = context().admin.create(g.account, changes)
    except InvalidHook as exc:
        return _page("new_hook.html", 422, form=_submitted(), errors=_errors(exc.invalid))
    return _back("console.hook", "created", hook_id=hook.id)


@console.get("/hooks/<hook_id>")
@signed_in
def hook(hook_id: str) -> Response:
    return _hook_page(context().admin.hook(g.account, hook_id))


def _hook_page(
    hook: Hook, status: int = 200, *, secret: bool = False, form: Any = None, errors: Any = None
) -> Response:
    admin = context().admin
    deliveries = admin.deliveries(g.account, hook.id, DeliveryFilter(), limit=RECENT_DELIVERIES, offset=0)
    return _page(
        "hook.html",
        status,
        hook=hook,
        statuses=admin.statuses(hook),
        health=_health(admin.health([hook]).get(hook.id)),
        deliveries=deliveries,
        secret=hook.secret if secret else None,
        form=form or _form_values(hook),
        errors=errors or {},
    )


@console.post("/hooks/<hook_id>")
@signed_in
def save_hook(hook_id: str) -> Response:
    admin = context().admin
    current = admin.hook(g.account, hook_id)
    changes = form_changes(request.form.to_dict(flat=False), current=current)
    try:
        admin.update(g.account, hook_id, changes)
    except InvalidHook as exc:
        return _hook_page(current, 422, form=_submitted(), errors=_errors(exc.invalid))
    return _back("console.hook", "saved", hook_id=hook_id)


@console.post("/hooks/<hook_id>/secret")
@signed_in
def show_secret(hook_id: str) -> Response:
    return _hook_page(context().admin.hook(g.account, hook_id), secret=True)


@console.post("/hooks/<hook_id>/reset-secret")
@signed_in
def reset_secret(hook_id: str) -> Response:
    hook = context().admin.reset_salt(g.account, hook_id)
    response = _hook_page(hook, secret=True)
    return response


@console.post("/hooks/<hook_id>/ping")
@signed_in
def ping(hook_id: str) -> Response:
    context().admin.ping(g.account, hook_id)
    return _back("console.hook", "pinged", hook_id=hook_id)


@console.post("/hooks/<hook_id>/enable")
@signed_in
def enable(hook_id: str) -> Response:
    context().admin.update(g.account, hook_id, {"active": True})
    return _back("console.hook", "enabled", hook_id=hook_id)


@console.post("/hooks/<hook_id>/disable")
@signed_in
def disable(hook_id: str) -> Response:
    context().admin.update(g.account, hook_id, {"active": False})
    return _back("console.hook", "disabled", hook_id=hook_id)


@console.get("/hooks/<hook_id>/delete")
@signed_in
def confirm_delete(hook_id: str) -> Response:
    return _page("confirm_delete.html", hook=context().admin.hook(g.account, hook_id))


@console.post("/hooks/<hook_id>/delete")
@signed_in
def delete(hook_id: str) -> Response:
    context().admin.delete(g.account, hook_id)
    return _back("console.hooks", "deleted")


@console.post("/hooks/<hook_id>/deliveries/<delivery_id>/redeliver")
@signed_in
def redeliver(hook_id: str, delivery_id: str) -> Response:
    context().admin.redeliver(g.account, hook_id, delivery_id)
    return _back("console.hook", "redelivered", hook_id=hook_id)


@console.get("/static/<name>")
def static_file(name: str) -> Response:
    response = send_from_directory(STATIC, name, max_age=300)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# -- form values -----------------------------------------------------------------------------------
def _form_values(hook: Hook | None) -> dict[str, Any]:
    """What the hook form shows: a new hook's defaults, or the hook's settings (never its password)."""
    if hook is None:
        return {"url": "", "name": "", "events": set(), "active": True, "insecure_ssl": False, "basic_auth_user": ""}
    chosen = set(hook.events) | set(expand(hook.events))
    return {
        "url": hook.url,
        "name": hook.name,
        "events": chosen,
        "active": hook.active,
        "insecure_ssl": hook.insecure_ssl,
        "basic_auth_user": hook.basic_auth.username if hook.basic_auth else "",
    }


def _submitted() -> dict[str, Any]:
    """The form as the admin filled it in, to show it again next to its problems."""
    form = request.form
    chosen = set(form.getlist("events"))
    chosen |= {e for g_ in GROUPS if g_ in chosen for e in GROUPS[g_]}
    return {
        "url": form.get("url", ""),
        "name": form.get("name", ""),
        "events": chosen,
        "active": "active" in form,
        "insecure_ssl": "insecure_ssl" in form,
        "basic_auth_user": form.get("basic_auth_user", ""),
    }


def _errors(problems: tuple[Problem, ...]) -> dict[str, str]:
    """Problems by form field, to show each next to its input."""
    found: dict[str, str] = {}
    for problem in renamed(problems, FORM_FIELDS):
        found.setdefault(problem.field, problem.message)
    return found
