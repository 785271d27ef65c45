"""Rendering for the admin commands: aligned tables and key/value blocks for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hookd.resource import iso_time

__all__ = ["NONE", "block", "cell", "excerpt", "human_time", "iso_time", "print_json", "table"]

NONE = "-"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; the last column is not padded (no trailing spaces)."""
    cells = [[str(h) for h in headers], *([cell(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = []
    for line in cells:
        padded = [text.ljust(width) for text, width in zip(line[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines)


def block(title: str, fields: Sequence[tuple[str, object]]) -> str:
    """A title line, then one indented `key  value` line per field."""
    width = max((len(key) for key, _ in fields), default=0)
    return "\n".join([title, *(f"  {key.ljust(width)}  {cell(value)}" for key, value in fields)])


def cell(value: object) -> str:
    """One table or block value as text: `-` for None, yes/no for booleans, one line."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return human_time(value)
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def human_time(moment: datetime | None) -> str:
    """Table timestamps: ISO 8601 UTC to the second, e.g. `2026-11-29T02:54:25Z`."""
    if moment is None:
        return NONE
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def excerpt(text: str | None, limit: int = 120) -> str | None:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
