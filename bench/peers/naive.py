"""The naive baseline: one pika consumer that POSTs each event to every matching hook, sequentially.

One `BlockingConnection`, a small prefetch, one `requests.Session`; for each message, one POST per
matching hook with the same body and headers hookd sends (bench/load.py), then the ack. No
retries, no isolation, no history: the simplest correct-looking thing. Runs until terminated.

    python -m bench.peers.naive SPEC.json    # {"amqp": ..., "queue": ..., "prefetch": 1, "hooks": [...]}
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import pika
import requests

from bench.load import ACCOUNT, BenchHook, delivery_headers


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    hooks = [BenchHook(**h) for h in spec["hooks"]]
    session = requests.Session()
    session.trust_env = False
    connection = pika.BlockingConnection(pika.URLParameters(spec["amqp"]))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=int(spec.get("prefetch", 1)))

    def on_message(ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        account = str((props.headers or {}).get("account_id"))
        if account == ACCOUNT and method.routing_key.startswith("job."):  # every bench hook subscribes to "job"
            for hook in hooks:
                try:
                    response = session.post(
                        hook.url,
                        data=body,
                        headers=delivery_headers(hook, method.routing_key, props.message_id or "", body),
                        timeout=10,
                        allow_redirects=False,
                    )
                    response.close()
                except requests.RequestException:
                    pass  # the baseline does not retry
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(spec["queue"], on_message)
    with contextlib.suppress(KeyboardInterrupt):
        channel.start_consuming()
    return 0


if __name__ == "__main__":
    sys.exit(main())
