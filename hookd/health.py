"""The daemon's health, on its own: named checks that pass unless they raise, and the flags they read.

`/healthz` (served by `hookd.endpoint` next to `/metrics`) answers from a `HealthCheck`; the daemon's
is `Health.check`: connected to the broker (a flag the main thread sets on every connect and loss)
and the hooks store readable now (`SubscriptionStore.check`: a database's revision, a file re-read
and validated). Nothing here depends on metrics being recorded.

Threads: `broker_connected` is called by the main thread only; the endpoint's request threads read
the flag (a bool, replaced whole) and call the store's check, which is safe from any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hookd.subscriptions.store import SubscriptionStore

#: /healthz's answer: healthy or not, and a JSON-ready explanation.
HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


def health_of(checks: Mapping[str, Callable[[], object]]) -> HealthCheck:
    """A `HealthCheck` from named checks: each passes unless it raises; healthy when all pass.

    The answer is `{"status": "ok"|"unhealthy", "checks": {name: "ok" | "error: ..."}}`.
    """

    def run() -> tuple[bool, dict[str, object]]:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
            except Exception as exc:
                results[name] = f"error: {' '.join(str(exc).split()) or type(exc).__name__}"[:500]
            else:
                results[name] = "ok"
        healthy = all(value == "ok" for value in results.values())
        return healthy, {"status": "ok" if healthy else "unhealthy", "checks": results}

    return run


class Health:
    """The daemon's health: connected to the broker, and the store readable."""

    def __init__(self, store: SubscriptionStore) -> None:
        self._broker_up = False  # written by the main thread only
        self.check: HealthCheck = health_of({"broker": self._broker_check, "store": store.check})

    def broker_connected(self, up: bool) -> None:
        """The main thread connected to the broker and consumes (True), or lost it (False)."""
        self._broker_up = up

    @property
    def broker_up(self) -> bool:
        return self._broker_up

    def _broker_check(self) -> None:
        if not self._broker_up:
            raise RuntimeError("not connected to the broker")
