"""Behind a TLS reverse proxy (api.trust_proxy_headers): Secure cookies, HSTS, links to the public URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.stack import Stack, need_broker, unique

from .console_client import csrf

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com", "X-Forwarded-For": "203.0.113.9"}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """hookd serve trusting X-Forwarded-* (SQLite; no daemon needed)."""
    need_broker()
    folder: Path = tmp_path_factory.mktemp("proxied")
    running = Stack(folder, f"sqlite:///{folder / 'hooks.db'}", run=False, api={"trust_proxy_headers": True})
    yield running
    running.close()


def test_over_https_the_session_cookie_is_secure(proxied: Stack) -> None:
    """A sign-in the proxy says came over HTTPS sets a Secure, HttpOnly, SameSite=Strict cookie and HSTS."""
    browser = requests.Session()
    browser.headers.update(FORWARDED)
    page = browser.get(f"{proxied.url}/sign-in", timeout=10)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in page.headers["Set-Cookie"]
    answer = requests.post(  # the test talks plain HTTP: hand back the Secure cookie as the browser would over TLS
        f"{proxied.url}/sign-in",
        data={"api_key": proxied.key(unique("tls")), "csrf_token": csrf(page.text)},
        headers={**FORWARDED, "Cookie": f"hookd_signin={page.cookies['hookd_signin']}"},
        allow_redirects=False,
        timeout=10,
    )
    cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("hookd_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert answer.headers["Location"] == "/hooks"  # relative: the browser stays on the public origin


def test_links_name_the_public_url(proxied: Stack) -> None:
    """Link and Location headers use the scheme and host the proxy forwarded."""
    account = unique("links")
    client = proxied.client(proxied.key(account))
    client.headers.update(FORWARDED)
    body = {"type": "web", "events": ["job"], "settings": {"url": "https://r.example.com/"}}
    created = [client.post(proxied.api(account, "/hooks"), json=body, timeout=10) for _ in range(3)]
    assert created[0].headers["Location"].startswith(f"https://hooks.example.com/{account}/api/hooks/")
    listing = client.get(proxied.api(account, "/hooks"), params={"limit": 1}, timeout=10)
    assert listing.links["next"]["url"].startswith(f"https://hooks.example.com/{account}/api/hooks?")
