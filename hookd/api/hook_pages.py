"""The console's hook pages: the list, a hook (status first), its settings, its secret, its deliveries.

What an admin comes for decides the order of the hook page: is it working (active, health, the last
delivery and its outcome in plain words, the last 24 hours as a picture), then the recent deliveries
with their attempts and Redeliver, then the signing secret; the settings form has a page of its own.
Every POST that changes something redirects (POST-redirect-GET), so a reload repeats nothing: not a
ping, not a reset of the secret. The list pages through the account's hooks (`PAGE_SIZE` a page)
and searches their names and URLs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import g, request
from werkzeug.wrappers import Response

from hookd.api.admin import DeliveryFilter
from hookd.api.bodies import FORM_FIELDS, form_changes, renamed
from hookd.api.chart import summary, svg
from hookd.api.console import back, console, health_of, page, signed_in
from hookd.api.context import context
from hookd.dispatch import expand
from hookd.events import GROUPS
from hookd.subscriptions.model import Hook
from hookd.subscriptions.rules import InvalidHook, Problem

PAGE_SIZE = 20
RECENT_DELIVERIES = 20
#: The rotation overlaps the reset page offers (seconds): none, an hour, a day.
OVERLAPS = ((0, "None: the old secret stops working now"), (3600, "1 hour"), (86400, "24 hours"))


# -- the list --------------------------------------------------------------------------------------
@console.get("/hooks")
@signed_in
def hooks() -> Response:
    """The account's hooks, `PAGE_SIZE` a page, optionally only those whose name or URL holds `q`."""
    admin = context().admin
    query = request.args.get("q", "").strip()[:200]
    found = admin.hooks(g.account)
    total = len(found)
    if query:
        needle = query.casefold()
        found = [h for h in found if needle in h.display_name.casefold() or needle in h.url.casefold()]
    pages = max(1, -(-len(found) // PAGE_SIZE))
    number = _page_number(request.args.get("page"), pages)
    shown = found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    health = admin.health(shown)
    now = datetime.now(UTC)
    activity = admin.activity(shown, now)
    rows = [
        (
            hook,
            admin.last_trigger(hook),
            health_of(health.get(hook.id)),
            svg(activity[hook.id], ident=f"spark-{i}", small=True),
        )
        for i, hook in enumerate(shown)
    ]
    return page(
        "hooks.html",
        rows=rows,
        query=query,
        total=total,
        matching=len(found),
        number=number,
        pages=pages,
        first=(number - 1) * PAGE_SIZE + 1,
        last=(number - 1) * PAGE_SIZE + len(shown),
    )


def _page_number(raw: str | None, pages: int) -> int:
    """`?page=N` within 1..pages (anything else is the first page)."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        return 1
    return min(max(1, int(raw)), pages)


# -- creating ------------------------------------------------------------------------------------------
@console.get("/hooks/new")
@signed_in
def new_hook() -> Response:
    return page("new_hook.html", form=_form_values(None), errors={})


@console.post("/hooks")
@signed_in
def create_hook() -> Response:
    changes = form_changes(request.form.to_dict(flat=False), ordered_default=_ordered_default())
    try:
        hook = context().admin.create(g.account, changes)
    except InvalidHook as exc:
        return page("new_hook.html", 422, form=_submitted(), errors=_errors(exc.invalid))
    return back("console.hook", "created", hook_id=hook.id)


# -- the hook page -------------------------------------------------------------------------------------
@console.get("/hooks/<hook_id>")
@signed_in
def hook(hook_id: str) -> Response:
    found = context().admin.hook(g.account, hook_id)
    return _hook_page(found, secret=request.args.get("notice") == "secret-reset")


def _hook_page(hook: Hook, *, secret: bool = False) -> Response:
    admin = context().admin
    now = datetime.now(UTC)
    window = admin.activity([hook], now)[hook.id]
    return page(
        "hook.html",
        hook=hook,
        health=health_of(admin.health([hook]).get(hook.id)),
        last=admin.last_delivery(hook),
        chart=svg(window, ident="chart"),
        chart_summary=summary(window),
        statuses=admin.console_statuses(hook),
        deliveries=admin.deliveries(g.account, hook.id, DeliveryFilter(), limit=RECENT_DELIVERIES, offset=0),
        secret=hook.secret if secret else None,
        ordered=_ordered_default() if hook.ordered is None else hook.ordered,
        waiting=admin.waiting(hook),
    )


@console.post("/hooks/<hook_id>/secret")
@signed_in
def show_secret(hook_id: str) -> Response:
    return _hook_page(context().admin.hook(g.account, hook_id), secret=True)


@console.post("/hooks/<hook_id>/ping")
@signed_in
def ping(hook_id: str) -> Response:
    context().admin.ping(g.account, hook_id)
    return back("console.hook", "pinged", hook_id=hook_id)


@console.post("/hooks/<hook_id>/enable")
@signed_in
def enable(hook_id: str) -> Response:
    context().admin.update(g.account, hook_id, {"active": True})
    return back("console.hook", "enabled", hook_id=hook_id)


@console.post("/hooks/<hook_id>/disable")
@signed_in
def disable(hook_id: str) -> Response:
    context().admin.update(g.account, hook_id, {"active": False})
    return back("console.hook", "disabled", hook_id=hook_id)


@console.post("/hooks/<hook_id>/deliveries/<delivery_id>/redeliver")
@signed_in
def redeliver(hook_id: str, delivery_id: str) -> Response:
    context().admin.redeliver(g.account, hook_id, delivery_id)
    return back("console.hook", "redelivered", hook_id=hook_id)


# -- settings ----------------------------------------------------------------------------------------
@console.get("/hooks/<hook_id>/settings")
@signed_in
def settings(hook_id: str) -> Response:
    found = context().admin.hook(g.account, hook_id)
    return page("settings.html", hook=found, form=_form_values(found), errors={})


@console.post("/hooks/<hook_id>")
@signed_in
def save_hook(hook_id: str) -> Response:
    admin = context().admin
    current = admin.hook(g.account, hook_id)
    changes = form_changes(request.form.to_dict(flat=False), ordered_default=_ordered_default(), current=current)
    try:
        admin.update(g.account, hook_id, changes)
    except InvalidHook as exc:
        return page("settings.html", 422, hook=current, form=_submitted(), errors=_errors(exc.invalid))
    return back("console.hook", "saved", hook_id=hook_id)


# -- reset the secret ----------------------------------------------------------------------------------
@console.get("/hooks/<hook_id>/reset-secret")
@signed_in
def confirm_reset(hook_id: str) -> Response:
    return page("reset_secret.html", hook=context().admin.hook(g.account, hook_id), overlaps=OVERLAPS)


@console.post("/hooks/<hook_id>/reset-secret")
@signed_in
def reset_secret(hook_id: str) -> Response:
    chosen = request.form.get("overlap", "0")
    seconds = next((s for s, _ in OVERLAPS if str(s) == chosen), None)
    if seconds is None:
        found = context().admin.hook(g.account, hook_id)
        return page("reset_secret.html", 422, hook=found, overlaps=OVERLAPS, error="Choose one of the overlaps.")
    context().admin.reset_salt(g.account, hook_id, timedelta(seconds=seconds) if seconds else None)
    return back("console.hook", "secret-reset", hook_id=hook_id)


# -- deleting ------------------------------------------------------------------------------------------
@console.get("/hooks/<hook_id>/delete")
@signed_in
def confirm_delete(hook_id: str) -> Response:
    return page("confirm_delete.html", hook=context().admin.hook(g.account, hook_id))


@console.post("/hooks/<hook_id>/delete")
@signed_in
def delete(hook_id: str) -> Response:
    context().admin.delete(g.account, hook_id)
    return back("console.hooks", "deleted")


# -- form values -----------------------------------------------------------------------------------
def _ordered_default() -> bool:
    return context().settings.delivery.ordered_default


def _form_values(hook: Hook | None) -> dict[str, Any]:
    """What the hook form shows: a new hook's defaults, or the hook's settings (never its password)."""
    if hook is None:
        return {
            "url": "",
            "name": "",
            "events": set(),
            "active": True,
            "insecure_ssl": False,
            "basic_auth_user": "",
            "ordered": _ordered_default(),
            "rate_limit": "",
        }
    return {
        "url": hook.url,
        "name": hook.name,
        "events": set(hook.events) | set(expand(hook.events)),
        "active": hook.active,
        "insecure_ssl": hook.insecure_ssl,
        "basic_auth_user": hook.basic_auth.username if hook.basic_auth else "",
        "ordered": _ordered_default() if hook.ordered is None else hook.ordered,
        "rate_limit": "" if hook.rate_limit is None else f"{hook.rate_limit:g}",
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
        "ordered": "ordered" in form,
        "rate_limit": form.get("rate_limit", ""),
    }


def _errors(problems: tuple[Problem, ...]) -> dict[str, str]:
    """Problems by form field, to show each next to its input."""
    found: dict[str, str] = {}
    for problem in renamed(problems, FORM_FIELDS):
        found.setdefault(problem.field, problem.message)
    return found
