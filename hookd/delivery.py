"""One HTTP delivery attempt: request building, network policy, deadline, outcome classification.

This is the only module that does HTTP. It drives urllib3 (the transport under requests) directly:
profiling at 1,000 deliveries/s put a third of the delivery threads' GIL time in requests' own
request preparation and settings merging, none of which hookd needs (one method, bytes bodies,
no cookies, no proxies, no redirects). One shared pool manager keeps keep-alive connections per
receiving host (and TLS setting). Environment proxies are never used and redirects never followed.
Two things are added under urllib3:
- a guarded connection that resolves the host once, checks every address against the network
  policy and connects to an address it checked (no second lookup, so DNS rebinding cannot slip an
  internal address in; TLS still verifies the hostname);
- a wall-clock deadline per attempt (`deadline.Watchdog`), because socket timeouts bound each read,
  not the whole response.
TLS trusts the system's certificate store (or `ca_certs`).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from urllib3 import HTTPHeaderDict, PoolManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    HTTPError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util import make_headers, parse_url

from hookd import __version__
from hookd.config import Settings
from hookd.deadline import Watch, Watchdog
from hookd.errors import BlockedDestination
from hookd.messages import Delivery
from hookd.netpolicy import AddressCheck, NetworkPolicy
from hookd.outcomes import Verdict
from hookd.retry import Attempt, classify, parse_retry_after
from hookd.signing import signature_headers
from hookd.subscriptions.model import Hook

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

USER_AGENT = f"hookd/{__version__}"


class _Current(threading.local):
    """The attempt running on this thread, for the connection classes below."""

    watch: Watch | None = None
    hook: Hook | None = None
    check: AddressCheck | None = None
    watchdog: Watchdog | None = None


_current = _Current()


class _GuardedMixin:
    """Connect only to checked addresses, and bind the socket to the running attempt's deadline."""

    _dns_host: str
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        check, hook = _current.check, _current.hook
        if check is None or hook is None:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        try:
            addresses = check(self._dns_host, self.port, hook.allow_private)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except OSError as exc:
            raise NewConnectionError(self, f"cannot resolve: {exc}") from exc  # type: ignore[arg-type]
        failure: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((address, self.port), self.timeout, self.source_address)
            except OSError as exc:
                failure = exc
                continue
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {failure}")  # type: ignore[arg-type]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _bind(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: bind it to this attempt
            _bind(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _bind(conn: _GuardedMixin) -> None:
    if _current.watch is not None and _current.watchdog is not None:
        _current.watchdog.bind(_current.watch, conn)


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _validate_conn(self, conn: BaseHTTPConnection) -> None:
        """urllib3's own check minus its `InsecureRequestWarning`: an unverified connection here is one
        an operator asked for (`insecure_ssl`); `hookd hooks show` and the resource say so instead of a
        warning on every request, and no process-wide warnings filter is needed."""
        HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


@dataclass(frozen=True, slots=True)
class _Route:
    """A hook URL taken apart once: which pool serves it and what goes on the request line."""

    scheme: str
    host: str
    port: int
    path: str


class Sender:
    """Makes delivery attempts; safe to share between threads (one pool manager for all of them)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        address_check: AddressCheck | None = None,
        pool_size: int = 16,
        excerpt_bytes: int = 1024,
        max_response_bytes: int = 16_384,
        retry_after_max_s: float = 3600.0,
        ca_certs: str | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._check = address_check
        self._excerpt_bytes = excerpt_bytes
        self._max_response_bytes = max_response_bytes
        self._retry_after_max_s = retry_after_max_s
        self._timeout = Timeout(connect=timeout_s, read=timeout_s)
        # pool_size connections kept alive per host: as many as threads that may post to it at once.
        # A connection was checked against the policy of the hook that opened it, so hooks allowed
        # private addresses never share connections with hooks that are not.
        self._pools = {private: self._pool_manager(pool_size, ca_certs) for private in (False, True)}
        self._insecure = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
        self._routes: dict[str, _Route] = {}
        self._routes_lock = threading.Lock()
        self._watchdog = Watchdog()

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        """The daemon's sender: the attempt deadline, limits and network policy of `settings`."""
        delivery = settings.delivery
        return cls(
            timeout_s=delivery.timeout_s,
            address_check=NetworkPolicy.from_settings(delivery).address_check(),
            pool_size=delivery.workers,
            excerpt_bytes=settings.state.response_excerpt_bytes,
            max_response_bytes=delivery.max_response_bytes,
            retry_after_max_s=delivery.retry_after_max_s,
        )

    @staticmethod
    def _pool_manager(pool_size: int, ca_certs: str | None) -> PoolManager:
        pools = PoolManager(num_pools=512, maxsize=pool_size, block=False, retries=False, ca_certs=ca_certs)
        pools.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}
        return pools

    def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt:
        """Make attempt `number` of `delivery` to `hook` within the deadline; never raises for network or HTTP
        problems: every outcome is an `Attempt`."""
        started = time.monotonic()
        watch = self._watchdog.arm(self._timeout_s)
        _current.watch, _current.hook, _current.check, _current.watchdog = watch, hook, self._check, self._watchdog
        try:
            return self._post(hook, delivery, number, watch, started)
        finally:
            _current.watch = _current.hook = _current.check = None
            self._watchdog.disarm(watch)

    def _route(self, url: str) -> _Route:
        route = self._routes.get(url)
        if route is None:
            parsed = parse_url(url)
            scheme = (parsed.scheme or "http").lower()
            if scheme not in ("http", "https") or not parsed.host:
                raise LocationParseError(url)
            route = _Route(scheme, parsed.host, parsed.port or (443 if scheme == "https" else 80), parsed.request_uri)
            with self._routes_lock:
                if len(self._routes) >= 4096:  # hooks come and go: forget them all now and then
                    self._routes.clear()
                self._routes[url] = route
        return route

    def _post(self, hook: Hook, delivery: Delivery, number: int, watch: Watch, started: float) -> Attempt:
        try:
            status, headers, head, cut = self._exchange(hook, delivery, number, watch)
        except BlockedDestination as exc:
            return Attempt(number, Verdict.BLOCKED, time.monotonic() - started, error=str(exc))
        except (LocationParseError, ValueError) as exc:  # a URL or header value no request can carry
            return Attempt(number, Verdict.PERMANENT, time.monotonic() - started, error=_describe(exc))
        except (HTTPError, OSError) as exc:
            error = f"timeout: deadline of {self._timeout_s:g} s exceeded" if watch.fired else _describe(exc)
            return Attempt(number, Verdict.RETRYABLE, time.monotonic() - started, error=error)
        elapsed = time.monotonic() - started
        verdict = classify(status)
        if (blocked := self._redirect_refusal(hook, status, headers.get("Location"))) is not None:
            return Attempt(number, Verdict.BLOCKED, elapsed, status=status, error=f"redirect: {blocked}")
        retry_after: float | None = None
        if status in (429, 503):
            retry_after = parse_retry_after(
                headers.get("Retry-After"), now=datetime.now(UTC), maximum_s=self._retry_after_max_s
            )
        excerpt = head[: self._excerpt_bytes].decode("utf-8", "replace") if self._excerpt_bytes else None
        problems = [] if verdict is Verdict.DELIVERED else [f"HTTP {status}"]
        if cut:  # the answer counts, but say that the receiver trickled its body past the deadline
            problems.append(f"timeout: deadline of {self._timeout_s:g} s exceeded while reading the response body")
        return Attempt(
            number,
            verdict,
            elapsed,
            status=status,
            error="; ".join(problems) or None,
            excerpt=excerpt,
            retry_after_s=retry_after,
        )

    def _exchange(
        self, hook: Hook, delivery: Delivery, number: int, watch: Watch
    ) -> tuple[int, HTTPHeaderDict, bytes, bool]:
        """POST the delivery; return the status, the headers, the start of the body and whether the
        deadline cut the body. Network and HTTP errors propagate to `_post`, which classifies them."""
        route = self._route(hook.url)
        pool = self._pools[hook.allow_private].connection_from_host(
            route.host, route.port, route.scheme, pool_kwargs=self._insecure if hook.insecure_ssl else None
        )
        response = pool.urlopen(
            "POST",
            route.path,
            body=delivery.body,
            headers=_request_headers(hook, delivery, number),
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=self._timeout,
            preload_content=False,
            decode_content=False,
        )
        try:
            head, cut = self._read_capped(response, watch)
        finally:
            if not response.closed or response.connection is not None:
                response.close()  # not read to its end: the connection cannot be reused
            response.release_conn()
        return response.status, response.headers, head, cut

    def _redirect_refusal(self, hook: Hook, status: int, location: str | None) -> str | None:
        """Redirects are never followed; but one to an address the policy refuses is an SSRF attempt,
        reported as such (`ssrf_blocked`) rather than as a plain permanent failure."""
        if not (300 <= status < 400 and location and self._check is not None):
            return None
        try:
            target = urlsplit(urljoin(hook.url, location))
            self._check(
                target.hostname or "", target.port or (443 if target.scheme == "https" else 80), hook.allow_private
            )
        except BlockedDestination as exc:
            return str(exc)
        except (OSError, ValueError):
            return None
        return None

    def _read_capped(self, response: BaseHTTPResponse, watch: Watch) -> tuple[bytes, bool]:
        """Read at most the cap before the deadline; a body read to its end keeps the connection alive.

        The status line and headers are what matter; past the deadline or the cap the rest is dropped
        (the connection is closed instead of reused). True with the data when the deadline cut it.
        """
        data = bytearray()
        try:
            while len(data) <= self._max_response_bytes:
                if time.monotonic() >= watch.deadline:
                    return bytes(data), True
                chunk = response.read(self._max_response_bytes + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        except (HTTPError, OSError):
            if watch.fired:
                return bytes(data), True  # the response arrived; its body was cut at the deadline
            raise
        return bytes(data), False


def _request_headers(hook: Hook, delivery: Delivery, number: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Hook-Event": delivery.event,
        "X-Hook-ID": hook.id,
        "X-Hook-Delivery": delivery.delivery_id,
        "X-Hook-Attempt": str(number),
        # X-Hook-Signature (current secret) and the Standard Webhooks headers, timestamped per attempt
        **signature_headers(hook.signing_secrets(), delivery.delivery_id, delivery.body),
    }
    if hook.basic_auth:
        headers.update(make_headers(basic_auth=f"{hook.basic_auth.username}:{hook.basic_auth.password}"))
    return headers


def _describe(exc: BaseException) -> str:
    kind = "timeout" if isinstance(exc, (Urllib3Timeout, TimeoutError)) else type(exc).__name__
    return f"{kind}: {str(exc)[:300]}"
