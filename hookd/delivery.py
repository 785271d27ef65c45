"""One HTTP delivery attempt: request building, network policy, deadline, outcome classification.

This is the only module that imports requests (and its transport, urllib3). Each delivery thread
keeps its own `requests.Session` with keep-alive pools per receiving host; environment proxies are
ignored and redirects never followed. Two things are added under requests:
- a guarded connection that resolves the host once, checks every address against the network
  policy and connects to an address it checked (no second lookup, so DNS rebinding cannot slip an
  internal address in; TLS still verifies the hostname);
- a wall-clock deadline per attempt (`deadline.Watchdog`), because requests' timeouts bound each
  read, not the whole response.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from hookd import __version__
from hookd.deadline import Watch, Watchdog
from hookd.errors import BlockedDestination
from hookd.retry import Attempt, Verdict, classify, parse_retry_after
from hookd.signing import signature_headers
from hookd.subscriptions.model import Hook

USER_AGENT = f"hookd/{__version__}"
#: Checks a host before connecting: returns the addresses that may be used, raises
#: `BlockedDestination` (policy) or `OSError` (resolution). None: no policy, resolve normally.
AddressCheck = Callable[[str, int, Hook], list[str]]
_PERMANENT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


@dataclass(frozen=True, slots=True)
class Notification:
    """What is sent to one hook for one event; identical on every attempt except the attempt number."""

    event: str
    event_id: str
    account_id: str
    delivery_id: str
    body: bytes
    secrets: tuple[str, ...]  # current first, then those still valid during a rotation overlap


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
            addresses = check(self._dns_host, self.port, hook)
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
        _bind(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: bind it to this attempt
            _bind(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _bind(sock: socket.socket | None) -> None:
    if _current.watch is not None and _current.watchdog is not None:
        _current.watchdog.bind(_current.watch, sock)


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class Sender:
    """Makes delivery attempts; safe to share between threads (sessions are per thread)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        address_check: AddressCheck | None = None,
        pool_size: int = 16,
        excerpt_bytes: int = 1024,
        max_response_bytes: int = 16_384,
        retry_after_max_s: float = 3600.0,
    ) -> None:
        self._timeout_s = timeout_s
        self._check = address_check
        self._pool_size = pool_size
        self._excerpt_bytes = excerpt_bytes
        self._max_response_bytes = max_response_bytes
        self._retry_after_max_s = retry_after_max_s
        self._local = threading.local()
        self._watchdog = Watchdog()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or netrc credentials from the environment
            adapter = _GuardedAdapter(pool_connections=self._pool_size, pool_maxsize=self._pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def attempt(self, hook: Hook, note: Notification, number: int) -> Attempt:
        """Make attempt `number` of `note` to `hook` within the deadline; never raises for network or HTTP
        problems: every outcome is an `Attempt`."""
        started = time.monotonic()
        watch = self._watchdog.arm(self._timeout_s)
        _current.watch, _current.hook, _current.check, _current.watchdog = watch, hook, self._check, self._watchdog
        try:
            return self._post(hook, note, number, watch, started)
        finally:
            _current.watch = _current.hook = _current.check = None
            self._watchdog.disarm(watch)

    def _post(self, hook: Hook, note: Notification, number: int, watch: Watch, started: float) -> Attempt:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hook-Event": note.event,
            "X-Hook-ID": hook.id,
            "X-Hook-Delivery": note.delivery_id,
            "X-Hook-Attempt": str(number),
            # X-Hook-Signature (current secret) and the Standard Webhooks headers, timestamped per attempt
            **signature_headers(note.secrets, note.delivery_id, note.body),
        }
        auth = (hook.basic_auth.username, hook.basic_auth.password) if hook.basic_auth else None
        try:
            response = self._session().post(
                hook.url,
                data=note.body,
                headers=headers,
                auth=auth,
                timeout=(self._timeout_s, self._timeout_s),
                allow_redirects=False,
                verify=not hook.insecure_ssl,
                stream=True,
            )
            try:
                head = self._read_capped(response, watch)
                self._watchdog.disarm(watch)  # before the connection returns to the pool
            finally:
                response.close()
        except BlockedDestination as exc:
            return Attempt(number, Verdict.BLOCKED, time.monotonic() - started, error=str(exc))
        except _PERMANENT_ERRORS as exc:
            return Attempt(number, Verdict.PERMANENT, time.monotonic() - started, error=_describe(exc))
        except requests.RequestException as exc:
            error = f"timeout: deadline of {self._timeout_s:g} s exceeded" if watch.fired else _describe(exc)
            return Attempt(number, Verdict.RETRYABLE, time.monotonic() - started, error=error)
        elapsed = time.monotonic() - started
        status = response.status_code
        verdict = classify(status)
        location = response.headers.get("Location")
        if 300 <= status < 400 and location and self._check is not None:
            # Never followed; but a redirect to an internal address is an SSRF attempt, reported as such.
            try:
                target = urlsplit(urljoin(hook.url, location))
                self._check(target.hostname or "", target.port or (443 if target.scheme == "https" else 80), hook)
            except BlockedDestination as exc:
                return Attempt(number, Verdict.BLOCKED, elapsed, status=status, error=f"redirect: {exc}")
            except (OSError, ValueError):
                pass
        retry_after: float | None = None
        if status in (429, 503):
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), now=datetime.now(UTC), maximum_s=self._retry_after_max_s
            )
        excerpt = head[: self._excerpt_bytes].decode("utf-8", "replace") if self._excerpt_bytes else None
        problem = None if verdict is Verdict.DELIVERED else f"HTTP {status}"
        return Attempt(
            number, verdict, elapsed, status=status, error=problem, excerpt=excerpt, retry_after_s=retry_after
        )

    def _read_capped(self, response: requests.Response, watch: Watch) -> bytes:
        """Read at most the cap before the deadline; a body read to its end keeps the connection alive.

        The status line and headers are what matter; past the deadline or the cap the rest is dropped
        (the connection is closed instead of reused).
        """
        data = bytearray()
        try:
            for chunk in response.iter_content(chunk_size=4096):
                data += chunk
                if len(data) > self._max_response_bytes or time.monotonic() >= watch.deadline:
                    break
        except requests.RequestException:
            if watch.fired:
                return bytes(data)  # the response arrived; its body was cut at the deadline
            raise
        return bytes(data)


def _describe(exc: BaseException) -> str:
    kind = "timeout" if isinstance(exc, requests.Timeout) else type(exc).__name__
    return f"{kind}: {str(exc)[:300]}"
