"""What the bench sends: hooks on the receiver, event bodies, and the headers of a first attempt.

Every sender (hookd, the peers, the raw loop, wrk) sends exactly the same thing: the event body
byte for byte, and the same headers (hookd's `signature_headers`: hex HMAC-SHA256 plus the
Standard Webhooks three), so the comparison is about the machinery around the POST, not the POST.

A body starts with `{"t":<publish time>,"seq":<n>,"id":<entity>,`: the receiver reads the publish
time (latency), the sequence number and the entity (the job whose events must arrive in order)
without parsing JSON. Every event of a backlog is its own entity (its own job), so hookd's
per-entity ordering, once it is on, has no reason to hold any of them back; the `jobs` streams give
each job three events back to back (issue 19).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.hosts import ALIASES, host_alias
from hookd import __version__
from hookd.messages import delivery_id
from hookd.signing import signature_headers

ROOT = Path(__file__).resolve().parent.parent
_SAMPLE: dict[str, Any] = json.loads((ROOT / "config/samples/job.json").read_text())
ACCOUNT = "acme"
EVENT = "job.completed"
#: A short job's notifications, as a scheduler publishes them back to back (issue 19).
JOB_STEPS = ("job.submitted", "job.started", "job.completed")


@dataclass(frozen=True, slots=True)
class BenchHook:
    id: str
    url: str
    secret: str

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HookSet:
    """The hooks of a scenario: `count` hooks of one account, each subscribed to every job event.

    `path` is how the receiver answers (`fast`, `slow/<ms>`, `jitter/<ms>`); the last `hanging` hooks
    never answer. With `distinct_hosts` every hook has a receiving host of its own (a loopback
    alias), so "connections per host" means connections per hook for every sender.
    """

    count: int
    path: str = "fast"
    hanging: int = 0
    distinct_hosts: bool = True

    @property
    def healthy(self) -> int:
        return self.count - self.hanging

    @property
    def receiver_class(self) -> str:
        """The receiver's class of the healthy hooks' requests (its counters are per class)."""
        return self.path.split("/")[0]

    def build(self, port: int) -> list[BenchHook]:
        if self.distinct_hosts and self.count > ALIASES:
            raise ValueError(f"at most {ALIASES} distinct hosts")
        hooks = []
        for index in range(self.count):
            path = f"/hang/h{index}" if index >= self.healthy else f"/{self.path}/h{index}"
            host = host_alias(index) if self.distinct_hosts else "127.0.0.1"
            url = f"http://{host}:{port}{path}"
            hooks.append(BenchHook(id=f"h{index}", url=url, secret=f"bench-secret-{index:04d}"))
        return hooks


@dataclass(frozen=True, slots=True)
class Event:
    """One event to publish: its routing key, sequence number and entity (the body's `id`)."""

    routing_key: str
    seq: int
    entity: int

    def body(self, published_at: float | None = None) -> bytes:
        return event_body(self.seq, self.entity, published_at)


def single_events(count: int) -> Iterator[Event]:
    """`count` job.completed events, each about a job of its own."""
    for seq in range(count):
        yield Event(EVENT, seq, seq)


def job_events(jobs: int) -> Iterator[Event]:
    """`jobs` jobs, each publishing job.submitted, job.started, job.completed back to back."""
    for job in range(jobs):
        for step, routing_key in enumerate(JOB_STEPS):
            yield Event(routing_key, job * len(JOB_STEPS) + step, job)


def event_body(seq: int, entity: int, published_at: float | None = None) -> bytes:
    """A realistic job body (config/samples/job.json) that starts with its publish time, seq and id."""
    stamp = time.time() if published_at is None else published_at
    rest = json.dumps({k: v for k, v in _SAMPLE.items() if k != "id"}, separators=(",", ":"))
    return f'{{"t":{stamp!r},"seq":{seq},"id":{entity},'.encode() + rest[1:].encode()


def delivery_headers(hook: BenchHook, event: str, event_id: str, body: bytes) -> dict[str, str]:
    """The headers of a first attempt, as hookd builds them (hookd/delivery/sender.py)."""
    did = delivery_id(event_id, hook.id)
    return {
        "Content-Type": "application/json",
        "User-Agent": f"hookd/{__version__}",
        "X-Hook-Event": event,
        "X-Hook-ID": hook.id,
        "X-Hook-Delivery": did,
        "X-Hook-Attempt": "1",
        **signature_headers((hook.secret,), did, body),
    }


def new_event_id() -> str:
    return str(uuid.uuid4())
