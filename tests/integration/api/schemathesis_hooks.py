"""schemathesis hooks for hookd's spec (loaded through SCHEMATHESIS_HOOKS by test_schemathesis).

`basic_auth_data` is base64 of `user:password` with rules a JSON Schema pattern cannot say (the decoded
text's length and characters). The spec names its format (`openapi.BASIC_AUTH_FORMAT`); this module
tells schemathesis how to make valid values of it, drawn from the same limits the server applies.
"""

from __future__ import annotations

import base64

import schemathesis
from hypothesis import strategies as st

from hookd.api.openapi import BASIC_AUTH_FORMAT
from hookd.subscriptions.rules import PASSWORD_MAX, USERNAME_MAX

_PLAIN = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs"),
    exclude_characters="\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
)
_USER = st.text(_PLAIN.filter(lambda c: c != ":"), min_size=1, max_size=min(USERNAME_MAX, 40)).filter(str.strip)
_PASSWORD = st.text(_PLAIN, max_size=min(PASSWORD_MAX, 40))

schemathesis.openapi.format(
    BASIC_AUTH_FORMAT,
    st.builds(lambda user, password: base64.b64encode(f"{user}:{password}".encode()).decode("ascii"), _USER, _PASSWORD),
)
