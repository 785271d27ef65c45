"""The hook (webhook subscription) as hookd holds it in memory."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP basic-auth credentials sent with every delivery of a hook."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"


@dataclass(frozen=True, slots=True)
class Hook:
    """One account webhook; its secrets never appear in repr, logs or public output.

    `old_secrets` are previous secrets still valid during a rotation overlap (`hookd hooks
    reset-secret --overlap`), until `old_secrets_expire_at` (None: until removed). They sign
    `webhook-signature` alongside the current secret so receivers can switch at their own pace.
    `allow_private` lets this hook reach non-public addresses; only an operator may set it (hooks
    file, or the CLI), never an account admin.
    `ordered`: deliver one entity's events (a job's, a cluster's) one after another, in publish order;
    None takes the installation's `delivery.ordered_default`. `rate_limit`: at most this many
    deliveries per second to the hook across every worker (fractional allowed); None: no limit.
    """

    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)
    name: str = ""
    active: bool = True
    basic_auth: BasicAuth | None = None
    insecure_ssl: bool = False
    old_secrets: tuple[str, ...] = field(default=(), repr=False)
    old_secrets_expire_at: datetime | None = None
    allow_private: bool = False
    ordered: bool | None = None
    rate_limit: float | None = None
    created_at: datetime | None = field(default=None, compare=False)  # kept by a database source only
    updated_at: datetime | None = field(default=None, compare=False)

    @property
    def display_name(self) -> str:
        return self.name or self.url

    def signing_secrets(self, now: datetime | None = None) -> tuple[str, ...]:
        """The secrets a delivery made at `now` is signed with: the current one first, then the old
        ones while their overlap lasts. Checked at signing time, not load time, because a daemon
        keeps its hooks in memory across the moment an overlap ends."""
        expiry = self.old_secrets_expire_at
        if not self.old_secrets or (expiry is not None and (now or datetime.now(UTC)) >= expiry):
            return (self.secret,)
        return tuple(dict.fromkeys((self.secret, *self.old_secrets)))

    def sensitive_values(self) -> tuple[str, ...]:
        """Every spelling of this hook's credentials that must never reach a log (see logs.register_secrets):
        the secrets raw and in their `whsec_` form, the basic-auth password and the header's base64."""
        values: list[str] = []
        for secret in (self.secret, *self.old_secrets):
            values += [secret, base64.b64encode(secret.encode("utf-8")).decode("ascii")]
        if self.basic_auth is not None:
            pair = f"{self.basic_auth.username}:{self.basic_auth.password}".encode()
            values += [self.basic_auth.password, base64.b64encode(pair).decode("ascii")]
        return tuple(v for v in dict.fromkeys(values) if v)
