"""The asyncio peer: aio-pika + aiohttp on uvloop, in hookd's shape (issue 22).

One AMQP connection, prefetch = hookd's (`Settings.prefetch`), one aiohttp session whose connector
keeps at most hookd's `delivery.per_hook_concurrency` connections per host (each bench hook is a
host of its own). Each message becomes a task that POSTs it to every matching hook at once, with the
same body and headers hookd sends (bench/load.py), then acks. No retries, no history, no log lines.
Runs until terminated.

    python -m bench.peers.aio SPEC.json    # {"amqp", "queue", "prefetch", "connections_per_host", "hooks"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import uvloop

from bench.load import ACCOUNT, BenchHook, delivery_headers


async def _post(session: aiohttp.ClientSession, hook: BenchHook, event: str, event_id: str, body: bytes) -> None:
    headers = delivery_headers(hook, event, event_id, body)
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # the peer does not retry
        async with session.post(hook.url, data=body, headers=headers, allow_redirects=False) as response:
            await response.read()


async def run(spec: dict[str, Any]) -> None:
    hooks = [BenchHook(**h) for h in spec["hooks"]]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=int(spec["connections_per_host"]))
    timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout_s", 10)))
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        connection = await aio_pika.connect(spec["amqp"])
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=int(spec["prefetch"]))
            queue = await channel.get_queue(spec["queue"], ensure=True)

            async def deliver(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                account = str((message.headers or {}).get("account_id"))
                event = message.routing_key or ""
                if account == ACCOUNT and event.startswith("job."):  # every bench hook subscribes to "job"
                    event_id = message.message_id or ""
                    await asyncio.gather(*(_post(session, h, event, event_id, message.body) for h in hooks))
                await message.ack()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                task = asyncio.create_task(deliver(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            await queue.consume(on_message)
            await stopped.wait()


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    uvloop.run(run(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
