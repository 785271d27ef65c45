"""What an account admin may do to their account's hooks: one implementation for the API and the console.

Every operation takes the account being acted for and treats a hook of another account exactly like
a hook that does not exist (`ItemNotFound`), so no answer tells that it exists. Changes come from
`bodies` and never carry `allow_private`: that SSRF override is the operator's alone (CLI, hooks
file). A new or changed URL must also pass the network policy's creation-time check, as in the CLI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hookd.api import chart
from hookd.api.errors import ItemNotFound
from hookd.config import Settings
from hookd.errors import HookNotFound
from hookd.events import PING
from hookd.messages import Delivery
from hookd.netpolicy import NetworkPolicy
from hookd.resource import hook_statuses
from hookd.state import notices, ordered, queries
from hookd.state.db import Database
from hookd.subscriptions.model import Hook
from hookd.subscriptions.rules import HookCheck, Problem, hook_problems, policy_check, text_problem
from hookd.subscriptions.sql_store import SqlStore, generate_secret
from hookd.subscriptions.store import id_order
from hookd.targeted import redelivery, send_ping, send_redelivery

#: `sort` values of the hooks list and what each orders by; ties (and no sort) go by id.
SORTS = ("name", "created", "updated")
DIRECTIONS = ("asc", "desc")


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """`GET /hooks/{id}/deliveries` filters: the delivery's state, its event, updated since."""

    status: str | None = None
    event: str | None = None
    since: datetime | None = None


class Admin:
    """The account-scoped operations, over the SQL store, the state database and the broker."""

    def __init__(self, settings: Settings, store: SqlStore, state: Database) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self._policy: HookCheck = policy_check(NetworkPolicy.from_settings(settings.delivery))

    # -- reading -------------------------------------------------------------------------------------
    def hook(self, account_id: str, hook_id: str) -> Hook:
        """The account's hook with this id; `ItemNotFound` for a missing hook or another account's."""
        if not plausible_id(hook_id):
            raise ItemNotFound(hook_id)
        hook = self.store.get(hook_id)
        if hook is None or hook.account_id != account_id:
            raise ItemNotFound(hook_id)
        return hook

    def hooks(self, account_id: str, *, sort: str | None = None, direction: str = "asc") -> list[Hook]:
        """The account's hooks: by id (creation order), or by `sort`, ties by id; `direction` asc|desc."""
        found = self.store.list(account_id)
        if sort is not None:
            found.sort(key=lambda h: id_order(h.id))
            found.sort(key=_SORT_KEYS[sort])
        if direction == "desc":
            found.reverse()
        return found

    def statuses(self, hook: Hook) -> list[queries.Status]:
        return hook_statuses(self.state, hook)

    def console_statuses(self, hook: Hook) -> list[queries.Status]:
        """The last trigger of each event the hook subscribes to, then of its pings (the console shows a
        ping like any event; the API's `statuses` keep the platform's shape: subscribed events only)."""
        return [*self.statuses(hook), *queries.statuses(self.state, hook.id, [PING])]

    def last_trigger(self, hook: Hook) -> queries.Status | None:
        """The most recent trigger of any of the hook's events or pings, or None before the first."""
        fired = [s for s in self.console_statuses(hook) if s.last_trigger_time is not None]
        return max(fired, key=lambda s: s.last_trigger_time or 0) if fired else None

    def last_delivery(self, hook: Hook) -> dict[str, Any] | None:
        """The hook's most recent delivery, with its last attempt (`last_attempt`)."""
        return queries.last_delivery(self.state, hook.id)

    def activity(self, hooks: Collection[Hook], now: datetime) -> dict[str, list[chart.Hour]]:
        """Per hook, its deliveries of the last 24 hours, hour by hour (for the console's picture)."""
        counts = queries.hourly_deliveries(self.state, [h.id for h in hooks], chart.window_start(now))
        return {hook_id: chart.hours(per_hour, now) for hook_id, per_hour in counts.items()}

    def waiting(self, hook: Hook) -> ordered.Waiting | None:
        """Ordered delivery: the hook's deliveries waiting behind an earlier one of their job or cluster
        (those the workers keep in the state database: waits longer than a moment), if any."""
        return ordered.waiting(self.state, [hook.id]).get(hook.id)

    def health(self, hooks: Collection[Hook]) -> dict[str, notices.NoticeState]:
        """The hooks' last operational notice (failing since, disabled because, recovered at), if any."""
        return notices.states(self.state, {h.id for h in hooks})

    def accounts(self) -> list[str]:
        """Accounts that have hooks (for an operator's account picker)."""
        return sorted({h.account_id for h in self.store.list()})

    def deliveries(
        self, account_id: str, hook_id: str, found: DeliveryFilter, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """The hook's recorded deliveries, most recently updated first, each with `attempt_log` rows."""
        hook = self.hook(account_id, hook_id)
        rows = queries.deliveries(
            self.state,
            hook_id=hook.id,
            state=found.status,
            event=found.event,
            since=found.since,
            limit=limit,
            offset=offset,
        )
        logs = queries.attempts(self.state, [r["delivery_id"] for r in rows])
        return [{**row, "attempt_log": logs[row["delivery_id"]]} for row in rows]

    def problems(self, account_id: str, changes: Mapping[str, Any], current: Hook | None = None) -> list[Problem]:
        """What the store would say about these changes (field rules, then the network policy), without
        writing: lets a request with shape problems report every other problem in the same answer."""
        base = current or Hook(id="new", account_id=account_id, url="", events=(), secret=generate_secret())
        try:
            candidate = dataclasses.replace(base, **changes)
        except TypeError:
            return []
        found = hook_problems(candidate)
        if not found and (current is None or "url" in changes):
            found = self._policy(candidate)
        return found

    # -- writing -------------------------------------------------------------------------------------
    def create(self, account_id: str, changes: Mapping[str, Any]) -> Hook:
        """A new hook of the account (`InvalidHook` lists every problem; nothing is stored then)."""
        return self.store.create(account_id=account_id, check=self._policy, **changes)

    def update(self, account_id: str, hook_id: str, changes: Mapping[str, Any]) -> Hook:
        """Change the given fields; the network policy judges a changed URL only, as in the CLI."""
        self.hook(account_id, hook_id)
        if not changes:
            return self.hook(account_id, hook_id)
        check = self._policy if "url" in changes else None
        try:
            return self.store.update(hook_id, check=check, **changes)
        except HookNotFound:
            raise ItemNotFound(hook_id) from None

    def delete(self, account_id: str, hook_id: str) -> Hook:
        hook = self.hook(account_id, hook_id)
        if not self.store.delete(hook.id):
            raise ItemNotFound(hook_id)
        return hook

    def reset_salt(self, account_id: str, hook_id: str, overlap: timedelta | None = None) -> Hook:
        self.hook(account_id, hook_id)
        try:
            return self.store.reset_secret(hook_id, overlap=overlap)
        except HookNotFound:
            raise ItemNotFound(hook_id) from None

    def ping(self, account_id: str, hook_id: str) -> tuple[Hook, str]:
        """Send a ping through the broker; return the hook and the ping's delivery id.

        The ping carries the store's revision read after the hook: a worker that has not loaded
        that revision yet (a hook created a moment ago) reloads and tries again shortly, rather
        than dead-lettering it as `hook_not_found`.
        """
        hook = self.hook(account_id, hook_id)
        sent = send_ping(self.settings, hook, revision=self.store.revision(), name="hookd serve ping")
        return hook, sent.delivery_id

    def redeliver(self, account_id: str, hook_id: str, delivery_id: str) -> Delivery:
        """Send a recorded delivery of this hook again, same delivery id (`UsageError`: no body kept)."""
        hook = self.hook(account_id, hook_id)
        row = queries.delivery(self.state, delivery_id, with_body=True) if plausible_id(delivery_id) else None
        if row is None or str(row["hook_id"]) != hook.id:
            raise ItemNotFound(delivery_id)
        delivery = redelivery(row)
        send_redelivery(self.settings, delivery, name="hookd serve redeliver")
        return delivery


def plausible_id(text: str) -> bool:
    """Whether `text` (an id from a URL) could name anything stored: no NUL or other control character,
    no unpaired surrogate, at most 256 characters. What cannot is "not found" without asking the
    database, which would choke on some of it (PostgreSQL refuses NUL in text)."""
    return len(text) <= _ID_MAX and text_problem(text, max_chars=_ID_MAX) is None


_ID_MAX = 256
_NEVER = datetime.min.replace(tzinfo=UTC)
_SORT_KEYS: dict[str, Callable[[Hook], Any]] = {
    "name": lambda h: h.display_name.casefold(),
    "created": lambda h: h.created_at or _NEVER,
    "updated": lambda h: h.updated_at or _NEVER,
}
