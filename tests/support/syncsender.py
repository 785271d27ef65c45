"""`delivery.Sender` driven from a test's own thread, one attempt at a time.

The engine runs the sender on its event loop thread; a test wants to make attempt 1, look, make
attempt 2 on the same keep-alive pool. `SyncSender` keeps one asyncio loop (asyncio's own, not
uvloop: its sockets connect through `socket.socket.connect`, which the SSRF tests' connect guard
watches) and runs each attempt to completion on the calling thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hookd.delivery import Sender
from hookd.messages import Delivery
from hookd.retry import Attempt
from hookd.subscriptions.model import Hook


class SyncSender:
    """A `Sender` (same keyword arguments) whose `attempt` blocks until the attempt is over."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self.sender = Sender(**options)

    def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt:
        return self._loop.run_until_complete(self.sender.attempt(hook, delivery, number))

    def close(self) -> None:
        self.sender.close()
        self._loop.run_until_complete(asyncio.sleep(0.01))  # let aborted transports finish closing
        self._loop.close()

    def __enter__(self) -> SyncSender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
