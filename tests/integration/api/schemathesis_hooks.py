"""schemathesis hooks for hookd's spec (loaded through SCHEMATHESIS_HOOKS by test_schemathesis).

Two fields follow rules a JSON Schema pattern cannot say, so the spec names their formats
(`openapi.URL_FORMAT`, `openapi.BASIC_AUTH_FORMAT`) and describes them in words; this module tells
schemathesis how to make valid values of each, and keeps only what the server's own rules accept
(`hookd.urls.problem`, the text limits of `hookd.subscriptions.rules`): a valid request is one the
server must take, so the generator may be narrower than the rule, never wider.
"""

from __future__ import annotations

import base64

import schemathesis
from hypothesis import strategies as st

from hookd import urls
from hookd.api.openapi import BASIC_AUTH_FORMAT, URL_FORMAT
from hookd.subscriptions.rules import PASSWORD_MAX, USERNAME_MAX, text_problem

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_PLAIN = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters=_BIDI)
_USER = st.text(_PLAIN.filter(lambda c: c != ":"), min_size=1, max_size=min(USERNAME_MAX, 40)).filter(
    lambda u: text_problem(u, max_chars=USERNAME_MAX, required=True) is None
)
_PASSWORD = st.text(_PLAIN, max_size=min(PASSWORD_MAX, 40))

_LABEL = st.from_regex(r"\A[a-z0-9_](?:[a-z0-9_-]{0,10}[a-z0-9_])?\Z")
_NAME = st.builds(
    lambda labels, top: ".".join([*labels, top]),
    st.lists(_LABEL, min_size=0, max_size=3),
    st.from_regex(r"\A[a-z][a-z0-9-]{0,8}[a-z]\Z"),
)
_HOST = st.one_of(
    _NAME,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.sampled_from(["bücher.example", "faß.de", "例え.テスト"]),
)
_TAIL = st.from_regex(r"\A(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,12}){0,4}(?:\?[A-Za-z0-9=&/?%]{0,20})?\Z")
_URL = st.builds(
    lambda scheme, host, port, tail: f"{scheme}://{host}{port}{tail}",
    st.sampled_from(["http", "https", "HTTPS"]),
    _HOST,
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
    _TAIL,
).filter(lambda u: urls.problem(u) is None)

schemathesis.openapi.format(URL_FORMAT, _URL)
schemathesis.openapi.format(
    BASIC_AUTH_FORMAT,
    st.builds(lambda user, password: base64.b64encode(f"{user}:{password}".encode()).decode("ascii"), _USER, _PASSWORD),
)
