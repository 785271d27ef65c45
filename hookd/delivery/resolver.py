"""Name resolution for new connections, on threads of its own: `getaddrinfo` blocks and cannot be cancelled.

Each lookup runs the network policy's check (`AddressCheck`: resolve once, judge every address) on
a `dns-N` thread; the engine's loop awaits it under the attempt's deadline. Only new connections to
a named host resolve: a kept-alive connection is reused without a lookup and an IP literal needs
none, so lookups are rare next to attempts.

Size, `DNS_THREADS` = 8, and why it can be small: concurrent lookups of the same host, port and
policy share one (single flight), so a thread is held per distinct host being resolved, never per
attempt. What a small pool must survive is a host whose nameserver never answers (an account admin
can arrange one): its lookup holds one thread for glibc's whole timeout (5 s per try and server),
while every attempt to that host waits on it under its own deadline. Eight threads leave seven for
every other host meanwhile, each lookup taking about a millisecond from a local or cached resolver;
a lookup that finds every thread busy waits its turn, under its attempt's deadline. The earlier 32
was sized per attempt, before lookups were shared.

Threads: started on first need (a daemon that delivers to IP literals starts none), daemon threads
(a lookup stuck in `getaddrinfo` never holds up the process's exit), stopped by `close()`, which
joins them for a bounded time. The waiting lookups (`_flights`) belong to the loop's thread; the job
queue is the only thing the two sides share, and it is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time

from hookd.netpolicy import AddressCheck

DNS_THREADS = 8
_Key = tuple[str, int, bool]
_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[list[str]], _Key]


class Resolver:
    """`addresses(host, port, allow_private)` on the loop, run by the policy's check on `dns-N` threads."""

    def __init__(self, check: AddressCheck, *, threads: int = DNS_THREADS) -> None:
        self._check = check
        self._max_threads = threads
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []  # started and stopped by the loop's thread (or `close`)
        self._busy = 0  # threads running a lookup; under `_lock`
        self._lock = threading.Lock()
        self._flights: dict[_Key, asyncio.Future[list[str]]] = {}  # the loop's: lookups under way
        self._closed = False

    async def addresses(self, host: str, port: int, allow_private: bool) -> list[str]:
        """The addresses the policy allows for `host`; `BlockedDestination` or `OSError` as the check raises."""
        if self._closed:
            raise OSError("the resolver is closed")
        key = (host, port, allow_private)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.get_running_loop().create_future()
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
            self._start(flight, key)
        return await asyncio.shield(flight)  # one waiter's deadline does not cancel the others' lookup

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the threads: each finishes the lookup it is in (if any), drops its answer and exits;
        joined for up to `timeout_s` in all (a thread stuck in getaddrinfo is a daemon and does not
        hold up exit). Call it before the loop is closed: from then on no thread touches the loop."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def threads(self) -> int:
        """How many `dns-N` threads are alive."""
        with self._lock:
            return sum(1 for thread in self._threads if thread.is_alive())

    def _landed(self, key: _Key, flight: asyncio.Future[list[str]]) -> None:
        self._flights.pop(key, None)
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have gone (their deadlines) before it landed

    def _start(self, flight: asyncio.Future[list[str]], key: _Key) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            idle = len(self._threads) - self._busy
            if idle <= 0 and len(self._threads) < self._max_threads:
                thread = threading.Thread(target=self._run, name=f"dns-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put((loop, flight, key))

    def _run(self) -> None:
        """A `dns-N` thread: take lookups until told to stop; hand each result back to its loop."""
        while (job := self._jobs.get()) is not None:
            loop, flight, (host, port, allow_private) = job
            with self._lock:
                self._busy += 1
            try:
                result: list[str] | BaseException = self._check(host, port, allow_private)
            except Exception as exc:  # BlockedDestination, OSError, or a bug: the awaiting attempt reports it
                result = exc
            finally:
                with self._lock:
                    self._busy -= 1
            self._hand_back(loop, flight, result)

    def _hand_back(
        self, loop: asyncio.AbstractEventLoop, flight: asyncio.Future[list[str]], result: list[str] | BaseException
    ) -> None:
        """Give the loop its answer, unless the resolver was closed: after `close()` returns, no thread
        touches the loop again (uvloop's loop must not be woken from a thread while it is being closed)."""
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for this answer
                loop.call_soon_threadsafe(_settle, flight, result)


def _settle(flight: asyncio.Future[list[str]], result: list[str] | BaseException) -> None:
    if flight.done():
        return
    if isinstance(result, BaseException):
        flight.set_exception(result)
    else:
        flight.set_result(result)
