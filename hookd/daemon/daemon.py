"""The daemon: consume events, fan out to matching hooks on a delivery pool, settle, ack.

Threads: the main thread owns the broker connection (consume, publish with confirms, ack) and never
sleeps on it; `delivery.workers` threads make HTTP attempts and hand results back through a queue,
waking the main thread with `add_callback_threadsafe`. An event is acked only once every matching
hook's delivery succeeded, or was handed to a retry queue or dead-lettered and the broker confirmed
it (publishes are pipelined: the ack waits for the confirm, the main thread does not), so a crash at
any point loses nothing (at worst an in-flight delivery is repeated with the same delivery id).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from types import FrameType
from typing import Any

from hookd import logs, sdnotify
from hookd.broker import BrokerConnection, Incoming, Outgoing, connect, topology_for
from hookd.config import Settings, redact_url
from hookd.daemon.breaker import Breakers
from hookd.daemon.lanes import Admission, Lanes
from hookd.daemon.pool import DeliveryPool
from hookd.daemon.recorder import Recorder
from hookd.daemon.settlement import Job, Settler
from hookd.delivery import Sender
from hookd.errors import BrokerError, ConfigError, EventError, StoreError
from hookd.events import PING, decode
from hookd.messages import Target, delivery_id, parse_target
from hookd.metrics import Metrics, MetricsServer, daemon_health, recorder_for
from hookd.netpolicy import NetworkPolicy
from hookd.retry import (
    HOOK_DISABLED,
    HOOK_INACTIVE,
    HOOK_NOT_FOUND,
    Verdict,
)
from hookd.state.history import HistoryWriter
from hookd.subscriptions.matching import HookSet
from hookd.subscriptions.model import Hook
from hookd.subscriptions.store import SubscriptionStore

log = logs.get_logger("hookd.daemon.daemon")
_POLL_S = 0.25
_PRESSURE_WAIT_S = 0.25  # with the prefetch window full, a hook silent this long is holding it up


class Daemon:
    """`hookd run`: one process, one broker connection, a pool of delivery threads."""

    def __init__(
        self,
        settings: Settings,
        store: SubscriptionStore,
        sender: Sender | None = None,
        history: HistoryWriter | None = None,
    ) -> None:
        self.settings = settings
        self.topology = topology_for(settings)
        self._store = store
        self._hooks: HookSet = store.load()
        _mask_secrets(self._hooks)
        self._revision = _revision_of(store)
        self._reload_lock = threading.Lock()
        self._history = history
        self.metrics = recorder_for(settings.metrics.listen)
        self.metrics.hooks_loaded(h.id for h in self._hooks)
        self._record = Recorder(history, self.metrics)
        self._watchdog = sdnotify.Watchdog.from_environment()
        self._ready = False
        self._lag_due = 0.0
        delivery = settings.delivery
        policy = NetworkPolicy.from_settings(delivery)
        self._sender = sender or Sender(
            timeout_s=delivery.timeout_s,
            address_check=policy.address_check(),
            pool_size=delivery.workers,
            excerpt_bytes=settings.state.response_excerpt_bytes,
            max_response_bytes=delivery.max_response_bytes,
            retry_after_max_s=delivery.retry_after_max_s,
        )
        self._breakers = Breakers(
            threshold=delivery.breaker_threshold,
            cooldown_s=delivery.breaker_cooldown_s,
            disable_after_s=delivery.disable_after_s,
        )
        self._lanes: Lanes[Job] = Lanes(delivery.per_hook_concurrency, delivery.per_hook_backlog)
        self._stop = threading.Event()
        self._pool = DeliveryPool(
            delivery,
            sender=self._sender,
            record=self._record,
            breakers=self._breakers,
            metrics=self.metrics,
            stop=self._stop,
            current=lambda: self._conn,
            on_results=self._settle_done,
        )
        self._settler = Settler(
            delivery,
            self.topology,
            settings.prefetch,
            metrics=self.metrics,
            record=self._record,
            breakers=self._breakers,
            store=store,
        )
        # A hook that finished nothing for a tenth of the attempt deadline (0.5-2 s) while work waited
        # behind it is stuck: its waiting work is parked, long enough not to churn the broker.
        self._backlog_wait_s = max(0.5, min(delivery.timeout_s / 10, 2.0))
        self._slow_park_s = max(5.0, 5 * delivery.timeout_s)
        self._reload = threading.Event()
        self._conn: BrokerConnection | None = None
        self._signals = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda _s, _f: self._reload.set())

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("daemon.stop_forced", signal=signal.Signals(signum).name)
            logs.flush()
            os._exit(1)
        self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def run(self) -> int:
        """Serve until asked to stop; reconnect on broker failures; exit code 0 after a clean drain."""
        log.info(
            "daemon.start",
            broker=redact_url(self.settings.broker.url),
            queue_prefix=self.topology.prefix,
            subscriptions=self._store.describe(),
            hooks=len(self._hooks),
            workers=self.settings.delivery.workers,
        )
        self._pool.start()
        if self._revision is not None:
            threading.Thread(target=self._watch_store, name="store-watcher", daemon=True).start()
        if self._history is not None:
            self._history.start()
        server: MetricsServer | None = None
        if isinstance(self.metrics, Metrics):
            server = self.metrics.start_server(self.settings.metrics.listen, daemon_health(self.metrics, self._store))
        failures = 0
        while not self._stop.is_set():
            try:
                self._watchdog.tick()
                self._conn = connect(self.settings, name="hookd worker")
                self._conn.start_pipelining()
                self._pool.reconnected()
                self.metrics.broker_connected(True)
                if not self._ready:
                    self._ready = True
                    sdnotify.ready(f"consuming from {self.topology.events}")
                else:
                    sdnotify.status(f"consuming from {self.topology.events}")
                self._settler.reset()
                self._lanes = Lanes(
                    self.settings.delivery.per_hook_concurrency, self.settings.delivery.per_hook_backlog
                )
                log.info("broker.connected", queues=[self.topology.events, self.topology.deliveries])
                failures = 0
                self._serve(self._conn)
            except BrokerError as exc:
                failures += 1
                delay = min(self.settings.broker.reconnect_max_s, 0.5 * 2 ** min(failures, 10))
                delay = random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not cryptography)
                log.warning("broker.disconnected", error=str(exc), retry_in_s=round(delay, 2))
                self.metrics.broker_connected(False)
                sdnotify.status(f"broker unreachable, reconnecting in {delay:.1f} s")
                self._abandon()
                deadline = time.monotonic() + delay
                while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                    self._watchdog.tick()
                    self._stop.wait(self._watchdog.max_wait_s(left))
        if server is not None:
            server.close()
        if self._history is not None:
            self._history.close()
        log.info("daemon.stop")
        return 0

    def _abandon(self) -> None:
        """Forget the dead connection: its unacked messages are back on the broker already."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _serve(self, conn: BrokerConnection) -> None:
        conn.consume([self.topology.events, self.topology.deliveries], self.settings.prefetch, self._on_message)
        while not self._stop.is_set():
            conn.poll(_POLL_S)
            self._settle_done()
            for job in self._lanes.take_stale(self._backlog_wait_s):
                if job.work.conn is conn:
                    self._settler.park(job, self._slow_park_s, "slow_hook")
            if self._settler.window_full():
                # Nothing more comes until something settles: work queued behind a hook that has not
                # answered for a moment is parked briefly (as with a full backlog) so the others flow.
                for job in self._lanes.take_stale(_PRESSURE_WAIT_S):
                    if job.work.conn is conn:
                        self._settler.park(job, 1.0, "backlog")
            self._watchdog.tick()
            if time.monotonic() >= self._lag_due:
                self._lag_due = time.monotonic() + 5.0
                for name in (self.topology.events, self.topology.deliveries):
                    self.metrics.consumer_lag(name, conn.message_count(name))
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
        self._drain(conn)

    def _drain(self, conn: BrokerConnection) -> None:
        """Stop consuming, let running deliveries finish within the drain timeout, return the rest."""
        running = self._pool.running
        log.info("daemon.draining", running=running, timeout_s=self.settings.delivery.drain_timeout_s)
        sdnotify.stopping(f"draining {running} deliveries")
        self.metrics.broker_connected(False)
        conn.cancel()
        deadline = time.monotonic() + self.settings.delivery.drain_timeout_s
        while (self._pool.busy or conn.unconfirmed) and time.monotonic() < deadline:
            conn.poll(0.05)
            self._settle_done()
            self._watchdog.tick()
        self._settle_done()
        self._abandon()  # queued but unstarted deliveries' messages are requeued by the broker

    def reload(self) -> None:
        """Swap in a fresh hook set; a broken source keeps the last good one and says why."""
        with self._reload_lock:
            try:
                hooks = self._store.load()
            except (ConfigError, StoreError) as exc:
                problems = list(getattr(exc, "problems", ())) or [str(exc)]
                log.error("subscriptions.reload_failed", source=self._store.describe(), problems=problems)
                return
            self.metrics.hooks_loaded(h.id for h in hooks)
            _mask_secrets(hooks)
            self._hooks = hooks  # one reference swap: readers see the old set or the new one
            persisted = self._revision is not None
            for hook_id in list(self._settler.disabled):
                hook = hooks.get(hook_id)
                # A database store now says inactive (it governs from here); a file was reloaded by
                # its operator, who decides again.
                if hook is None or not hook.active or not persisted:
                    self._settler.disabled.pop(hook_id, None)
        log.info("subscriptions.reloaded", source=self._store.describe(), hooks=len(hooks))

    def _watch_store(self) -> None:
        """Poll the store's change revision; reload on change. An outage keeps the last good hooks."""
        revision_of = getattr(self._store, "revision", None)
        assert revision_of is not None
        outage = False
        while not self._stop.wait(self.settings.subscriptions.poll_interval_s):
            try:
                revision = revision_of()
            except StoreError as exc:
                if not outage:
                    log.error("subscriptions.unavailable", source=self._store.describe(), error=str(exc))
                outage = True
                continue
            if outage:
                log.info("subscriptions.available", source=self._store.describe())
                outage = False
            if revision != self._revision:
                self._revision = revision
                self.reload()

    # -- consuming (main thread) -----------------------------------------------------------------
    def _on_message(self, msg: Incoming) -> None:
        # pika keeps dispatching while messages arrive, and parking or acking frees prefetch slots for
        # more: settle finished deliveries here too, or a steady stream would starve them.
        self._settle_done()
        conn = self._conn
        assert conn is not None
        if msg.queue == self.topology.events:
            self._on_event(conn, msg)
        else:
            self._on_targeted(conn, msg)

    def _on_event(self, conn: BrokerConnection, msg: Incoming) -> None:
        try:
            event = decode(
                msg.routing_key,
                msg.body,
                msg.message_id,
                msg.headers,
                max_bytes=self.settings.broker.max_message_bytes,
                timestamp=msg.timestamp,
            )
        except EventError as exc:
            self._park_invalid(conn, msg, exc)
            return
        hooks = self._hooks.match(event.name, event.account_id)
        if self._settler.disabled:
            hooks = [h for h in hooks if h.id not in self._settler.disabled]
        log.debug(
            "event.received", _event=event.name, event_id=event.event_id, account_id=event.account_id, hooks=len(hooks)
        )
        if not hooks:
            conn.ack(msg.delivery_tag)
            return
        work = self._settler.hold(conn, msg, len(hooks))
        for hook in hooks:
            target = Target(
                hook_id=hook.id,
                event=event.name,
                event_id=event.event_id,
                account_id=event.account_id,
                delivery_id=delivery_id(event.event_id, hook.id),
                attempts=0,
                retries=0,
            )
            self._submit(Job(work, hook, target, msg.body))

    def _on_targeted(self, conn: BrokerConnection, msg: Incoming) -> None:
        try:
            target = parse_target(msg.headers, msg.message_id)
        except EventError as exc:
            self._park_invalid(conn, msg, exc)
            return
        hook = self._hooks.get(target.hook_id)
        job = Job(self._settler.hold(conn, msg, 1), hook or _absent(target), target, msg.body)
        if hook is None or (not hook.active and target.event != PING):
            self._settler.finish(job, None, HOOK_NOT_FOUND if hook is None else HOOK_INACTIVE)
            return
        self._submit(job)

    def _park_invalid(self, conn: BrokerConnection, msg: Incoming, exc: EventError) -> None:
        headers: dict[str, Any] = dict(msg.headers)
        headers.update(
            {"reason": exc.reason, "error": exc.detail[:500], "routing_key": msg.routing_key, "queue": msg.queue}
        )
        tag = msg.delivery_tag
        conn.publish_pipelined(
            Outgoing(self.topology.invalid, msg.body, headers, msg.message_id, msg.timestamp), lambda: conn.ack(tag)
        )
        log.error(
            "event.invalid",
            reason=exc.reason,
            error=exc.detail,
            routing_key=msg.routing_key[:100],
            message_id=msg.message_id,
            parked_in=self.topology.invalid,
        )

    def _submit(self, job: Job) -> None:
        """Start a delivery, or hold it: disabled hook, open circuit, or its lane full."""
        hook_id = job.hook.id
        if hook_id in self._settler.disabled:
            self._settler.finish(job, None, HOOK_DISABLED)
            return
        decision, change = self._breakers.allow(hook_id)
        if change is not None:
            self._record.breaker(hook_id, change)
        if not decision.allow:
            self._settler.park(job, decision.wait_s, "breaker_open")
            return
        admission = self._lanes.admit(hook_id, job, self._backlog_wait_s)
        if admission is Admission.RUN:
            job.lanes = self._lanes
            self._pool.submit(job)
        elif admission is Admission.STUCK:  # what take_stale would park a moment later anyway
            self._settler.park(job, self._slow_park_s, "slow_hook")
        elif admission is Admission.FULL:
            self._settler.park(job, 1.0, "backlog")

    # -- settling (main thread) ------------------------------------------------------------------
    def _settle_done(self) -> None:
        for job, last in self._pool.finished():
            if last is not None and job.work.conn is self._conn:  # else the broker redelivers it
                self._settler.settle(job, last)
            if job.lanes is not None:  # its slot is free: the next delivery waiting for this hook goes
                answered = last is not None and (last.verdict is not Verdict.RETRYABLE or last.status is not None)
                following = job.lanes.release(job.hook.id, answered=answered)
                if following is not None and following.work.conn is self._conn:
                    self._submit(following)


def _mask_secrets(hooks: HookSet) -> None:
    """Every spelling of every hook's credentials is masked in log lines from now on."""
    logs.register_secrets(value for hook in hooks for value in hook.sensitive_values())


def _absent(target: Target) -> Hook:
    """A stand-in for a hook that no longer exists, so its delivery can be dead-lettered like any other."""
    return Hook(id=target.hook_id, account_id=target.account_id, url="", events=(), secret="")


def _revision_of(store: SubscriptionStore) -> int | None:
    """The store's change revision if it has one (databases); None for sources reloaded by SIGHUP."""
    revision = getattr(store, "revision", None)
    return int(revision()) if callable(revision) else None
