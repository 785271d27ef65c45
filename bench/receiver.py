"""The benchmark's receiver: an HTTP/1.1 keep-alive server on uvloop with the httptools parser.

It runs in its own process so it never shares a GIL with what is measured, and it is built so that
it is not the bottleneck: asyncio protocols (no streams), the same C parser hookd uses, no JSON on
the hot path. Its own ceiling is a row of the table (`receiver-ceiling`: wrk against it), so a
reader can see how far below that limit each sender runs. Paths decide behaviour:

- `/fast/<hook>`: 200 at once
- `/slow/<ms>/<hook>`: 200 after `ms` milliseconds
- `/jitter/<ms>/<hook>`: 200 after a random 0..`ms` milliseconds (issue 19's receiver)
- `/hang/<hook>`: never answers; holds the connection until the client gives up (capped at 10 min)

Each POST is recorded at arrival with `time.time()` under its class (the first path segment) and,
when the body starts with `{"t":<unix seconds>,` (bench/hookd_setup.py), its publish-to-receipt
latency. With order capture on (`POST /_reset?order=1`), the first handled arrival of each
`X-Hook-Delivery` (when its answer is written: at once for `/fast/`, after the delay for `/slow/` and
`/jitter/`) is kept as `[hook, entity, seq]` (from `X-Hook-ID` and the body's leading `"seq"` and
`"id"`): the harness computes from it which jobs arrived out of order (bench/ordering.py). The first request of
each class is kept whole (headers and body) so the harness can check its signatures.

Control endpoints: `POST /_reset[?order=1]`, `GET /_count`, `GET /_stats`, `GET /_order`,
`GET /_sample`.

    python -m bench.receiver [--port 0] [--aliases 1000]    # prints the bound port on its first line

With `--aliases N` it also listens on N loopback aliases (127.0.1.1, 127.0.1.2, ... all of 127.0.0.0/8
is this machine), so N hooks can be N distinct receiving hosts: a sender keeps its connections per
host, and thousands of deliveries in flight to one host would not be what production sees.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from itertools import pairwise
from typing import Any

import httptools
import uvloop

from bench.hosts import host_alias

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_HANG_CAP_S = 600.0


class Recorder:
    """What arrived since the last reset; owned by the event loop (the receiver's only thread)."""

    def __init__(self) -> None:
        self.reset(order=False)

    def reset(self, *, order: bool) -> None:
        self.times: dict[str, list[float]] = {}
        self.latencies: dict[str, list[float]] = {}
        self.samples: dict[str, dict[str, Any]] = {}
        self.capture_order = order
        self.first_arrivals: list[tuple[str, str, int]] = []
        self._seen: set[bytes] = set()

    def record(self, cls: str, headers: dict[bytes, bytes], body: bytes) -> None:
        now = time.time()
        times = self.times.get(cls)
        if times is None:
            times = self.times[cls] = []
            self.samples[cls] = {"headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}}
            self.samples[cls]["body"] = body.decode("utf-8", "replace")
        times.append(now)
        if body.startswith(b'{"t":'):
            end = body.find(b",", 5)
            with contextlib.suppress(ValueError):
                self.latencies.setdefault(cls, []).append(now - float(body[5:end]))

    def handled(self, headers: dict[bytes, bytes], body: bytes) -> None:
        """A request's handling ended (its answer is written): with order capture on, keep the first
        of each delivery id. A receiver applies a notification when it has handled it, so two events
        of a job handled at the same time can be applied in either order: counting at the end of
        handling counts them (issue 19: a receiver keeping the latest status ends on a stale one)."""
        if not self.capture_order or not body.startswith(b'{"t":'):
            return
        delivery = headers.get(b"x-hook-delivery")
        if delivery is None or delivery in self._seen:
            return
        self._seen.add(delivery)
        # body: {"t":<time>,"seq":<n>,"id":<entity>,... (bench/hookd_setup.event_body)
        parts = body[:160].split(b",", 3)
        with contextlib.suppress(ValueError, IndexError):
            seq = int(parts[1].partition(b":")[2])
            entity = parts[2].partition(b":")[2].strip(b'"').decode()
            hook = headers.get(b"x-hook-id", b"?").decode("latin-1")
            self.first_arrivals.append((hook, entity, seq))

    def counts(self) -> dict[str, int]:
        return {cls: len(times) for cls, times in self.times.items()}

    def stats(self) -> dict[str, dict[str, object]]:
        result: dict[str, dict[str, object]] = {}
        for cls, times in self.times.items():
            ordered = sorted(times)
            gaps = (b - a for a, b in pairwise(ordered))
            result[cls] = {
                "count": len(times),
                "first": ordered[0],
                "last": ordered[-1],
                "max_gap_s": max(gaps, default=0.0),
                "latencies": self.latencies.get(cls, []),
            }
        return result


class _Connection(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer each by its path."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.hanging = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.hanging:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def _answer(self, transport: asyncio.Transport, headers: dict[bytes, bytes], body: bytes) -> None:
        self.rec.handled(headers, body)
        if not transport.is_closing():
            transport.write(_OK)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        path = self.url.decode("latin-1")
        body = b"".join(self.body)
        if path.startswith("/_"):
            transport.write(_control(path, self.rec))
            return
        segments = path.split("/")
        cls = segments[1] if len(segments) > 1 else ""
        self.rec.record(cls, self.headers, body)
        if cls == "fast":
            self.rec.handled(self.headers, body)
            transport.write(_OK)
        elif cls in ("slow", "jitter"):
            delay = int(segments[2]) / 1000
            if cls == "jitter":
                delay = random.uniform(0, delay)  # a benchmark's jitter, not a secret
            asyncio.get_running_loop().call_later(delay, self._answer, transport, self.headers, body)
        elif cls == "hang":
            self.hanging = True  # never answered; the client gives up and closes
            asyncio.get_running_loop().call_later(_HANG_CAP_S, transport.close)
        else:
            transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        if not self.parser.should_keep_alive():
            transport.close()


def _json_response(payload: object) -> bytes:
    body = json.dumps(payload).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _control(path: str, rec: Recorder) -> bytes:
    if path.startswith("/_reset"):
        rec.reset(order="order=1" in path)
        return _json_response({"reset": True})
    if path.startswith("/_count"):
        return _json_response(rec.counts())
    if path.startswith("/_order"):
        return _json_response(rec.first_arrivals)
    if path.startswith("/_sample"):
        return _json_response(rec.samples)
    return _json_response(rec.stats())


async def serve(port: int, aliases: int) -> None:
    loop = asyncio.get_running_loop()
    rec = Recorder()
    server = await loop.create_server(lambda: _Connection(rec), "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    others = [
        await loop.create_server(lambda: _Connection(rec), host_alias(i), bound, backlog=1024) for i in range(aliases)
    ]
    print(bound, flush=True)
    async with server:
        await server.serve_forever()
    for other in others:
        other.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--aliases", type=int, default=0, help="also listen on this many 127.0.x.y aliases")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.port, args.aliases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
