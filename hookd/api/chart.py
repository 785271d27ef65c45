"""The picture of a hook's last 24 hours: deliveries per hour, delivered versus failed, drawn as SVG
by the server (pure: counts in, markup out).

No JavaScript and nothing from elsewhere, so the console's Content-Security-Policy (no script, styles
and images from this origin only) allows it: an inline `<svg>` whose colours are presentation
attributes, not styles. Each hour is one stacked bar (delivered at the bottom, failed on top) with
a `<title>` that a pointer or a screen reader gets, and `data-*` attributes that say the counts, so
a test can check the bars against the deliveries it made. "Failed" counts a delivery whose last
attempt failed: given up (`failed`) or waiting for its next try (`retrying`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

HOURS = 24
DELIVERED_COLOUR = "#1e6b34"
FAILED_COLOUR = "#b3261e"
EMPTY_COLOUR = "#d8dce3"


@dataclass(frozen=True, slots=True)
class Hour:
    """One hour of the window: when it starts (UTC) and its deliveries."""

    start: datetime
    delivered: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.failed


def window_start(now: datetime) -> datetime:
    """The start of the first of the `HOURS` hours ending with the current one."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def hours(counts: Mapping[datetime, tuple[int, int]], now: datetime) -> list[Hour]:
    """The last `HOURS` hours, oldest first, each with its (delivered, failed) counts (hours keyed by start)."""
    first = window_start(now)
    return [Hour(start, *counts.get(start, (0, 0))) for start in (first + timedelta(hours=i) for i in range(HOURS))]


def summary(window: Sequence[Hour]) -> str:
    delivered = sum(h.delivered for h in window)
    failed = sum(h.failed for h in window)
    if not delivered and not failed:
        return "No deliveries in the last 24 hours."
    return f"Last 24 hours: {delivered} delivered, {failed} failed."


def svg(window: Sequence[Hour], *, ident: str, small: bool = False) -> Markup:
    """The bars as an inline SVG: 720x140 on the hook page, a 120x28 sparkline (`small`) on the list.

    `ident` makes the title's id unique on the page. The chart scales to the busiest hour; an hour
    without deliveries is a thin grey line, so the 24 slots stay visible.
    """
    width, height, gap = (120, 28, 1) if small else (720, 140, 6)
    plot = height  # hour labels are the page's (HTML scales; SVG text would shrink with the chart)
    step = width / HOURS
    top = max((h.total for h in window), default=0) or 1
    title = summary(window)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart{" spark" if small else ""}" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' aria-labelledby="{escape(ident)}-title" data-delivered="{sum(h.delivered for h in window)}"'
        f' data-failed="{sum(h.failed for h in window)}">',
        f'<title id="{escape(ident)}-title">{escape(title)}</title>',
    ]
    for index, hour in enumerate(window):
        x = round(index * step + gap / 2, 2)
        bar = round(step - gap, 2)
        label = f"{hour.start:%H}:00-{(hour.start + timedelta(hours=1)):%H}:00 UTC"
        parts.append(
            f'<g class="hour" data-hour="{hour.start:%Y-%m-%dT%H}" data-delivered="{hour.delivered}"'
            f' data-failed="{hour.failed}"><title>{label}: {hour.delivered} delivered, {hour.failed} failed</title>'
        )
        if hour.total == 0:
            parts.append(f'<rect x="{x}" y="{plot - 1}" width="{bar}" height="1" fill="{EMPTY_COLOUR}"/>')
        else:
            ok = plot * hour.delivered / top
            bad = plot * hour.failed / top
            if hour.delivered:
                y = round(plot - ok, 2)
                parts.append(f'<rect x="{x}" y="{y}" width="{bar}" height="{round(ok, 2)}" fill="{DELIVERED_COLOUR}"/>')
            if hour.failed:
                y = round(plot - ok - bad, 2)
                parts.append(f'<rect x="{x}" y="{y}" width="{bar}" height="{round(bad, 2)}" fill="{FAILED_COLOUR}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every value above is a number, a time or escaped)
