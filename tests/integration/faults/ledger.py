"""The Jepsen-style ledger: every published (event, hook) pair ends delivered, duplicated, dead-lettered or lost.

A fault test publishes a known set of events, lets hookd run through the fault, then hands the
published pairs, what the receiver accepted (answered 2xx) and what `<prefix>.dead` holds to
`classify`. Receipts are mapped back to their pair by the event body's own `"id"` and the
`X-Hook-ID` header, not by `X-Hook-Delivery`, so a redelivery that changed its delivery id shows up
as `wrong_delivery_id` instead of hiding as an unexpected request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hookd.messages import delivery_id

Pair = tuple[str, str]  # (event_id, hook_id)


@dataclass(frozen=True)
class Receipt:
    """One request the receiver accepted (answered 2xx)."""

    event_id: str | None  # the body's "id"
    hook_id: str | None  # X-Hook-ID
    delivery_id: str | None  # X-Hook-Delivery


@dataclass(frozen=True)
class DeadLetter:
    """One message of `<prefix>.dead`, by its headers."""

    event_id: str | None
    hook_id: str | None
    delivery_id: str | None
    reason: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> DeadLetter:
        return cls(
            event_id=_text(headers.get("event_id")),
            hook_id=_text(headers.get("hook_id")),
            delivery_id=_text(headers.get("delivery_id")),
            reason=_text(headers.get("reason")),
        )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


@dataclass
class Tally:
    """The classification of every published pair, plus the anomalies that fit no class."""

    published: int = 0
    delivered: int = 0  # accepted exactly once
    duplicated: int = 0  # accepted more than once
    dead_lettered: int = 0  # never accepted, in `<prefix>.dead`
    lost: int = 0  # never accepted, not dead-lettered
    extra_requests: int = 0  # accepted receipts beyond the first, summed over duplicated pairs
    unexpected: int = 0  # accepted receipts that match no published pair
    wrong_delivery_id: int = 0  # receipts or dead letters whose delivery id is not the pair's
    delivered_and_dead: int = 0  # pairs both accepted and dead-lettered
    reasons: Counter[str] = field(default_factory=Counter)  # dead-letter reasons of the dead-lettered pairs
    lost_sample: list[Pair] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "duplicated": self.duplicated,
            "lost": self.lost,
            "dead_lettered": self.dead_lettered,
        }

    def __str__(self) -> str:
        anomalies = (
            f"extra_requests={self.extra_requests} unexpected={self.unexpected} "
            f"wrong_delivery_id={self.wrong_delivery_id} delivered_and_dead={self.delivered_and_dead}"
        )
        reasons = ",".join(f"{k}:{v}" for k, v in sorted(self.reasons.items())) or "-"
        lost = f" lost_sample={self.lost_sample}" if self.lost_sample else ""
        return (
            f"published={self.published} delivered={self.delivered} duplicated={self.duplicated} "
            f"lost={self.lost} dead_lettered={self.dead_lettered} reasons={reasons} {anomalies}{lost}"
        )


def classify(
    published: Iterable[Pair],
    receipts: Iterable[Receipt],
    dead: Iterable[DeadLetter] = (),
    *,
    label: str = "",
) -> Tally:
    """Classify every published pair and print the figures (they show with `-s` and on failure)."""
    pairs = list(dict.fromkeys(published))
    expected_ids = {pair: delivery_id(*pair) for pair in pairs}
    accepted: Counter[Pair] = Counter()
    tally = Tally(published=len(pairs))
    for receipt in receipts:
        pair = (receipt.event_id or "", receipt.hook_id or "")
        if pair not in expected_ids:
            tally.unexpected += 1
            continue
        accepted[pair] += 1
        if receipt.delivery_id != expected_ids[pair]:
            tally.wrong_delivery_id += 1
    dead_reasons: dict[Pair, list[str]] = {}
    for letter in dead:
        pair = (letter.event_id or "", letter.hook_id or "")
        dead_reasons.setdefault(pair, []).append(letter.reason or "?")
        if pair in expected_ids and letter.delivery_id != expected_ids[pair]:
            tally.wrong_delivery_id += 1
    for pair in pairs:
        times = accepted[pair]
        if times == 1:
            tally.delivered += 1
        elif times > 1:
            tally.duplicated += 1
            tally.extra_requests += times - 1
        elif pair in dead_reasons:
            tally.dead_lettered += 1
            tally.reasons.update(dead_reasons[pair][:1])
        else:
            tally.lost += 1
            if len(tally.lost_sample) < 5:
                tally.lost_sample.append(pair)
        if times and pair in dead_reasons:
            tally.delivered_and_dead += 1
    print(f"ledger{f' [{label}]' if label else ''}: {tally}")
    return tally
