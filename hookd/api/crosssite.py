"""What keeps another web site from driving the API through an admin's browser (pure: headers in, verdicts out).

A browser that holds an admin's API key (Basic credentials it remembers for the origin) attaches it
to any request to that origin, including one a page of another site makes: a form it auto-submits,
an `<img>`, a `fetch` in `no-cors` mode. None of those can send `Content-Type: application/json`
without a CORS preflight (which hookd never grants), and every browser of the last years labels
them: `Sec-Fetch-Site: cross-site` (or `same-site`), and `Origin: https://elsewhere` on anything
but a plain GET. So the API (every route under `/{account_id}/api`) refuses, before looking at the
key:

- a request whose `Sec-Fetch-Site` is anything but `same-origin` or `none` (typed, bookmarked);
- a request whose `Origin` is not this server's own (`null` included);

and a write that carries a body must say `Content-Type: application/json` (or a `+json` type):
415 otherwise (`hooks_api`). Programs (curl, requests, the platform's clients) send none of these
headers and are not affected.

A browser also must not learn to send the key by itself: a 401 with `WWW-Authenticate: Basic`
makes it prompt and then remember what was typed for every later request. A request that looks
like a browser's (`Sec-Fetch-*`, `Origin`, or one that accepts HTML) is challenged with a scheme
no browser prompts for (`BROWSER_CHALLENGE`); programs still get `Basic realm="hookd"`.
"""

from __future__ import annotations

from collections.abc import Mapping

#: `Sec-Fetch-Site` values a browser sends for a request of this origin's own page, or typed by the user.
_OWN = ("same-origin", "none")
#: The 401 challenge for browsers: a valid challenge (RFC 9110) that no browser answers with a prompt.
BROWSER_CHALLENGE = 'HookdKey realm="hookd"'
JSON_TYPES = ("application/json",)


def refusal(headers: Mapping[str, str], own_origin: str) -> str | None:
    """Why a request must be refused as coming from another site, or None.

    `own_origin`: this server's origin as the request reached it (`http://127.0.0.1:8780`; behind a
    trusted proxy, the proxy's public one).
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in _OWN:
        return "the browser says this request comes from another site (Sec-Fetch-Site)"
    origin = headers.get("Origin")
    if origin is not None and origin.strip().rstrip("/").lower() != own_origin.rstrip("/").lower():
        return "the browser says this request comes from another origin (Origin)"
    return None


def is_browser(headers: Mapping[str, str]) -> bool:
    """True when the request looks like a browser's (fetch metadata, an Origin, or a page load)."""
    if any(name in headers for name in ("Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Origin")):
        return True
    return "text/html" in headers.get("Accept", "")


def is_json(mimetype: str) -> bool:
    """`application/json` or any `application/*+json` type (parameters already stripped, lower case)."""
    return mimetype in JSON_TYPES or (mimetype.startswith("application/") and mimetype.endswith("+json"))
