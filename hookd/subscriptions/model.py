"""The hook (webhook subscription) as hookd holds it in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP basic-auth credentials sent with every delivery of a hook."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"


@dataclass(frozen=True, slots=True)
class Hook:
    """One account webhook; `secret` never appears in repr, logs or public output."""

    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)
    name: str = ""
    active: bool = True
    basic_auth: BasicAuth | None = None
    insecure_ssl: bool = False

    @property
    def display_name(self) -> str:
        return self.name or self.url

    def public(self) -> dict[str, Any]:
        """The hook's public fields, shaped like the platform's web hook resource (no secret)."""
        return {
            "id": self.id,
            "type": "web",
            "account_id": self.account_id,
            "name": self.display_name,
            "active": self.active,
            "events": list(self.events),
            "settings": {
                "url": self.url,
                "basic_auth": self.basic_auth is not None,
                "insecure_ssl": self.insecure_ssl,
            },
        }
