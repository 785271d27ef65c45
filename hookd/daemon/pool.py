"""The delivery pool: `delivery.workers` delivery threads make the HTTP attempts of the tasks the main
thread submits, and hand each result back to the main thread, which settles it on the broker.

A delivery thread runs a task's inline attempts (tenacity, after a first failure), records each
attempt (the canonical log line, history, metrics) and feeds the hook's circuit breaker. Results go back through
a queue, with one wake-up of the main thread (pika's `add_callback_threadsafe`) for any number of
them. A task whose connection is gone by the time a thread takes it is handed back unstarted: its
message is back on the broker already.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from hookd import logs
from hookd.broker import Connection
from hookd.config import DeliverySettings
from hookd.daemon.breaker import Breakers
from hookd.daemon.recorder import Recorder
from hookd.daemon.settlement import Task
from hookd.messages import Delivery
from hookd.metrics import MetricsRecorder
from hookd.outcomes import Verdict
from hookd.retry import Attempt, run_inline
from hookd.subscriptions.model import Hook

log = logs.get_logger("hookd.worker")


class Transport(Protocol):
    """What makes one HTTP attempt: `delivery.Sender`, or a fake in tests."""

    def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt: ...


class DeliveryPool:
    """Delivery threads between the main thread's tasks and its settlements."""

    def __init__(
        self,
        delivery: DeliverySettings,
        *,
        sender: Transport,
        record: Recorder,
        breakers: Breakers,
        metrics: MetricsRecorder,
        stop: threading.Event,
        current: Callable[[], Connection | None],
        on_results: Callable[[], None],
    ) -> None:
        self._delivery = delivery
        self._sender = sender
        self._record = record
        self._breakers = breakers
        self._metrics = metrics
        self._stop = stop
        self._current = current  # the connection tasks must still belong to
        self._on_results = on_results  # runs on the main thread when results are waiting
        self._tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[Task, Attempt | None]] = queue.SimpleQueue()
        self._running = 0
        self._running_lock = threading.Lock()
        self._wake_pending = False  # a wake-up of the main thread is on its way (see _wake_main)

    def start(self) -> None:
        for index in range(self._delivery.workers):
            threading.Thread(target=self._work_loop, name=f"delivery-{index}", daemon=True).start()

    def submit(self, task: Task) -> None:
        self._tasks.put(task)

    def finished(self) -> Iterator[tuple[Task, Attempt | None]]:
        """Results waiting for the main thread; None: the task was never started."""
        while True:
            try:
                yield self._done.get_nowait()
            except queue.Empty:
                return

    @property
    def running(self) -> int:
        return self._running

    @property
    def busy(self) -> bool:
        """Attempts running, or results not yet taken."""
        return bool(self._running) or not self._done.empty()

    def reconnected(self) -> None:
        """A wake-up queued on a lost connection never runs: the next result must send a new one."""
        self._wake_pending = False

    def _work_loop(self) -> None:
        while True:
            task = self._tasks.get()
            if self._stop.is_set() or task.held.conn is not self._current():
                self._done.put((task, None))  # frees its lane; its message is requeued by the broker
                continue
            with self._running_lock:
                self._running += 1
            self._metrics.in_flight(+1)
            try:
                last = self._deliver(task)
            except Exception as exc:  # a bug must not lose the event: treat it as retryable
                log.exception("delivery.internal_error", hook_id=task.hook.id, delivery_id=task.delivery.delivery_id)
                last = Attempt(task.delivery.attempts + 1, Verdict.RETRYABLE, 0.0, error=f"internal error: {exc!r}")
            self._metrics.in_flight(-1)
            self._done.put((task, last))
            with self._running_lock:
                self._running -= 1
            self._wake_main(task.held.conn)

    def _wake_main(self, conn: Connection) -> None:
        """Have the main thread settle soon, with one wake-up for any number of finished deliveries.

        A result is queued before the flag is read and the main thread clears the flag before it
        drains the queue, so a result is never left unseen; at worst one wake-up too many. Waking per
        delivery made 64 threads queue on pika's connection lock and a pipe write each (a third of
        the GIL time at 1,000 deliveries/s).
        """
        if self._wake_pending:
            return
        self._wake_pending = True
        if not conn.wake(self._on_wake):
            self._wake_pending = False

    def _on_wake(self) -> None:
        self._wake_pending = False
        self._on_results()

    def _deliver(self, task: Task) -> Attempt:
        hook, delivery = task.hook, task.delivery

        def attempt(number: int) -> Attempt:
            result = self._sender.attempt(hook, delivery, number)
            self._record.attempt(delivery, result)
            if result.verdict is not Verdict.BLOCKED:
                change = self._breakers.record(hook.id, ok=result.verdict is not Verdict.RETRYABLE)
                if change is not None:
                    self._record.breaker(hook.id, change)
                    task.disable = task.disable or change.disable
            return result

        return run_inline(
            attempt,
            first_number=delivery.attempts + 1,
            attempts=self._delivery.inline_attempts,
            backoff_s=self._delivery.inline_backoff_s,
            stop=self._stop,
            give_up=lambda: task.disable or self._breakers.is_open(hook.id),
        )
