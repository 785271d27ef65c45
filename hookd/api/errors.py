"""The API's error answers: `{"message": ...}`, plus `errors` (one per problem, with its field) for 422.

`ApiError` is raised anywhere below a route and rendered by the app as JSON with its status and
headers. `NOT_FOUND` is the one answer for a hook or delivery that does not exist *and* for one of
another account: the two must be indistinguishable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hookd.api.crosssite import BROWSER_CHALLENGE
from hookd.errors import HookdError
from hookd.subscriptions.rules import Problem, shown

NOT_FOUND = "Item not found."
UNAUTHORIZED = "Authenticate with HTTP Basic: your API key as the user name and an empty password."
WWW_AUTHENTICATE = 'Basic realm="hookd"'


class ItemNotFound(HookdError):
    """No such item for this account (it does not exist, or another account owns it)."""


class ApiError(HookdError):
    """An answer other than success: status, message, per-field problems (422), extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        problems: Sequence[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = tuple(problems)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON answer; a field name that quotes the request (an unknown key) is made printable."""
        body: dict[str, Any] = {"message": shown(self.message)}
        if self.status == 422 or self.problems:
            body["errors"] = [{"field": shown(p.field), "message": shown(p.message)} for p in self.problems]
        return body


def invalid(problems: Sequence[Problem], message: str = "Validation failed.") -> ApiError:
    """422: the body (or the parameters) has problems; nothing was changed."""
    return ApiError(422, message, problems=problems)


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def unauthorized(*, browser: bool = False) -> ApiError:
    """401; a browser gets a challenge it does not prompt for, so it never learns to send a key itself."""
    return ApiError(401, UNAUTHORIZED, headers={"WWW-Authenticate": BROWSER_CHALLENGE if browser else WWW_AUTHENTICATE})
