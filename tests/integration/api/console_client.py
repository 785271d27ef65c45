"""Driving the console over plain HTTP (requests): sign in, read a form's CSRF token, post forms."""

from __future__ import annotations

import re

import requests
from support.stack import Stack

_TOKEN = re.compile(r'name="csrf_token" id="[^"]+" value="([^"]+)"')


def csrf(html: str) -> str:
    """The CSRF token of the page's forms."""
    found = _TOKEN.search(html)
    assert found is not None, html[:2000]
    return found.group(1)


def sign_in(stack: Stack, key: str, browser: requests.Session | None = None) -> requests.Session:
    """A browser-like session signed in to the console with `key`."""
    browser = browser or requests.Session()
    page = browser.get(f"{stack.url}/sign-in", timeout=10)
    answer = browser.post(
        f"{stack.url}/sign-in", data={"api_key": key, "csrf_token": csrf(page.text)}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 303, answer.text
    return browser


def session_cookie(browser: requests.Session) -> str | None:
    return browser.cookies.get("hookd_session")
