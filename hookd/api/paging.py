"""Query parameters of list endpoints (`offset`, `limit`, `sort`, `direction`) and RFC 5988 `Link` headers.

A `limit` above `MAX_LIMIT` is served as `MAX_LIMIT` (as the platform does); anything that is not a
whole number written in ASCII digits (an empty value included), an offset above `MAX_OFFSET` or an
unknown sort is a 422 naming the parameter. Bounds keep every number far inside what SQLite and
PostgreSQL take (a 64-bit OFFSET overflowed SQLite before).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

from hookd.api.admin import DIRECTIONS, SORTS
from hookd.api.errors import invalid
from hookd.subscriptions.rules import Problem

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: The largest offset a list takes: a million items into a list is already more than anyone pages.
MAX_OFFSET = 1_000_000
_DIGITS = 18  # a limit longer than this is above MAX_LIMIT anyway; int() is never handed a huge string
#: RFC 3339 date-time (section 5.6), as OpenAPI's `format: date-time` means it: offset required.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


@dataclass(frozen=True, slots=True)
class Page:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    sort: str | None = None
    direction: str = "asc"


def page(args: Mapping[str, str], *, sortable: bool = True) -> Page:
    """The page a request asks for; `ApiError` 422 listing every bad parameter."""
    problems: list[Problem] = []

    def number(name: str, default: int, minimum: int, maximum: int | None) -> int:
        raw = args.get(name)
        if raw is None:
            return default
        digits = raw.isascii() and raw.isdigit()
        if digits and maximum is None and len(raw) > _DIGITS:
            return MAX_LIMIT
        value = int(raw) if digits and len(raw) <= _DIGITS else -1
        if value < minimum or (maximum is not None and value > maximum):
            upto = f" and at most {maximum}" if maximum is not None else ""
            problems.append(Problem(name, f"must be a whole number of at least {minimum}{upto}"))
            return default
        return value

    offset = number("offset", 0, 0, MAX_OFFSET)
    limit = min(number("limit", DEFAULT_LIMIT, 1, None), MAX_LIMIT)
    sort = args.get("sort")
    direction = args.get("direction", "asc")
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


def since_parameter(raw: str) -> datetime | None:
    """An RFC 3339 date-time (`2026-11-29T03:00:00Z`, `...+02:00`) as aware UTC; None when it is not one.

    What `format: date-time` allows and Python's datetime cannot hold is clamped, not refused: a leap
    second (`:60`) reads as `:59`, a time before year 1 or after 9999 (in UTC) as the first or last.
    """
    found = _RFC3339.fullmatch(raw)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    fraction = int((found[7] or ".0")[1:7].ljust(6, "0"))
    if found[8]:
        offset = timedelta(0)
    else:
        offset = timedelta(hours=int(found[10]), minutes=int(found[11])) * (-1 if found[9] == "-" else 1)
    if hour > 23 or minute > 59 or second > 60 or (not found[8] and (int(found[10]) > 23 or int(found[11]) > 59)):
        return None
    try:
        local = datetime(max(year, 1), month, day, hour, minute, min(second, 59), fraction)
    except ValueError:
        return None  # no such day (2026-02-30)
    if year == 0:
        return datetime.min.replace(tzinfo=UTC)
    try:
        return local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except (OverflowError, ValueError):
        return datetime.min.replace(tzinfo=UTC) if local.year == 1 else datetime.max.replace(tzinfo=UTC)
