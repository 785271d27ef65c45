"""The daemon built in-process on the in-memory broker, with a scripted transport: no network at all."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hookd.broker import Outgoing, Topology, topology_for
from hookd.config import BrokerSettings, DeliverySettings, MetricsSettings, Settings, SubscriptionSettings
from hookd.daemon.daemon import Daemon
from hookd.daemon.notices import Notifier
from hookd.messages import Delivery
from hookd.outcomes import Verdict
from hookd.retry import Attempt
from hookd.state.db import Database
from hookd.state.history import HistoryWriter
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import MemoryStore
from hookd.testing.stub_broker import StubBroker, StubConnection

#: A receiver's answer to one attempt: a verdict and a status (None: no response, e.g. a timeout).
Answer = tuple[Verdict, int | None]
DELIVERED: Answer = (Verdict.DELIVERED, 200)


@dataclass(frozen=True)
class Made:
    """One attempt the transport was asked to make."""

    hook_id: str
    event: str
    delivery_id: str
    number: int
    body: bytes


@dataclass
class ScriptedTransport:
    """Answers attempts per hook from `answers` (a function of the hook and the attempt number), or
    per delivery from `answer_for` when given."""

    answers: Callable[[Hook, int], Answer] = lambda _hook, _number: DELIVERED
    made: list[Made] = field(default_factory=list)
    gate: threading.Event | None = None  # when set, attempts wait for it (a slow receiver)
    latency: Callable[[], float] | None = None  # seconds each attempt takes after it arrived
    answer_for: Callable[[Hook, Delivery, int], Answer] | None = None
    hold: Callable[[Hook, Delivery], bool] | None = None  # these attempts wait for `released` once arrived
    released: threading.Event = field(default_factory=threading.Event)
    closed_on: str | None = None  # the thread that closed it (the engine closes its transport on its loop)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sweep(self) -> None:
        return None

    def close(self) -> None:
        self.closed_on = threading.current_thread().name

    async def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt:
        if self.gate is not None:
            for _ in range(1000):  # at most 10 s: a gate nobody opens must not hang the suite
                if self.gate.is_set():
                    break
                await asyncio.sleep(0.01)
        with self._lock:
            self.made.append(Made(hook.id, delivery.event, delivery.delivery_id, number, delivery.body))
        if self.latency is not None:
            await asyncio.sleep(self.latency())
        if self.hold is not None and self.hold(hook, delivery):
            for _ in range(3000):  # at most 30 s: a hold nobody releases must not hang the suite
                if self.released.is_set():
                    break
                await asyncio.sleep(0.01)
        answer = self.answer_for(hook, delivery, number) if self.answer_for is not None else self.answers(hook, number)
        verdict, status = answer
        return Attempt(number, verdict, 0.001, status=status, error=None if status == 200 else f"HTTP {status}")

    def to(self, hook_id: str) -> list[Made]:
        with self._lock:
            return [m for m in self.made if m.hook_id == hook_id]


class InProcessDaemon:
    """A `Daemon` on a `StubBroker` and a `MemoryStore`, running on a thread of its own."""

    def __init__(
        self,
        hooks: Iterable[Hook],
        transport: ScriptedTransport | None = None,
        *,
        delivery: DeliverySettings | None = None,
        history: HistoryWriter | None = None,
        notices: Database | None = None,
        store: MemoryStore | None = None,
        state: Database | None = None,
        partitions: int = 0,
        broker: StubBroker | None = None,
        token: str | None = None,
        metrics: bool = False,
    ) -> None:
        token = token or uuid.uuid4().hex[:8]  # daemons given the same token and broker are one installation's
        self.settings = Settings(
            broker=BrokerSettings(
                exchange=f"x-{token}", queue_prefix=f"p-{token}", reconnect_max_s=0.5, partitions=partitions
            ),
            subscriptions=SubscriptionSettings(poll_interval_s=0.05),
            delivery=delivery or DeliverySettings(inline_backoff_s=0, retry_delays_s=(0.2,)),
            # with `metrics`, the daemon records them (read `daemon.metrics.registry`); its endpoint
            # listens on a port of the system's choosing on loopback
            metrics=MetricsSettings(listen="127.0.0.1:0" if metrics else ""),
        )
        self.topology: Topology = topology_for(self.settings)
        self.broker = broker or StubBroker()
        self.store = store or MemoryStore(hooks)
        self.transport = transport or ScriptedTransport()
        self.connections: list[StubConnection] = []
        self.daemon = Daemon(
            self.settings,
            self.store,
            sender=self.transport,
            history=history,
            notifier=Notifier(notices, exchange=self.topology.exchange, poll_interval_s=0.05) if notices else None,
            state=state,
            connector=self._connect,
        )
        self.broker.declare(self.topology)  # as `hookd publish --config` does: events wait for the daemon
        self._thread = threading.Thread(target=self.daemon.run, name="in-process daemon", daemon=True)
        self._thread.start()

    def _connect(self) -> StubConnection:
        conn = self.broker.connect(self.topology)
        self.connections.append(conn)
        return conn

    def crash(self) -> None:
        """As a `kill -9`: the connection is lost at once (unacked work goes back to the broker) and the
        daemon stops without draining or settling anything more."""
        self.daemon.request_stop()
        for conn in self.connections:
            self.broker.drop_connection(conn)
        self._thread.join(30)

    def publish(self, event: str, account: str, body: bytes = b'{"id": 1}', event_id: str | None = None) -> str:
        """Publish like the scheduler; returns the event id."""
        event_id = event_id or f"evt-{uuid.uuid4()}"
        headers = {"account_id": account}
        self.broker.publish(Outgoing(event, body, headers, event_id, exchange=self.topology.exchange))
        return event_id

    def settled(self, timeout_s: float = 10.0) -> bool:
        """Every queue the daemon consumes is empty and nothing is held unacked."""

        def idle() -> bool:
            queues = (self.topology.events, self.topology.deliveries, *self.topology.partition_queues())
            return not any(self.broker.ready(q) for q in queues) and not self.broker.held()

        return self.broker.wait(idle, timeout_s)

    def stop(self) -> None:
        self.daemon.request_stop()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the daemon did not stop"
