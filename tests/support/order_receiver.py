"""A receiver for the ordering tests: it answers after a random 0-40 ms, fails a share of attempts
(a 429 with `Retry-After` when asked), and records when it *handled* each request, which is the order
a receiver keeping the latest body it got would act in. `order_receiver` is the factory fixture (the
ordering and cluster suites use it)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support.helpers import wait_until

#: One job's lifecycle as a scheduler publishes it for a short job, back to back.
LIFECYCLE = ("job.submitted", "job.started", "job.completed")


@dataclass(frozen=True)
class Handled:
    """One request the receiver finished handling (it answered `status`)."""

    job: object
    event: str
    delivery: str
    status: int
    at: float  # time.monotonic() when it was handled, just before the answer went out


@dataclass
class OrderReceiver:
    """Answers after a random delay; `fail(...)` decides 503s (and other statuses) per request."""

    latency_s: tuple[float, float] = (0.0, 0.04)
    failure_rate: float = 0.0
    seed: int = 1
    answer: Callable[[str, object, int], int | None] | None = None  # (event, job, nth arrival) -> status
    retry_after_s: int | None = None  # sent as `Retry-After` with every 429
    handled: list[Handled] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._arrivals: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event = self.headers.get("X-Hook-Event", "")
                delivery = self.headers.get("X-Hook-Delivery", "")
                status = receiver.status(event, json.loads(body).get("id"), delivery)
                self.send_response(status)
                if status == 429 and receiver.retry_after_s is not None:
                    self.send_header("Retry-After", str(receiver.retry_after_s))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="order-receiver", daemon=True)
        self._thread.start()

    def status(self, event: str, job: object, delivery: str) -> int:
        with self._lock:
            low, high = self.latency_s
            pause = self._rng.uniform(low, high)
            roll = self._rng.random()
            self._arrivals[delivery] = nth = self._arrivals.get(delivery, 0) + 1
        threading.Event().wait(pause)  # the receiver's own processing time
        status = self.answer(event, job, nth) if self.answer is not None else None
        if status is None:
            status = 503 if roll < self.failure_rate else 200
        with self._lock:
            self.handled.append(Handled(job, event, delivery, status, time.monotonic()))
        return status

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def first_handled(self) -> dict[object, list[str]]:
        """Per job, its events in the order the receiver first finished handling each of them."""
        with self._lock:
            handled = list(self.handled)
        found: dict[object, list[str]] = {}
        for request in handled:
            events = found.setdefault(request.job, [])
            if request.event not in events:
                events.append(request.event)
        return found

    def delivered(self) -> set[str]:
        with self._lock:
            return {h.delivery for h in self.handled if 200 <= h.status < 300}

    def wait_delivered(self, count: int, *, timeout_s: float) -> None:
        wait_until(
            lambda: len(self.delivered()) >= count,
            timeout_s=timeout_s,
            what=lambda: f"{count} deliveries answered 2xx, got {len(self.delivered())}",
        )

    def out_of_order(self, jobs: range) -> list[object]:
        """Jobs whose events did not first reach the receiver in publish order (or not all of them)."""
        first = self.first_handled()
        return [job for job in jobs if first.get(job) != list(LIFECYCLE)]

    def overtaken(self, jobs: range) -> list[object]:
        """Jobs where an event first reached the receiver before the event published before it had been
        answered 2xx: stricter than `out_of_order`, which a next event arriving between its head's
        failed attempts would pass. (A head dead-lettered by hookd also releases the next event: only
        for tests where nothing is dead-lettered.)"""
        with self._lock:
            handled = list(self.handled)
        ended: dict[object, set[str]] = {}
        seen: dict[object, set[str]] = {}
        early: list[object] = []
        for request in handled:
            if request.job not in jobs or request.event not in LIFECYCLE:
                continue
            done, arrived = ended.setdefault(request.job, set()), seen.setdefault(request.job, set())
            if request.event not in arrived:
                arrived.add(request.event)
                earlier = LIFECYCLE[: LIFECYCLE.index(request.event)]
                if not done.issuperset(earlier) and request.job not in early:
                    early.append(request.job)
            if 200 <= request.status < 300:
                done.add(request.event)
        return early

    def attempts(self, event: str, job: object) -> list[Handled]:
        """Every request for `event` of `job`, in the order handled."""
        with self._lock:
            return [h for h in self.handled if (h.event, h.job) == (event, job)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def order_receiver() -> Iterator[Callable[..., OrderReceiver]]:
    """Build `OrderReceiver`s (closed after the test)."""
    made: list[OrderReceiver] = []

    def factory(**options: object) -> OrderReceiver:
        receiver = OrderReceiver(**options)  # type: ignore[arg-type]
        made.append(receiver)
        return receiver

    yield factory
    for receiver in made:
        receiver.close()
