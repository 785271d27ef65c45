"""The daemon's unit of work: one delivery it works on (`Task`), the consumed message whose share it
settles (`Held`), and what the engine hands back when it is done (`Finished`).

Kept apart from the modules that act on them, so that the engine (which runs tasks) and settlement
(which settles them) depend on this module and not on each other. Threads: a `Task` is built and
settled on the main thread; the engine only reads it; `Finished` is built on the engine's loop and
read on the main thread once it was taken from the engine's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from hookd.broker import Connection
from hookd.daemon.lanes import Lanes
from hookd.messages import Delivery
from hookd.ordering import ChainKey
from hookd.retry import Attempt
from hookd.subscriptions.model import Hook


@dataclass(slots=True)
class Held:
    """One consumed message, held unacked (in its consumer's prefetch window) until all its
    deliveries are settled (main thread only). A delivery read back from the state database (an
    ordered one that waited there) has no message: `release` settles it instead of an ack."""

    conn: Connection
    tag: int
    pending: int
    queue: str
    release: Callable[[], None] | None = None


@dataclass(slots=True)
class Task:
    """One delivery: the delivery, its hook, and the held message whose share it settles."""

    held: Held
    hook: Hook
    delivery: Delivery
    lanes: Lanes[Task] | None = None  # set (main thread) when it took a slot of its hook's lane
    chain: ChainKey | None = None  # ordered: the chain it belongs to (hook, account, entity)


class Finished(NamedTuple):
    """A task the engine is done with: its last attempt (None: never started, its connection was
    gone), and whether the hook failed without a break for `delivery.disable_after_s` meanwhile."""

    task: Task
    last: Attempt | None
    disable: bool = False
