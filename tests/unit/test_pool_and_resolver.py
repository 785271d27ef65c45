"""delivery.pool (how long a connection may idle, Keep-Alive honoured) and delivery.resolver (the dns
threads: one lookup per host at a time, a stuck lookup holding one thread only, closed on request)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from hookd.delivery.http import Connection, keep_alive_timeout
from hookd.delivery.pool import DEFAULT_IDLE_S, Pool, idle_limit
from hookd.delivery.resolver import DNS_THREADS, Resolver


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("timeout=5", 5.0), ("timeout=5, max=100", 5.0), ("max=3, Timeout = 2", 2.0), ("max=3", None), ("timeout=x", None),
     ("timeout=99999999", None), ("", None), (None, None)],
)  # fmt: skip
def test_keep_alive_timeout_reads_the_header(header: str | None, seconds: float | None) -> None:
    """`Keep-Alive: timeout=N` gives N seconds; anything unreadable gives None (the default applies)."""
    assert keep_alive_timeout(header) == seconds


@pytest.mark.parametrize(
    ("announced", "limit"), [(None, DEFAULT_IDLE_S), (0, 0.0), (1, 0.5), (2, 1.0), (5, 4.0), (75, 4.0)]
)
def test_idle_limit_keeps_a_margin_under_what_the_server_announced(announced: float | None, limit: float) -> None:
    """A connection idles at most 4 s, and less than the server's own `Keep-Alive: timeout`."""
    assert idle_limit(announced) == limit


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _conn(keep_alive_s: float | None = None) -> Connection:
    conn = Connection(64)
    conn.keep_alive_s = keep_alive_s
    return conn


def test_a_pooled_connection_is_taken_only_within_its_idle_limit() -> None:
    """Within its limit a connection is reused; past it, it is closed instead of being handed out."""
    clock = _Clock()
    pool = Pool(max_idle_per_key=4, clock=clock)
    short, default = _conn(keep_alive_s=1), _conn()
    pool.give("a", short)
    pool.give("b", default)
    clock.now += 0.6
    assert pool.take("a") is None and short.closed
    assert pool.take("b") is default and pool.reused == 1


def test_sweep_closes_only_what_is_past_its_limit() -> None:
    """sweep() closes expired connections whatever their order in the pool, and keeps the others."""
    clock = _Clock()
    pool = Pool(max_idle_per_key=4, clock=clock)
    late, early = _conn(), _conn(keep_alive_s=2)
    pool.give("a", late)
    pool.give("a", early)
    clock.now += 1.5
    pool.sweep()
    assert early.closed and not late.closed and pool.idle == 1


def test_a_full_key_or_a_zero_limit_closes_instead_of_keeping() -> None:
    """Past max_idle_per_key, or with `Keep-Alive: timeout=0`, a connection is closed, not pooled."""
    pool = Pool(max_idle_per_key=1, clock=_Clock())
    first, second, none = _conn(), _conn(), _conn(keep_alive_s=0)
    pool.give("a", first)
    pool.give("a", second)
    pool.give("b", none)
    assert (first.closed, second.closed, none.closed, pool.idle) == (False, True, True, 1)


# -- the resolver ---------------------------------------------------------------------------------------------
class _Dns:
    """A check that counts calls per host; the host `stuck` blocks until released."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.release = threading.Event()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, host: str, _port: int, _allow_private: bool) -> list[str]:
        with self._lock:
            self.calls[host] = self.calls.get(host, 0) + 1
        if host == "stuck.example":
            self.entered.set()
            self.release.wait(30)
        if host == "missing.example":
            raise OSError("no such host")
        return ["192.0.2.1"]


@pytest.fixture
def dns() -> Iterator[_Dns]:
    made = _Dns()
    yield made
    made.release.set()


def test_lookups_of_one_host_share_one_and_a_stuck_host_holds_one_thread(dns: _Dns) -> None:
    """Fifty attempts to a stuck host make one lookup on one thread; other hosts resolve meanwhile."""
    resolver = Resolver(dns)

    async def scenario() -> list[str]:
        stuck = [asyncio.ensure_future(resolver.addresses("stuck.example", 443, False)) for _ in range(50)]
        await asyncio.to_thread(dns.entered.wait, 30)
        others = await asyncio.gather(*(resolver.addresses(f"h{i}.example", 443, False) for i in range(20)))
        assert not any(task.done() for task in stuck)
        dns.release.set()
        assert all(found == ["192.0.2.1"] for found in await asyncio.gather(*stuck))
        return [address for found in others for address in found]

    try:
        assert asyncio.run(scenario()) == ["192.0.2.1"] * 20
        assert dns.calls["stuck.example"] == 1
        assert 2 <= resolver.threads <= DNS_THREADS
    finally:
        resolver.close()
    assert resolver.threads == 0


def test_a_lookup_cut_by_its_deadline_leaves_the_others_waiting(dns: _Dns) -> None:
    """One waiter's cancellation (its deadline) does not cancel the shared lookup for the others."""
    resolver = Resolver(dns)

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(resolver.addresses("stuck.example", 80, False))
        second = asyncio.ensure_future(resolver.addresses("stuck.example", 80, False))
        await asyncio.to_thread(dns.entered.wait, 30)
        first.cancel()
        dns.release.set()
        return await second

    try:
        assert asyncio.run(scenario()) == ["192.0.2.1"]
    finally:
        resolver.close()


def test_a_failed_lookup_raises_its_error_and_a_closed_resolver_refuses(dns: _Dns) -> None:
    """The check's error reaches the attempt; after close() a lookup fails at once, as OSError."""
    resolver = Resolver(dns)
    with pytest.raises(OSError, match="no such host"):
        asyncio.run(resolver.addresses("missing.example", 80, False))
    resolver.close()
    with pytest.raises(OSError, match="closed"):
        asyncio.run(resolver.addresses("h.example", 80, False))
