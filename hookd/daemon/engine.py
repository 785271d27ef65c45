"""The delivery engine: one event-loop thread makes every delivery's attempts, thousands at once.

The main thread admits a task (its hook's lane had a free slot) and `submit`s it; the engine runs it
as a coroutine, at most `delivery.max_in_flight` at a time (beyond that, tasks wait here in order).
A task's attempts are the in-process ones (tenacity, after a first failure); each is recorded (the
canonical log line, history, metrics) and feeds the hook's circuit breaker. Results go back through
a queue, with one wake-up of the main thread (the connection's `wake`) for any number of them. A task
whose connection is gone by the time the engine takes it is handed back unstarted: its message is
back on the broker already.

Why one loop instead of a thread per delivery: with receivers answering in seconds, throughput was
capped at threads / latency (64 threads, 1 s: 52 deliveries/s), and 64 threads handing the GIL to
each other cost more CPU per delivery than one thread did (bench/README.md has the spike's figures).

Threads: the main thread calls `start`, `attach`, `submit`, `finished`, `busy` and `close`; they
touch only what is the main thread's own (`_outstanding`) or thread-safe (`_incoming` is a deque
appended on one side and popped on the other, `_done` a SimpleQueue, the two wake-up flags take
`_flags`); everything else belongs to the loop's thread: the connection tasks must still belong to
(`_conn`, changed through `call_soon_threadsafe`), the running and waiting tasks.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from hookd import logs
from hookd.broker import Connection
from hookd.config import DeliverySettings
from hookd.daemon.breaker import Breakers
from hookd.daemon.pacer import Pacer
from hookd.daemon.recorder import Recorder
from hookd.daemon.task import Finished, Task
from hookd.messages import Delivery
from hookd.metrics import MetricsRecorder
from hookd.outcomes import Verdict
from hookd.retry import Attempt, run_inline
from hookd.subscriptions.model import Hook
from hookd.tracecontext import new_trace

log = logs.get_logger("hookd.worker")
_NAP_SLICE_S = 0.25  # how soon a backoff notices that the daemon is stopping
_SWEEP_EVERY_S = 5.0  # idle keep-alive connections past their timeout are closed this often
_CLOSE_TIMEOUT_S = 5.0


class Transport(Protocol):
    """What makes one HTTP attempt on the engine's loop: `delivery.Sender`, or a fake in tests."""

    async def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt: ...

    def sweep(self) -> None:
        """Close idle connections past their keep-alive timeout."""
        ...

    def close(self) -> None: ...


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (about a third less CPU per delivery, measured), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 (optional at import time: the engine works on either loop)
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class DeliveryEngine:
    """Between the main thread's tasks and its settlements: an event loop on a thread of its own."""

    def __init__(
        self,
        delivery: DeliverySettings,
        *,
        transport: Transport,
        record: Recorder,
        breakers: Breakers,
        metrics: MetricsRecorder,
        stop: threading.Event,
        on_results: Callable[[], None],
        pacer: Pacer | None = None,
    ) -> None:
        self._delivery = delivery
        self._transport = transport
        self._record = record
        self._breakers = breakers
        self._metrics = metrics
        self._stop = stop
        self._pacer = pacer  # rate-limited hooks wait for their slot before each attempt
        self._on_results = on_results  # runs on the main thread when results are waiting
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None  # the loop's: the connection tasks must still belong to
        self._incoming: deque[Task] = deque()  # main thread appends, the loop takes
        self._waiting: deque[Task] = deque()  # the loop's: over max_in_flight, started in order as others finish
        self._running: set[asyncio.Task[None]] = set()  # the loop's
        self._done: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._outstanding = 0  # the main thread's: submitted and not yet taken back through `finished`
        self._flags = threading.Lock()  # guards the two flags below, set on one thread and cleared on the other
        self._take_pending = False  # a `_take` is scheduled on the loop (see `submit`)
        self._wake_pending = False  # a wake-up of the main thread is on its way (see `_wake_main`)
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_loop, name="delivery-engine", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def close(self) -> None:
        """Stop the loop (main thread, after the drain): tasks still running are cancelled (their
        messages are back on the broker once the connection is closed), the transport's keep-alive
        pool and resolver threads are closed on the loop, and the loop's thread is joined."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            done.result(_CLOSE_TIMEOUT_S)
        except Exception as exc:
            log.warning("engine.close_failed", error=repr(exc))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CLOSE_TIMEOUT_S)

    async def _shutdown(self) -> None:
        running = [task for task in self._running if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._transport.close()
        if self._pacer is not None:
            self._pacer.close()

    def _run_loop(self) -> None:
        loop = self._loop = new_event_loop()
        asyncio.set_event_loop(loop)
        loop.call_later(_SWEEP_EVERY_S, self._sweep)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- the main thread's side ------------------------------------------------------------------
    def attach(self, conn: Connection | None) -> None:
        """Tasks must belong to `conn` from now on (None: reconnecting); the ones of an older connection
        are handed back unstarted, and a wake-up queued on a lost connection is forgotten (it never
        runs): the next result sends a new one."""
        with self._flags:
            self._wake_pending = False
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._set_conn, conn)

    def submit(self, task: Task) -> None:
        """Hand a task to the loop; one loop wake-up for any number submitted meanwhile."""
        self._outstanding += 1
        self._incoming.append(task)
        with self._flags:
            if self._take_pending:
                return
            self._take_pending = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._take)

    def finished(self) -> Iterator[Finished]:
        """Results waiting for the main thread (`Finished.last` None: the task was never started)."""
        while True:
            try:
                result = self._done.get_nowait()
            except queue.Empty:
                return
            self._outstanding -= 1
            yield result

    @property
    def busy(self) -> bool:
        """Tasks submitted whose results were not taken yet."""
        return self._outstanding > 0

    @property
    def outstanding(self) -> int:
        """How many tasks were submitted and not taken back yet."""
        return self._outstanding

    # -- the loop's side -------------------------------------------------------------------------
    def _set_conn(self, conn: Connection | None) -> None:
        self._conn = conn

    def _take(self) -> None:
        with self._flags:
            self._take_pending = False  # before draining: a task appended from now on schedules a new take
        while self._incoming:
            task = self._incoming.popleft()
            if self._stop.is_set() or task.held.conn is not self._conn:
                self._hand_back(Finished(task, None))  # frees its lane; its message is requeued by the broker
            elif len(self._running) < self._delivery.max_in_flight:
                self._launch(task)
            else:
                self._waiting.append(task)

    def _launch(self, task: Task) -> None:
        assert self._loop is not None
        self._metrics.in_flight(+1)
        running = self._loop.create_task(self._deliver(task))
        self._running.add(running)
        running.add_done_callback(self._running.discard)

    async def _deliver(self, task: Task) -> None:
        try:
            result = await self._attempts(task)
        except asyncio.CancelledError:  # closing: its message goes back to the broker with the connection
            self._metrics.in_flight(-1)
            raise
        except Exception as exc:  # a bug must not lose the event: treat it as retryable
            log.exception("delivery.internal_error", hook_id=task.hook.id, delivery_id=task.delivery.delivery_id)
            last = Attempt(task.delivery.attempts + 1, Verdict.RETRYABLE, 0.0, error=f"internal error: {exc!r}")
            result = Finished(task, last)
        self._metrics.in_flight(-1)
        current = asyncio.current_task()
        if current is not None:
            self._running.discard(current)  # its slot is free now, before the done callback runs
        self._hand_back(result)
        while self._waiting:  # this task's slot goes to the first that waited for one
            following = self._waiting.popleft()
            if self._stop.is_set() or following.held.conn is not self._conn:
                self._hand_back(Finished(following, None))
            else:
                self._launch(following)
                break

    async def _attempts(self, task: Task) -> Finished:
        """The task's attempts: the first, then in-process retries while they make sense (not stopping,
        the hook not to be disabled, its circuit not open, the task's connection still the current
        one: a delivery whose message went back to the broker is another worker's now)."""
        hook, delivery = task.hook, task.delivery
        transport = self._transport
        disable = False

        async def attempt(number: int) -> Attempt:
            nonlocal disable
            if hook.rate_limit is not None and self._pacer is not None:
                await self._pacer.turn(hook.id, hook.rate_limit)  # not an attempt: no failure, no breaker
            sent = delivery.traced((delivery.trace or new_trace()).child())  # its traceparent: this attempt
            result = await transport.attempt(hook, sent, number)
            self._record.attempt(sent, result)
            if result.verdict is not Verdict.BLOCKED:
                change = self._breakers.record(hook.id, ok=result.verdict is not Verdict.RETRYABLE)
                if change is not None:
                    self._record.breaker(hook.id, change, result)
                    disable = disable or change.disable
            return result

        last = await run_inline(
            attempt,
            first_number=delivery.attempts + 1,
            attempts=self._delivery.inline_attempts,
            backoff_s=self._delivery.inline_backoff_s,
            sleep=self._nap,
            give_up=lambda: (
                self._stop.is_set() or disable or self._breakers.is_open(hook.id) or task.held.conn is not self._conn
            ),
        )
        return Finished(task, last, disable)

    async def _nap(self, seconds: float) -> None:
        """A backoff wait that ends early when the daemon is stopping (it is not drained on a backoff)."""
        assert self._loop is not None
        deadline = self._loop.time() + seconds
        while not self._stop.is_set() and (left := deadline - self._loop.time()) > 0:
            await asyncio.sleep(min(left, _NAP_SLICE_S))

    def _sweep(self) -> None:
        assert self._loop is not None
        self._transport.sweep()
        self._loop.call_later(_SWEEP_EVERY_S, self._sweep)

    def _hand_back(self, result: Finished) -> None:
        self._done.put(result)
        self._wake_main(result.task.held.conn)

    def _wake_main(self, conn: Connection) -> None:
        """Have the main thread settle soon, with one wake-up for any number of finished deliveries.

        A result is queued before the flag is read and the main thread clears the flag before it
        drains the queue, so a result is never left unseen; at worst one wake-up too many. Waking per
        delivery made the main thread queue on pika's connection lock and a pipe write each (a third
        of the GIL time at 1,000 deliveries/s, when deliveries ran on threads).
        """
        with self._flags:
            if self._wake_pending:
                return
            self._wake_pending = True
        if not conn.wake(self._on_wake):
            with self._flags:
                self._wake_pending = False

    def _on_wake(self) -> None:
        with self._flags:
            self._wake_pending = False
        self._on_results()
