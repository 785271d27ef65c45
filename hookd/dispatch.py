"""Does a hook get an event, and if not, why (pure): the one home of the rules before any attempt.

The daemon asks here at fan-out (which of an account's hooks get a fresh event) and again before it
starts a delivery (a targeted message, or work that waited behind its hook); `hookd explain` asks
the same function about every hook of an account. The rules, in order:

1. the hook exists (a retry may outlive its hook: `not_found`);
2. a `hook.*` notification never goes to the hook it is about (`subject`);
3. it is active (`inactive`), except for `ping`, which every hook answers;
4. a fresh event: the hook subscribes to it, by name or by its group (`not_subscribed`);
5. hookd has not disabled it (410, or failing too long: `disabled`);
6. its circuit is closed, or due for a probe (`circuit_open`: parked, not dropped).

What an attempt checks itself (the network policy, against the addresses the name resolves to at
that moment) comes after these, in the delivery module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from hookd.events import CATALOGUE_ORDER, GROUPS, PING
from hookd.outcomes import DeadLetter
from hookd.subscriptions.model import Hook


class Code(StrEnum):
    """Why a hook does not get an event now (`hookd explain --json`'s `code`)."""

    NOT_FOUND = "not_found"
    SUBJECT = "subject"  # a hook.* notification about this very hook
    INACTIVE = "inactive"
    NOT_SUBSCRIBED = "not_subscribed"
    DISABLED = "disabled"
    CIRCUIT_OPEN = "circuit_open"
    BLOCKED = "blocked"  # the network policy's refusal, judged at attempt time (see the module docstring)


#: What becomes of a delivery already under way (a targeted message, or work queued behind its hook)
#: that a rule now refuses: dead-lettered with this reason. A refused fresh event is simply not sent.
_DEAD_LETTERS: Mapping[Code, DeadLetter] = {
    Code.NOT_FOUND: DeadLetter.HOOK_NOT_FOUND,
    Code.INACTIVE: DeadLetter.HOOK_INACTIVE,
    Code.DISABLED: DeadLetter.HOOK_DISABLED,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A rule that keeps an event from a hook; `reason` is for people, `wait_s` for a parked delivery."""

    code: Code
    reason: str
    wait_s: float = 0.0

    @property
    def dead_letter(self) -> DeadLetter | None:
        """The dead-letter reason for a delivery under way, or None: it is parked (open circuit)."""
        return _DEAD_LETTERS.get(self.code)


#: Asks a hook's circuit breaker: None lets the delivery through, a `Refusal` parks it.
Circuit = Callable[[], Refusal | None]


def _closed() -> Refusal | None:
    return None


def covers(selector: str, event: str) -> bool:
    """True when `selector` (an event name or a group such as `job`) stands for `event`."""
    return selector == event or event in GROUPS.get(selector, ())


def subscribes(selectors: Iterable[str], event: str) -> bool:
    """True when a hook listing `selectors` gets `event`; every hook gets `ping`."""
    return event == PING or any(covers(selector, event) for selector in selectors)


def expand(selectors: Iterable[str]) -> list[str]:
    """Every event the selectors stand for, groups expanded, in catalogue order."""
    names: set[str] = set()
    for selector in selectors:
        names.update(GROUPS.get(selector, {selector}))
    return sorted(names, key=lambda n: (CATALOGUE_ORDER.get(n, len(CATALOGUE_ORDER)), n))


def circuit_open(*, wait_s: float = 0.0, since: datetime | None = None) -> Refusal:
    """The refusal of an open circuit: park for `wait_s`; `since` says when it opened."""
    shown = f" since {since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" if since is not None else ""
    return Refusal(Code.CIRCUIT_OPEN, f"circuit open{shown}", wait_s)


def decide(
    hook: Hook | None,
    event: str,
    *,
    targeted: bool,
    disabled: str | None = None,
    circuit: Circuit = _closed,
    subject: str | None = None,
) -> Refusal | None:
    """The first rule, in order, that keeps `event` from `hook`; None when it may be attempted.

    `targeted`: the delivery is already under way (a retry, ping, redelivery, or work that waited),
    so the subscription is not asked again. `disabled` is why hookd disabled the hook, if it did.
    `circuit` is consulted last, and only when every other rule passed: asking a breaker may let a
    probe through, which must not be spent on a delivery another rule refuses. `subject` is the hook
    a `hook.*` notification is about.
    """
    if hook is None:
        return Refusal(Code.NOT_FOUND, "hook not found (deleted)")
    if subject is not None and hook.id == subject:
        return Refusal(Code.SUBJECT, "the notification is about this hook")
    if not hook.active and event != PING:
        return Refusal(Code.INACTIVE, "inactive")
    if not targeted and not subscribes(hook.events, event):
        return Refusal(Code.NOT_SUBSCRIBED, f"not subscribed to {event}")
    if disabled:
        return Refusal(Code.DISABLED, f"disabled: {disabled}")
    return circuit()


def recipients(
    hooks: Iterable[Hook], event: str, disabled: Mapping[str, str], subject: str | None = None
) -> list[Hook]:
    """The hooks (of the event's account) a fresh event fans out to, in their order."""
    return [h for h in hooks if decide(h, event, targeted=False, disabled=disabled.get(h.id), subject=subject) is None]
