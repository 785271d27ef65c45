"""The senders hookd is measured against, one small file each, and what installs their tools.

- `naive.py`: one pika consumer, prefetch 1, one `requests.Session`, POSTs sequentially (weak).
- `raw.py`: the same POSTs in a `requests` loop, no broker (the old per-process ceiling).
- `aio.py`: aio-pika + aiohttp on uvloop, hookd's prefetch and connections per host (strong).
- `node.mjs`: Node.js amqplib + undici, the same shape (the strongest; issue 22's yardstick).
- `tools.py`: installs the npm packages (into bench/peers/node_modules) and Debian's wrk.

Every peer sends what hookd sends (bench/load.py): the same body, both signatures; none retries,
none keeps history, none logs per delivery.
"""
