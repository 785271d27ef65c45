"""What the interop suite's modules share: a case (one hook, one event) and hookd's record of it.

Each case is a hook of its own in an account of its own, so one published event reaches exactly one
hook; what became of it is read from hookd's canonical `delivery.attempt` lines.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.helpers import Amqp, HookdProcess, Names, hook_entry, signature

#: What every interop hookd runs with: one attempt per delivery in process and a durable retry far
#: away (a case is judged by its first attempt); no circuit breaking; loopback allowed.
DELIVERY: dict[str, Any] = {
    "timeout_s": 5,
    "inline_attempts": 1,
    "retry_delays_s": [600],
    "breaker_threshold": 0,
    "allow_private_networks": True,
}


@dataclass(frozen=True)
class Case:
    """One event sent to one hook: what was sent, and its event id."""

    hook: dict[str, Any]
    body: bytes
    event_id: str

    @property
    def hook_id(self) -> str:
        return str(self.hook["id"])

    @property
    def secret(self) -> str:
        return str(self.hook["secret"])


class Cases:
    """The module's hooks, the events sent to them, and hookd's record of each (its attempt lines)."""

    def __init__(self, daemon: HookdProcess, amqp: Amqp, names: Names, hooks: dict[str, dict[str, Any]]) -> None:
        self.daemon = daemon
        self.hooks = hooks
        self.sent: dict[str, list[Case]] = {hook_id: [] for hook_id in hooks}
        self._amqp = amqp
        self._names = names
        self._lock = threading.Lock()  # the channel is not thread-safe: publishes take turns

    @staticmethod
    def hook(hook_id: str, url: str) -> dict[str, Any]:
        """A hook in an account of its own (named like the hook), subscribed to job events."""
        return hook_entry(hook_id, url, account_id=hook_id, events=("job",))

    def publish(self, hook_id: str) -> Case:
        """Publish one job.failed with a body of its own to the hook's account."""
        note = "caf\u00e9 \u2713, bytes as they are"  # non-ASCII: the body must arrive byte for byte
        body = json.dumps({"id": uuid.uuid4().hex, "state": "failed", "note": note}, ensure_ascii=False).encode()
        with self._lock:
            event_id = self._amqp.publish_event(self._names, "job.failed", body, account_id=hook_id)
            case = Case(self.hooks[hook_id], body, event_id)
            self.sent[hook_id].append(case)
        return case

    def attempts(self, hook_id: str) -> list[dict[str, Any]]:
        """hookd's `delivery.attempt` lines for the hook, in order."""
        return self.daemon.find("delivery.attempt", hook_id=hook_id)

    def wait_attempts(self, hook_id: str, count: int = 1, *, timeout_s: float = 30) -> list[dict[str, Any]]:
        return self.daemon.wait_log("delivery.attempt", count=count, timeout_s=timeout_s, hook_id=hook_id)

    def attempt_for(self, case: Case) -> dict[str, Any]:
        """The first attempt line of the case's event."""
        found = [a for a in self.wait_attempts(case.hook_id) if a["event_id"] == case.event_id]
        assert found, f"no attempt for event {case.event_id} of hook {case.hook_id}"
        return found[0]


def assert_received_as_sent(case: Case, headers: dict[str, str], body: bytes) -> None:
    """The body arrived byte for byte, signed with the hook's secret, as attempt 1 of its delivery."""
    assert body == case.body
    assert headers["x-hook-signature"] == signature(case.secret, case.body)
    assert headers["x-hook-id"] == case.hook_id
    assert headers["x-hook-attempt"] == "1"


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set so far (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")
