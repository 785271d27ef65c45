"""One delivery attempt: the request, the network policy, the deadline, the outcome (async).

The guarantees, each kept here:
- The URL is read by `hookd.urls`, the rules every entry applies: what is stored is what is sent
  (nothing stripped), the host goes to DNS and the `Host` header in the same ASCII form (IDNA 2008),
  and a stored URL those rules refuse (a row written before them) is a permanent failure, with the
  rule's reason in `error`, and no connection is made.
- The SSRF guard: the hook's host is resolved once (on a `dns` thread: `delivery.resolver`), every
  address is checked against the network policy, and the connection goes to a checked address;
  TLS still verifies the hook's host name. A kept-alive connection is reused only under the key it
  was opened and checked under (scheme, host, port, the hook's `allow_private`, its `insecure_ssl`).
- One wall-clock deadline (`delivery.timeout_s`) bounds the whole attempt: name resolution, TCP
  connect, the TLS handshake, sending, and reading the response.
- A response whose final status line and headers arrived complete counts, whatever its body:
  a 2xx is a delivery. When the body did not end as framed (cut by the connection, malformed,
  or cut by the deadline), the attempt's `error` says so (`body cut: ...`, `timeout: ...`).
- Only `delivery.max_response_bytes` of a response are read; redirects are never followed (one to a
  refused address is reported as `blocked`); no proxy from the environment is ever used.
- A request sent on a kept-alive connection that the receiver closed without answering a single
  byte (it closed the idle connection as we reused it: a race no idle timeout removes) is sent once
  more on a new connection, within the same attempt and deadline. The receiver may have received
  the first copy: both carry the same `X-Hook-Delivery`, which receivers dedupe on (README).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from hookd import __version__, urls
from hookd.config import Settings
from hookd.delivery.http import Connection, ProtocolError, Response
from hookd.delivery.pool import Pool
from hookd.delivery.resolver import Resolver
from hookd.errors import BlockedDestination
from hookd.messages import Delivery
from hookd.netpolicy import AddressCheck, NetworkPolicy, default_port, literal_address
from hookd.outcomes import Verdict
from hookd.retry import Attempt, classify, parse_retry_after
from hookd.signing import signature_headers
from hookd.subscriptions.model import Hook

USER_AGENT = f"hookd/{__version__}"
#: How long `close()` called from another thread waits for the running loop to close the pool.
CLOSE_WAIT_S = 5.0


def request_bytes(hook: Hook, delivery: Delivery, number: int, where: urls.HookURL) -> bytes:
    """The whole request: line, headers and body. `ValueError` for a value no header can carry."""
    return hook_head(hook, where) + attempt_head(hook, delivery, number) + delivery.body


def hook_head(hook: Hook, where: urls.HookURL) -> bytes:
    """The part of the request that is the same on every attempt to the hook: the request line and the
    Host, Content-Type, User-Agent, X-Hook-ID and Authorization headers (the sender keeps it per hook:
    measured, a third of the request's cost went into headers that never change)."""
    headers = {
        "Host": where.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Hook-ID": hook.id,
    }
    if hook.basic_auth is not None:
        pair = f"{hook.basic_auth.username}:{hook.basic_auth.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return _encode(f"POST {where.target} HTTP/1.1\r\n", headers)


def attempt_head(hook: Hook, delivery: Delivery, number: int) -> bytes:
    """The headers of this attempt (signed now, numbered, traced), and the blank line."""
    headers = {
        "X-Hook-Event": delivery.event,
        "X-Hook-Delivery": delivery.delivery_id,
        "X-Hook-Attempt": str(number),
        # X-Hook-Signature (current secret) and the Standard Webhooks headers, timestamped per attempt
        **signature_headers(hook.signing_secrets(), delivery.delivery_id, delivery.body),
        **(delivery.trace.headers() if delivery.trace is not None else {}),  # W3C traceparent: this attempt's span
        "Content-Length": str(len(delivery.body)),
    }
    return _encode("", headers) + b"\r\n"


def _encode(first: str, headers: dict[str, str]) -> bytes:
    """`first`, then one `Name: value` line per header, checked once for what would break a line."""
    text = first + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    lines = len(headers) + (1 if first else 0)  # every CR and LF is one of the line ends written here
    if "\x00" in text or text.count("\n") != lines or text.count("\r") != lines:
        bad = next(name for name, value in headers.items() if any(c in value for c in "\r\n\x00"))
        raise ValueError(f"header {bad} would carry a line break")
    return text.encode("latin-1")


_MAX_HEADS = 10_000  # hooks whose fixed head a sender keeps (emptied past it: hooks come and go)


class Sender:
    """Makes delivery attempts on the event loop that calls it (the engine's): every method but `close`
    runs on that loop's thread; `close` may be called from any thread (see there)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        address_check: AddressCheck | None = None,
        max_idle_per_host: int = 64,
        excerpt_bytes: int = 1024,
        max_response_bytes: int = 16_384,
        retry_after_max_s: float = 3600.0,
        ca_certs: str | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._check = address_check
        self._excerpt_bytes = excerpt_bytes
        self._cap = max_response_bytes
        self._retry_after_max_s = retry_after_max_s
        self._pool = Pool(max_idle_per_key=max_idle_per_host)
        self._resolver = Resolver(address_check) if address_check is not None else None
        self._tls = ssl.create_default_context(cafile=ca_certs)  # the system store (SSL_CERT_FILE/DIR honoured)
        self._tls_unverified = ssl.create_default_context(cafile=ca_certs)
        self._tls_unverified.check_hostname = False
        self._tls_unverified.verify_mode = ssl.CERT_NONE
        self._routes: dict[str, urls.HookURL] = {}
        self._heads: dict[str, tuple[Hook, urls.HookURL, bytes]] = {}  # hook id -> (hook, where, its fixed head)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop attempts run on (set by the first)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        """The daemon's sender: the attempt deadline, limits and network policy of `settings`."""
        delivery = settings.delivery
        return cls(
            timeout_s=delivery.timeout_s,
            address_check=NetworkPolicy.from_settings(delivery).address_check(),
            max_idle_per_host=max(delivery.per_hook_concurrency, delivery.max_in_flight),
            excerpt_bytes=settings.state.response_excerpt_bytes,
            max_response_bytes=delivery.max_response_bytes,
            retry_after_max_s=delivery.retry_after_max_s,
        )

    @property
    def pool(self) -> Pool:
        return self._pool

    @property
    def resolver(self) -> Resolver | None:
        return self._resolver

    def sweep(self) -> None:
        """Close keep-alive connections idle past their limit (the engine calls it now and then)."""
        self._pool.sweep()

    def close(self) -> None:
        """Close every pooled connection and stop the DNS threads. Idempotent; later attempts fail
        (retryable) without connecting.

        Safe from any thread: on the loop's own thread, or once that loop has stopped (the daemon's
        stop path, after the engine's thread returned from `run_forever`), it closes at once, and a
        stopped loop is run for one turn so the aborted transports release their sockets. From
        another thread while the loop runs, the closing is handed to the loop and waited for (at most
        `CLOSE_WAIT_S`). Call it before the loop is closed: a closed loop can no longer close its
        transports (their sockets then wait for the garbage collector), and the DNS threads stop
        touching the loop only once this returns.
        """
        self._closed = True
        loop = self._loop
        if loop is not None and loop.is_running() and not _on_loop(loop):
            done = asyncio.run_coroutine_threadsafe(self._close_pool(), loop)
            try:
                done.result(CLOSE_WAIT_S)
            except TimeoutError:
                done.cancel()
        else:
            self._pool.close()
            if loop is not None and not loop.is_running() and not loop.is_closed():
                loop.run_until_complete(asyncio.sleep(0))  # the transports' connection_lost: sockets closed
        if self._resolver is not None:
            self._resolver.close()

    async def _close_pool(self) -> None:
        self._pool.close()

    async def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt:
        """Make attempt `number` of `delivery` to `hook` within the deadline; never raises for network or
        HTTP problems: every outcome is an `Attempt`."""
        loop = self._loop = asyncio.get_running_loop()
        started = loop.time()
        conn: Connection | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                where = self._route(hook.url)
                request = self._head(hook, where) + attempt_head(hook, delivery, number) + delivery.body
                conn, key, reused = await self._connection(hook, where)
                try:
                    response = await conn.exchange(request)
                except (OSError, ProtocolError):
                    if not reused or conn.received:
                        raise
                    # A kept-alive connection the receiver closed as we reused it: once more on a new one.
                    conn, key, _ = await self._connection(hook, where, fresh=True)
                    response = await conn.exchange(request)
                self._pool.give(key, conn)
        except urls.UrlError as exc:  # a stored URL the rules refuse: never connected to
            return Attempt(number, Verdict.PERMANENT, loop.time() - started, error=str(exc))
        except BlockedDestination as exc:
            return Attempt(number, Verdict.BLOCKED, loop.time() - started, error=str(exc))
        except ssl.SSLError as exc:  # before ValueError: a certificate error is both, and is not final
            return Attempt(number, Verdict.RETRYABLE, loop.time() - started, error=_describe(exc))
        except (ValueError, UnicodeError) as exc:  # a header value no request can carry
            return Attempt(number, Verdict.PERMANENT, loop.time() - started, error=_describe(exc))
        except TimeoutError:
            if conn is None or conn.partial.status is None:
                error = f"timeout: deadline of {self._timeout_s:g} s exceeded"
                return Attempt(number, Verdict.RETRYABLE, loop.time() - started, error=error)
            response = conn.partial  # the answer arrived; the deadline cut its body
            if not conn.complete and not response.capped:
                deadline = f"timeout: deadline of {self._timeout_s:g} s exceeded while reading the response body"
                response.cut = conn.body_progress(deadline)
            conn.close()
        except (OSError, ProtocolError) as exc:
            if conn is not None:
                conn.close()
            return Attempt(number, Verdict.RETRYABLE, loop.time() - started, error=_describe(exc))
        return await self._judge(hook, number, response, loop.time() - started)

    def _head(self, hook: Hook, where: urls.HookURL) -> bytes:
        """`hook_head`, kept per hook while it is the same hook object (a reload brings new ones)."""
        cached = self._heads.get(hook.id)
        if cached is not None and cached[0] is hook and cached[1] is where:
            return cached[2]
        head = hook_head(hook, where)
        if len(self._heads) >= _MAX_HEADS:
            self._heads.clear()
        self._heads[hook.id] = (hook, where, head)
        return head

    def _route(self, url: str) -> urls.HookURL:
        found = self._routes.get(url)
        if found is None:
            found = urls.parse(url)
            if len(self._routes) >= 4096:  # hooks come and go: forget them all now and then
                self._routes.clear()
            self._routes[url] = found
        return found

    async def _connection(
        self, hook: Hook, where: urls.HookURL, *, fresh: bool = False
    ) -> tuple[Connection, tuple[object, ...], bool]:
        """A pooled connection opened under the same rules (True), or a new one to a checked address."""
        if self._closed:
            raise OSError("the sender is closed")
        https = where.scheme == "https"
        key = (where.scheme, where.host, where.port, hook.allow_private, https and hook.insecure_ssl)
        pooled = None if fresh else self._pool.take(key)
        if pooled is not None:
            return pooled, key, True
        addresses = await self._addresses(where.host, where.port, hook.allow_private, literal=where.literal)
        tls = (self._tls_unverified if hook.insecure_ssl else self._tls) if https else None
        loop = asyncio.get_running_loop()
        failure: OSError | None = None
        for address in addresses:
            try:
                _transport, conn = await loop.create_connection(
                    lambda: Connection(self._cap),
                    host=address,
                    port=where.port,
                    ssl=tls,
                    server_hostname=where.host if tls is not None else None,
                )
            except ssl.SSLError:
                raise  # the address answered: its certificate is the problem, not the address
            except OSError as exc:
                failure = exc
                continue
            self._pool.opened += 1
            return conn, key, False
        raise OSError(f"cannot connect to {where.host}:{where.port}: {failure}")

    async def _addresses(self, host: str, port: int, allow_private: bool, *, literal: bool) -> list[str]:
        """The addresses the policy allows for `host` (a literal is checked here, a name on a DNS thread)."""
        if self._check is None:
            return [host]
        if literal or self._resolver is None:
            return self._check(host, port, allow_private)
        return await self._resolver.addresses(host, port, allow_private)

    async def _judge(self, hook: Hook, number: int, response: Response, elapsed: float) -> Attempt:
        status = response.status
        assert status is not None
        verdict = classify(status)
        if (blocked := await self._redirect_refusal(hook, status, response.headers.get("location"))) is not None:
            return Attempt(number, Verdict.BLOCKED, elapsed, status=status, error=f"redirect: {blocked}")
        retry_after: float | None = None
        if status in (429, 503):
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), now=datetime.now(UTC), maximum_s=self._retry_after_max_s
            )
        body = bytes(response.body)
        excerpt = body[: self._excerpt_bytes].decode("utf-8", "replace") if self._excerpt_bytes else None
        problems = [] if verdict is Verdict.DELIVERED else [f"HTTP {status}"]
        if response.cut is not None:
            problems.append(response.cut)
        return Attempt(
            number,
            verdict,
            elapsed,
            status=status,
            error="; ".join(problems) or None,
            excerpt=excerpt,
            retry_after_s=retry_after,
        )

    async def _redirect_refusal(self, hook: Hook, status: int, location: str | None) -> str | None:
        """Redirects are never followed; but one to an address the policy refuses is an SSRF attempt,
        reported as such (`ssrf_blocked`) rather than as a plain permanent failure. The target is read
        as a hook URL would be (IDNA 2008); one those rules refuse is judged by its IP literal, if any."""
        if not (300 <= status < 400 and location and self._check is not None):
            return None
        target = urljoin(hook.url, location)
        try:
            parsed = urls.parse(target)
            host, port, literal = parsed.host, parsed.port, parsed.literal
        except urls.UrlError:
            try:
                parts = urlsplit(target)
                address = literal_address(parts.hostname or "")
                port = parts.port or default_port(parts.scheme)
            except ValueError:
                return None
            if address is None:
                return None
            host, literal = str(address), True
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._addresses(host, port, hook.allow_private, literal=literal)
        except BlockedDestination as exc:
            return str(exc)
        except OSError:
            return None
        return None


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _describe(exc: BaseException) -> str:
    kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return f"{kind}: {str(exc)[:300]}"
