"""The names and arguments of everything hookd declares on the broker, derived from the config.

With ordered delivery (`broker.partitions` > 0): `<prefix>.events` has a single active consumer (the
router, one worker at a time), which spreads events over `<prefix>.partition.<n>` by entity; each
partition has a single active consumer too, and one owner at a time, which holds the exclusive queue
`<prefix>.partition.<n>.owner` (RabbitMQ removes it with its connection); `<prefix>.workers` is never
published to: every worker consumes it, so its consumer count is the number of running workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from hookd.config import Settings
from hookd.retry import DELAY_BUCKETS_S, delay_label


@dataclass(frozen=True, slots=True)
class Topology:
    """Names and arguments of everything hookd declares, derived from the config."""

    exchange: str
    prefix: str
    queue_type: str = "quorum"
    retry_delays_s: tuple[float, ...] = ()
    #: Quorum queues only: a message redelivered this often (it keeps crashing or stalling workers)
    #: is dead-lettered by the broker to `<prefix>.dead` instead of looping forever.
    delivery_limit: int = 50
    #: Quorum queues only: replicas a queue starts with (`x-quorum-initial-group-size`); 0 leaves it to
    #: RabbitMQ, which puts one on every node of the cluster at declaration time.
    quorum_replicas: int = 0
    #: Ordered delivery's partitions (0: none, `<prefix>.events` is consumed by every worker at once).
    partitions: int = 0

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def deliveries(self) -> str:
        return f"{self.prefix}.deliveries"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def invalid(self) -> str:
        return f"{self.prefix}.invalid"

    @property
    def workers(self) -> str:
        return f"{self.prefix}.workers"

    def retry_queue(self, delay_s: float) -> str:
        return f"{self.prefix}.retry.{delay_label(delay_s)}"

    def partition(self, index: int) -> str:
        return f"{self.prefix}.partition.{index}"

    def partition_owner(self, index: int) -> str:
        """The exclusive queue whose holder owns partition `index` (a lock the broker releases)."""
        return f"{self.partition(index)}.owner"

    def partition_queues(self) -> list[str]:
        return [self.partition(index) for index in range(self.partitions)]

    def queues(self) -> list[str]:
        """Every queue hookd owns (for tooling and test clean-up)."""
        names = [self.events, self.deliveries, self.dead, self.invalid]
        names += sorted({self.retry_queue(d) for d in (*self.retry_delays_s, *DELAY_BUCKETS_S)})
        if self.partitions:
            names += [*self.partition_queues(), self.workers]
        return names

    def _queue_args(self) -> dict[str, Any]:
        if self.queue_type != "quorum":
            return {}
        args: dict[str, Any] = {"x-queue-type": "quorum"}
        if self.quorum_replicas:
            args["x-quorum-initial-group-size"] = self.quorum_replicas
        return args

    def _dead_lettering(self, target: str) -> dict[str, Any]:
        args: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target}
        if self.queue_type == "quorum":
            # At-least-once: a message being dead-lettered survives a node failure mid-way.
            args.update({"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
        return args

    def arguments(self, queue: str) -> dict[str, Any]:
        """The declare arguments of one of the fixed queues (a redeclaration must match them exactly)."""
        args = self._queue_args()
        consumed = (self.events, self.deliveries, *self.partition_queues())
        if queue in consumed and self.queue_type == "quorum" and self.delivery_limit:
            args.update({"x-delivery-limit": self.delivery_limit, **self._dead_lettering(self.dead)})
        if self.partitions and (queue == self.events or queue in self.partition_queues()):
            args["x-single-active-consumer"] = True
        return args

    def declare(self, channel: BlockingChannel) -> None:
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        fixed = [self.events, self.deliveries, self.dead, self.invalid]
        if self.partitions:
            fixed += [*self.partition_queues(), self.workers]
        for name in fixed:
            channel.queue_declare(name, durable=True, arguments=self.arguments(name))
        channel.queue_bind(self.events, self.exchange, routing_key="#")
        for delay in sorted(set(self.retry_delays_s)):
            self.declare_delay(channel, delay)

    def declare_delay(self, channel: BlockingChannel, delay_s: float) -> None:
        """A TTL queue that hands messages to `<prefix>.deliveries` after `delay_s` (idempotent)."""
        retry_args = self._queue_args()
        retry_args["x-message-ttl"] = round(delay_s * 1000)
        retry_args.update(self._dead_lettering(self.deliveries))
        channel.queue_declare(self.retry_queue(delay_s), durable=True, arguments=retry_args)


def topology_for(settings: Settings) -> Topology:
    return Topology(
        exchange=settings.broker.exchange,
        prefix=settings.broker.queue_prefix,
        queue_type=settings.broker.queue_type,
        retry_delays_s=settings.delivery.retry_delays_s,
        quorum_replicas=settings.broker.quorum_replicas,
        partitions=settings.broker.partitions,
    )
