"""The daemon: one process, one broker connection, one delivery event loop, and its lifecycle.

Threads (docs/architecture.md draws them): the main thread owns the broker connection (consume,
publish with confirms, ack), the hooks in use (`Roster`) and everything that settles a delivery,
and never sleeps on the connection; the delivery engine's event-loop thread makes the HTTP attempts
(up to `delivery.max_in_flight` at once) and hands results back through a queue, waking the main
thread with the connection's `wake()`; the store watcher loads changed hooks for the main thread to
swap in, and stores what hookd disabled. An event is acked only once every matching hook's delivery
succeeded, or was handed to a retry queue or dead-lettered and the broker confirmed it, so a crash at
any point loses nothing (at worst an in-flight delivery is repeated with the same delivery id).
On stop, every thread the daemon started is stopped and joined, and every pool closed.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from types import FrameType

from hookd import logs, sdnotify
from hookd.broker import Connection, NodeRing, connect, topology_for
from hookd.config import Settings
from hookd.daemon.breaker import Breakers
from hookd.daemon.consumer import Consumer
from hookd.daemon.engine import DeliveryEngine, Transport
from hookd.daemon.notices import Notifier
from hookd.daemon.pacer import Pacer
from hookd.daemon.partitions import Partitions
from hookd.daemon.recorder import Recorder
from hookd.daemon.roster import Roster
from hookd.daemon.sequencer import Sequencer
from hookd.daemon.settlement import Settler
from hookd.daemon.waitroom import WaitRoom
from hookd.daemon.watcher import Watcher, mask_secrets
from hookd.delivery import Sender
from hookd.endpoint import Endpoint
from hookd.errors import BrokerError, ConfigError
from hookd.health import Health
from hookd.metrics import Metrics, recorder_for
from hookd.state.db import Database
from hookd.state.history import HistoryWriter
from hookd.state.workers import Heartbeat
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.store import SubscriptionStore
from hookd.tracing import tracer_for

log = logs.get_logger("hookd.worker")
_POLL_S = 0.25
_LAG_EVERY_S = 5.0

#: Opens a connection for the daemon (the broker's, or `hookd.testing.stub_broker`'s in tests).
Connector = Callable[[], Connection]


class Daemon:
    """`hookd run`: consume, deliver, settle; reconnect on broker failures; drain on SIGTERM."""

    def __init__(
        self,
        settings: Settings,
        store: SubscriptionStore,
        *,
        sender: Transport | None = None,
        history: HistoryWriter | None = None,
        notifier: Notifier | None = None,
        state: Database | None = None,
        connector: Connector | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.settings = settings
        self.topology = topology_for(settings)
        if self.topology.partitions and state is None:
            raise ConfigError(
                [
                    "ordered delivery (broker.partitions > 0) keeps waiting deliveries in the state database"
                    " (state.url), and it cannot be opened; set broker.partitions: 0 to run without ordering"
                ],
                "hookd run",
            )
        self._store = store
        self._state = state
        self._history = history
        self._notifier = notifier
        self._heartbeat = heartbeat  # `hookd_workers` row: what `hookd status` shows of this worker
        self._reported_partitions: list[int] = []
        # One node order for the process's life: after losing its node it moves on to the next one.
        self._connect = connector or partial(
            connect, settings, name="hookd worker", nodes=NodeRing.for_settings(settings.broker)
        )
        self._stop = threading.Event()
        self._watcher = Watcher(
            store, poll_interval_s=settings.subscriptions.poll_interval_s, stop=self._stop, state=state
        )
        hooks = store.load()  # after the watcher read the revision: a change in between is not missed
        mask_secrets(hooks)
        self._roster = Roster(
            hooks,
            self._watcher.revision,
            persisted=self._watcher.persisted,
            store_disable=self._watcher.deactivate,
            kept=self._watcher.kept(hooks),
        )
        self.health = Health(store)
        self.metrics = recorder_for(settings.metrics.listen)
        self.metrics.hooks_loaded(h.id for h in hooks)
        if history is not None:
            self.metrics.observe_counter(
                "hookd_history_dropped_total",
                "History records dropped because the history writer could not keep up or the state database"
                " failed (deliveries are not affected)",
                lambda: history.dropped,
            )
        self.metrics.observe_counter(
            "hookd_log_lines_dropped_total",
            "Log lines dropped because the log output was stalled (the event loop never waits on logging)",
            logs.dropped_lines,
        )
        self._tracer = tracer_for(settings.tracing.otlp_endpoint, settings.tracing.service_name)
        record = Recorder(history, self.metrics, notifier, self._tracer)
        self._waitroom = (
            WaitRoom(state, stop=self._stop, on_results=self._waitroom_results)
            if state is not None and self.topology.partitions
            else None
        )
        self._consumer = self._build_consumer(sender or Sender.from_settings(settings), record)
        self._partitions = Partitions(self.topology, self._consumer)
        self._watchdog = sdnotify.Watchdog.from_environment()
        self._conn: Connection | None = None
        self._ready = False
        self._lag_due = 0.0
        # With metrics on: the queues whose depth `hookd_queue_messages` shows, every one declared on
        # connect (a passive declare of a missing queue would close the channel).
        waiting = [*map(self.topology.retry_queue, sorted(set(settings.delivery.retry_delays_s)))]
        waiting += [self.topology.dead, self.topology.invalid]
        self._waiting_queues = waiting if isinstance(self.metrics, Metrics) else []
        self._signals = 0

    def _build_consumer(self, sender: Transport, record: Recorder) -> Consumer:
        delivery = self.settings.delivery
        breakers = Breakers(
            threshold=delivery.breaker_threshold,
            cooldown_s=delivery.breaker_cooldown_s,
            disable_after_s=delivery.disable_after_s,
        )
        self._engine = DeliveryEngine(
            delivery,
            transport=sender,
            record=record,
            breakers=breakers,
            metrics=self.metrics,
            stop=self._stop,
            on_results=lambda: self._consumer.settle_finished(),  # noqa: PLW0108 (built just below)
            pacer=Pacer(self._state),
        )
        settler = Settler(
            delivery,
            self.topology,
            self.settings.prefetch,
            partition_prefetch=self.settings.partition_prefetch,
            metrics=self.metrics,
            record=record,
            breakers=breakers,
            roster=self._roster,
        )
        sequencer = Sequencer(
            delivery,
            self.topology,
            self._waitroom,
            start=lambda task: self._consumer.start(task),  # noqa: PLW0108 (built just below)
            settle=settler.done_with,
        )
        settler.sequencer = sequencer
        self._sequencer = sequencer
        return Consumer(
            self.settings,
            roster=self._roster,
            sequencer=sequencer,
            settler=settler,
            engine=self._engine,
            breakers=breakers,
            record=record,
            reload=self._watcher.request,
        )

    # -- signals ---------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda _s, _f: self.reload())

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("daemon.stop_forced", signal=signal.Signals(signum).name)
            logs.flush()
            os._exit(1)
        self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def hooks(self) -> HookSet:
        """The hooks in use now (the main thread swaps them; another thread sees the last swap)."""
        return self._roster.hooks

    @property
    def disabled(self) -> Mapping[str, str]:
        """Hook id -> why hookd disabled it (a read-only view of the main thread's record)."""
        return self._roster.disabled

    @property
    def partitions(self) -> list[int]:
        """The ordering partitions this worker owns now (a copy of the main thread's list)."""
        return self._partitions.owned

    def reload(self) -> None:
        """Reload the hooks soon, whatever the store's revision says (SIGHUP)."""
        self._watcher.request()

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until asked to stop; reconnect on broker failures; exit code 0 after a clean drain."""
        log.info(
            "daemon.start",
            broker=self.settings.broker.shown_urls,
            queue_prefix=self.topology.prefix,
            subscriptions=self._store.describe(),
            hooks=len(self._roster.hooks),
            max_in_flight=self.settings.delivery.max_in_flight,
        )
        for notice in self.settings.notices:
            log.warning("config.notice", notice=notice)
        self._engine.start()
        self._watcher.start()
        if self._waitroom is not None:
            self._waitroom.start()
        if self._history is not None:
            self._history.start()
        if self._notifier is not None:
            self._notifier.start()
            self._notifier.reloaded(self._roster.hooks, self._roster.disabled)
        if self._heartbeat is not None:
            self._heartbeat.start(self.metrics.hooks_disabled)
        endpoint: Endpoint | None = None
        if self.settings.metrics.listen:
            render = self.metrics.render if isinstance(self.metrics, Metrics) else None
            endpoint = Endpoint(self.settings.metrics.listen, self.health.check, render)
        try:
            self._serve_until_stopped()
        finally:
            self._close(endpoint)
        log.info("daemon.stop")
        return 0

    def _serve_until_stopped(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._connected(self._open())
                failures = 0
                self._serve()
            except BrokerError as exc:
                failures += 1
                self._back_off(exc, failures)

    def _close(self, endpoint: Endpoint | None) -> None:
        """Stop and join every thread the daemon started, and close every pool: the engine (its loop,
        keep-alive connections and resolver threads), the watcher, history, notices, the heartbeat, the
        endpoint, the span exporter."""
        self._stop.set()
        self._engine.close()
        self._watcher.join()
        if self._waitroom is not None:
            self._waitroom.close()
        if self._history is not None:
            self._history.close()
        if self._notifier is not None:
            self._notifier.close()
        if self._heartbeat is not None:
            self._heartbeat.close()
        if endpoint is not None:
            endpoint.close()
        self._tracer.close()  # sends the spans still queued

    def _open(self) -> Connection:
        self._watchdog.tick()
        conn = self._connect()
        self._conn = conn  # before it can fail below, so `_abandon` closes it
        conn.start_pipelining()
        return conn

    def _connected(self, conn: Connection) -> None:
        self._consumer.attach(conn)
        self._partitions.attach(conn)
        if self._waitroom is not None:
            self._waitroom.attach(conn.wake)
        self.health.broker_connected(True)
        self.metrics.broker_connected(True, node=conn.node)
        self._report_queues(conn)
        if not self._ready:
            self._ready = True
            sdnotify.ready(f"consuming from {self.topology.events}")
        else:
            sdnotify.status(f"consuming from {self.topology.events}")
        log.info("broker.connected", node=conn.node, queues=[self.topology.events, self.topology.deliveries])

    def _back_off(self, exc: BrokerError, failures: int) -> None:
        """Forget the lost connection and wait (exponential, jittered) before the next try."""
        delay = min(self.settings.broker.reconnect_max_s, 0.5 * 2 ** min(failures, 10))
        delay = random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not cryptography)
        log.warning("broker.disconnected", error=str(exc), retry_in_s=round(delay, 2))
        self.health.broker_connected(False)
        self.metrics.broker_connected(False)
        if self._heartbeat is not None:
            self._heartbeat.disconnected()
        sdnotify.status(f"broker unreachable, reconnecting in {delay:.1f} s")
        self._abandon()
        deadline = time.monotonic() + delay
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self._watchdog.tick()
            self._apply_reload()
            self._stop.wait(self._watchdog.max_wait_s(min(left, _POLL_S)))

    def _abandon(self) -> None:
        """Forget the dead connection: its unacked messages are back on the broker already."""
        conn, self._conn = self._conn, None
        self._consumer.attach(None)
        self._partitions.attach(None)
        if self._waitroom is not None:
            self._waitroom.attach(None)
        if conn is not None:
            conn.close()

    def _serve(self) -> None:
        conn = self._conn
        assert conn is not None
        while not self._stop.is_set():
            conn.poll(_POLL_S)
            self._turn(conn)
        self._drain(conn)

    def _turn(self, conn: Connection) -> None:
        """One turn of the main loop besides the broker's I/O: settle, release, claim, park, publish."""
        self._consumer.settle_finished()
        self._waitroom_results()
        self._sequencer.tick()
        self._partitions.tick()
        if self._partitions.owned != self._reported_partitions:
            self._report_queues(conn)
        self._consumer.park_stuck()
        if self._notifier is not None:
            self._notifier.publish_ready(conn)
        self._watchdog.tick()
        if time.monotonic() >= self._lag_due:
            self._lag_due = time.monotonic() + _LAG_EVERY_S
            for name in (self.topology.events, self.topology.deliveries):
                self.metrics.consumer_lag(name, conn.message_count(name))
            if isinstance(self.metrics, Metrics):  # a passive declare per owned partition: only when shown
                owned = [self.topology.partition(n) for n in self._partitions.owned]
                self.metrics.partition_lag({name: conn.message_count(name) for name in owned})
            for name in self._waiting_queues:
                self.metrics.queue_messages(name, conn.message_count(name))
            self.metrics.ordering(self._sequencer.waiting(), len(self._partitions.owned))
        self._apply_reload()

    def _report_queues(self, conn: Connection) -> None:
        """What this worker consumes, for `hookd status`: the events, the deliveries, its partitions."""
        owned = self._reported_partitions = self._partitions.owned
        if self._heartbeat is not None:
            partitions = [self.topology.partition(n) for n in sorted(owned)]
            self._heartbeat.connected(conn.node, [self.topology.events, self.topology.deliveries, *partitions])

    def _store_busy(self) -> bool:
        return self._waitroom is not None and self._waitroom.pending > 0

    def _waitroom_results(self) -> None:
        if self._waitroom is not None:
            self._waitroom.finished()

    def _apply_reload(self) -> None:
        """Swap in hooks the watcher loaded, note the disables it stored (on this thread: the roster's
        one owner)."""
        loaded = self._watcher.take()
        if loaded is None:
            return
        self._roster.stored(loaded.written)
        hooks = loaded.hooks
        if hooks is None:
            return
        self._roster.replace(hooks, loaded.revision, loaded.kept)
        if self._notifier is not None:
            self._notifier.reloaded(hooks, self._roster.disabled)
        self.metrics.hooks_loaded(h.id for h in hooks)
        log.info("subscriptions.reloaded", source=self._store.describe(), hooks=len(hooks))

    def _drain(self, conn: Connection) -> None:
        """Stop consuming, let running deliveries finish within the drain timeout, return the rest."""
        running = self._engine.outstanding
        log.info("daemon.draining", running=running, timeout_s=self.settings.delivery.drain_timeout_s)
        sdnotify.stopping(f"draining {running} deliveries")
        self.health.broker_connected(False)
        self.metrics.broker_connected(False)
        if self._heartbeat is not None:
            self._heartbeat.disconnected()
        conn.cancel()
        deadline = time.monotonic() + self.settings.delivery.drain_timeout_s
        while (self._engine.busy or conn.unconfirmed or self._store_busy()) and time.monotonic() < deadline:
            conn.poll(0.05)
            self._consumer.settle_finished()
            self._waitroom_results()
            self._watchdog.tick()
        self._consumer.settle_finished()
        self._abandon()  # queued but unstarted deliveries' messages are requeued by the broker
