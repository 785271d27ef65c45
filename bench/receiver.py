"""The benchmark's receiver: a minimal asyncio HTTP/1.1 keep-alive server (standard library only).

It runs in its own process so it never shares a GIL with what is measured. Paths decide behaviour:

- `/fast/<hook>`: 200 at once
- `/slow/<ms>/<hook>`: 200 after `ms` milliseconds
- `/hang/<hook>`: never answers; holds the connection until the client gives up (capped at 10 min)

Each POST is recorded at arrival with `time.time()` and, when the body starts with `{"t":<unix
seconds>,` (bench/common.py), its publish-to-receipt latency. Control endpoints: `POST /_reset`,
`GET /_count` (counts per class) and `GET /_stats` (counts, first/last receipt, latencies).

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
import sys
import time

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_HANG_CAP_S = 600.0


class Recorder:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.latencies: dict[str, list[float]] = {}

    def record(self, cls: str, body: bytes) -> None:
        now = time.time()
        self.times.setdefault(cls, []).append(now)
        if body.startswith(b'{"t":'):
            end = body.find(b",", 5)
            with contextlib.suppress(ValueError):
                self.latencies.setdefault(cls, []).append(now - float(body[5:end]))

    def counts(self) -> dict[str, int]:
        return {cls: len(times) for cls, times in self.times.items()}

    def stats(self) -> dict[str, dict[str, object]]:
        return {
            cls: {
                "count": len(times),
                "first": min(times),
                "last": max(times),
                "max_gap_s": max((b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False)), default=0.0),
                "latencies": self.latencies.get(cls, []),
            }
            for cls, times in self.times.items()
            if times
        }


def _json_response(payload: object) -> bytes:
    body = json.dumps(payload).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rec: Recorder) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            request_line, _, header_block = head.partition(b"\r\n")
            parts = request_line.split(b" ")
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            length = 0
            close = False
            for line in header_block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip() or 0)
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await reader.readexactly(length) if length else b""
            if path.startswith("/_"):
                writer.write(_control(path, rec))
            elif path.startswith("/hang/"):
                rec.record("hang", body)
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await asyncio.wait_for(reader.read(), _HANG_CAP_S)  # until the client hangs up
                return
            elif path.startswith("/slow/"):
                rec.record("slow", body)
                await asyncio.sleep(int(path.split("/")[2]) / 1000)
                writer.write(_OK)
            else:
                rec.record("fast", body)
                writer.write(_OK)
            if close:
                await writer.drain()
                return
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


def _control(path: str, rec: Recorder) -> bytes:
    if path.startswith("/_reset"):
        rec.reset()
        return _json_response({"reset": True})
    if path.startswith("/_count"):
        return _json_response(rec.counts())
    return _json_response(rec.stats())


def alias(index: int) -> str:
    """The loopback address of distinct host number `index` (0-based): 127.0.1.1 ... 127.0.4.250 ..."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


async def serve(port: int, aliases: int) -> None:
    rec = Recorder()
    server = await asyncio.start_server(lambda r, w: handle(r, w, rec), "127.0.0.1", port, backlog=1024, limit=1 << 20)
    bound = server.sockets[0].getsockname()[1]
    others = [
        await asyncio.start_server(lambda r, w: handle(r, w, rec), alias(i), bound, backlog=1024, limit=1 << 20)
        for i in range(aliases)
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
        asyncio.run(serve(args.port, args.aliases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
