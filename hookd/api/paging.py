"""Query parameters of list endpoints (`offset`, `limit`, `sort`, `direction`) and RFC 5988 `Link` headers.

A `limit` above `MAX_LIMIT` is served as `MAX_LIMIT` (as the platform does); anything that is not a
number, a negative offset or an unknown sort is a 422 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from hookd.api.admin import DIRECTIONS, SORTS
from hookd.api.errors import invalid
from hookd.subscriptions.rules import Problem

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    sort: str | None = None
    direction: str = "asc"


def page(args: Mapping[str, str], *, sortable: bool = True) -> Page:
    """The page a request asks for; `ApiError` 422 listing every bad parameter."""
    problems: list[Problem] = []

    def number(name: str, default: int, minimum: int) -> int:
        raw = args.get(name)
        if raw is None or raw == "":
            return default
        if not raw.strip().isdigit() or int(raw) < minimum:
            problems.append(Problem(name, f"must be a whole number of at least {minimum}"))
            return default
        return int(raw)

    offset = number("offset", 0, 0)
    limit = min(number("limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
    sort = args.get("sort") or None
    direction = args.get("direction") or "asc"
    if sortable and sort is not None and sort not in SORTS:
        problems.append(Problem("sort", f"must be one of {', '.join(SORTS)}"))
    if sortable and direction not in DIRECTIONS:
        problems.append(Problem("direction", "must be asc or desc"))
    if problems:
        raise invalid(problems, "Invalid query parameters.")
    return Page(offset, limit, sort if sortable else None, direction if sortable else "asc")


def link_header(url: str, args: Mapping[str, str], current: Page, *, total: int | None, more: bool) -> str | None:
    """`Link` with `first`, `prev`, `next` and, when the total is known, `last`; None on a lone page.

    `url` is the absolute URL of the list without its query; the request's other parameters
    (filters, sort) are kept in every link.
    """
    kept = {k: v for k, v in args.items() if k not in ("offset", "limit")}

    def link(offset: int, rel: str) -> str:
        query = urlencode({**kept, "offset": offset, "limit": current.limit})
        return f'<{url}?{query}>; rel="{rel}"'

    links: list[str] = []
    if current.offset > 0:
        links.append(link(0, "first"))
        links.append(link(max(0, current.offset - current.limit), "prev"))
    if more:
        links.append(link(current.offset + current.limit, "next"))
    if total is not None and total > current.limit and (more or current.offset > 0):
        last = ((total - 1) // current.limit) * current.limit
        links.append(link(last, "last"))
    return ", ".join(links) or None
