"""Security of the API and the console: sessions, CSRF, where secrets and keys appear, the CSP header."""

from __future__ import annotations

import json
from typing import Any

import requests
from support.stack import Stack, unique

from hookd.state.db import Database

from .console_client import csrf, session_cookie, sign_in

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create(stack: Stack, key: str, account: str) -> dict[str, Any]:
    body = {"type": "web", "events": ["job"], "settings": {"url": "https://receiver.example.com/in"}}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    hook: dict[str, Any] = answer.json()
    return hook


def signed_out(browser: requests.Session, stack: Stack) -> bool:
    """True when the console sends this browser back to the sign-in page."""
    answer = browser.get(f"{stack.url}/hooks", allow_redirects=False, timeout=10)
    return answer.status_code == 303 and answer.headers["Location"].endswith("/")


def test_sign_in_replaces_a_planted_session_id(stack: Stack) -> None:
    """Session fixation: an id planted before sign-in (made up, or the attacker's own session) never gets signed in."""
    account = unique("fixation")
    key = stack.key(account)
    attacker = sign_in(stack, stack.key(unique("attacker")))
    for planted in ("attacker-chosen-session-id", session_cookie(attacker)):
        victim = requests.Session()
        victim.cookies.set("hookd_session", planted, domain="127.0.0.1", path="/")
        sign_in(stack, key, victim)
        assert session_cookie(victim) not in (None, planted)
        assert not signed_out(victim, stack)
        stale = requests.Session()
        stale.cookies.set("hookd_session", planted)
        assert signed_out(
            stale, stack
        )  # the planted id is worth nothing: not the victim's session, not even the attacker's


def test_sign_out_and_revocation_end_sessions_on_the_server(stack: Stack) -> None:
    """A copied cookie stops working at sign-out; revoking the key ends its sessions."""
    account = unique("signout")
    key = stack.key(account)
    browser = sign_in(stack, key)
    copy = requests.Session()
    copy.cookies.set("hookd_session", session_cookie(browser))
    assert not signed_out(copy, stack)
    page = browser.get(f"{stack.url}/hooks", timeout=10)
    assert browser.post(f"{stack.url}/sign-out", data={"csrf_token": csrf(page.text)}, timeout=10).ok
    assert signed_out(copy, stack)
    second = sign_in(stack, key)
    key_id = json.loads(stack.cli("api-keys", "list", "--account", account, "--json")[1])[0]["id"]
    assert stack.cli("api-keys", "revoke", key_id)[0] == 0
    assert signed_out(second, stack)


def test_session_cookies_are_httponly_and_samesite_strict(stack: Stack) -> None:
    """The session cookie is HttpOnly and SameSite=Strict (Secure only over HTTPS: see test_proxy)."""
    browser = requests.Session()
    page = browser.get(f"{stack.url}/", timeout=10)
    answer = browser.post(
        f"{stack.url}/sign-in",
        data={"api_key": stack.key(unique("cookie")), "csrf_token": csrf(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("hookd_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie


def test_forms_without_their_csrf_token_are_refused(stack: Stack) -> None:
    """Every console POST without the session's CSRF token (missing or wrong) is 403 and changes nothing."""
    account = unique("csrf")
    key = stack.key(account)
    hook = create(stack, key, account)
    browser = sign_in(stack, key)
    before = stack.revision()
    base = f"{stack.url}/hooks/{hook['id']}"
    posts = [
        (f"{stack.url}/hooks", {"url": "https://x.example.com/", "events": "job", "active": "on"}),
        (base, {"url": "https://changed.example.com/", "events": "job"}),
        (f"{base}/disable", {}),
        (f"{base}/delete", {}),
        (f"{base}/reset-secret", {}),
        (f"{base}/secret", {}),
        (f"{base}/ping", {}),
        (f"{stack.url}/sign-out", {}),
    ]
    for url, form in posts:
        for token in ({}, {"csrf_token": "forged"}):
            answer = browser.post(url, data={**form, **token}, allow_redirects=False, timeout=10)
            assert answer.status_code == 403, (url, token)
            assert hook["salt"] not in answer.text
    assert stack.revision() == before
    assert not signed_out(browser, stack)
    anonymous = requests.Session()
    anonymous.get(f"{stack.url}/", timeout=10)
    refused = anonymous.post(f"{stack.url}/sign-in", data={"api_key": key}, allow_redirects=False, timeout=10)
    assert refused.status_code == 403 and session_cookie(anonymous) is None


def test_the_secret_appears_only_where_the_issue_says(stack: Stack) -> None:
    """API: create, show and reset_salt; console: behind Show secret. Never in lists, updates, pings, deletes."""
    account = unique("secret")
    key = stack.key(account)
    client = stack.client(key)
    hook = create(stack, key, account)
    salt = hook["salt"]
    url = stack.api(account, f"/hooks/{hook['id']}")
    assert client.get(url, timeout=10).json()["salt"] == salt
    for answer in (
        client.get(stack.api(account, "/hooks"), timeout=10),
        client.put(url, json={"name": "renamed"}, timeout=10),
        client.get(f"{url}/deliveries", timeout=10),
    ):
        assert answer.ok and salt not in answer.text
    browser = sign_in(stack, key)
    listing = browser.get(f"{stack.url}/hooks", timeout=10)
    page = browser.get(f"{stack.url}/hooks/{hook['id']}", timeout=10)
    assert "renamed" in listing.text and salt not in listing.text
    assert "Show secret" in page.text and salt not in page.text
    shown = browser.post(f"{stack.url}/hooks/{hook['id']}/secret", data={"csrf_token": csrf(page.text)}, timeout=10)
    assert salt in shown.text and shown.headers["Cache-Control"] == "no-store"
    deleted = client.delete(url, timeout=10)
    assert deleted.ok and salt not in deleted.text


def test_an_account_admin_cannot_set_allow_private(stack: Stack) -> None:
    """The operator-only SSRF override: refused by the API (422), ignored by the console's form."""
    account = unique("private")
    key = stack.key(account)
    hook = create(stack, key, account)
    body = {"type": "web", "events": ["job"], "settings": {"url": "https://a.example.com/", "allow_private": True}}
    assert stack.client(key).post(stack.api(account, "/hooks"), json=body, timeout=10).status_code == 422
    browser = sign_in(stack, key)
    page = browser.get(f"{stack.url}/hooks/{hook['id']}", timeout=10)
    form = {"url": "https://b.example.com/", "events": "job", "allow_private": "on", "csrf_token": csrf(page.text)}
    assert browser.post(f"{stack.url}/hooks/{hook['id']}", data=form, timeout=10).ok
    shown = stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()
    assert shown["settings"]["url"] == "https://b.example.com/" and "allow_private" not in shown["settings"]


def test_every_response_carries_a_restrictive_content_security_policy(stack: Stack) -> None:
    """API answers, errors, console pages, error pages and static files all have the same strict CSP."""
    account = unique("csp")
    key = stack.key(account)
    client = stack.client(key)
    anonymous = requests.Session()
    browser = sign_in(stack, key)
    answers = [
        client.get(stack.api(account, "/hooks"), timeout=10),
        client.post(stack.api(account, "/hooks"), json={}, timeout=10),  # 422
        client.get(stack.api(account, "/hooks/nope"), timeout=10),  # 404
        client.patch(stack.api(account, "/hooks"), timeout=10),  # 405
        anonymous.get(stack.api(account, "/hooks"), timeout=10),  # 401
        anonymous.get(f"{stack.url}/hook_events", timeout=10),
        anonymous.get(f"{stack.url}/openapi.json", timeout=10),
        anonymous.get(f"{stack.url}/", timeout=10),
        anonymous.get(f"{stack.url}/static/console.css", timeout=10),
        anonymous.get(f"{stack.url}/static/favicon.svg", timeout=10),
        anonymous.get(f"{stack.url}/static/missing.css", timeout=10),
        anonymous.get(f"{stack.url}/no/such/page", timeout=10),
        browser.get(f"{stack.url}/hooks", timeout=10),
        browser.get(f"{stack.url}/hooks/new", timeout=10),
        browser.get(f"{stack.url}/hooks/nope", timeout=10),
        browser.post(f"{stack.url}/hooks", data={}, timeout=10),  # 403
    ]
    statuses = {a.status_code for a in answers}
    assert {200, 401, 403, 404, 405, 422} <= statuses
    for answer in answers:
        assert answer.headers["Content-Security-Policy"] == CSP, answer.url
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
    assert "'unsafe-inline'" not in CSP and "script-src" not in CSP  # scripts fall back to default-src 'none'


def test_keys_secrets_and_session_ids_never_reach_the_log(stack: Stack) -> None:
    """hookd serve logs one api.request line per request, with the key's id, never the key, a salt or a cookie."""
    account = unique("logs")
    key = stack.key(account)
    hook = create(stack, key, account)
    browser = sign_in(stack, key)
    browser.get(f"{stack.url}/hooks/{hook['id']}", timeout=10)
    stack.client("hookd_" + "n0t-a-real-key-0123456789abcdefghijklmnopqrs").get(
        stack.api(account, "/hooks"), timeout=10
    )
    output = stack.serve_output()
    for secret in [*stack.keys, hook["salt"], session_cookie(browser), "n0t-a-real-key"]:
        assert secret and secret not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    mine = [e for e in lines if e.get("msg") == "api.request" and e.get("account_id") == account]
    assert mine and all(e["key_id"].startswith("k") for e in mine)
    assert {"method", "route", "status", "duration_ms"} <= set(mine[0])


def test_api_keys_are_stored_hashed_and_shown_only_at_creation(stack: Stack) -> None:
    """`api-keys create` prints the key once; `list` (table or JSON) and the database never hold it."""
    account = unique("hashed")
    code, out = stack.cli("api-keys", "create", "--account", account, "--name", "ops")
    key = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("key: "))
    assert code == 0 and key.startswith("hookd_") and len(key) >= 6 + 43
    for argv in (("api-keys", "list"), ("api-keys", "list", "--json")):
        listed = stack.cli(*argv)[1]
        assert account in listed and key not in listed
    with Database.from_url(stack.database) as db, db.transaction() as tx:
        rows = tx.fetchall("SELECT * FROM hookd_api_keys")
    assert rows and all(key not in str(value) for row in rows for value in row)
    assert stack.client(key).get(stack.api(account, "/hooks"), timeout=10).status_code == 200
