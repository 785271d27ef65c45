"""One delivery attempt: the request, the network policy, the deadline, the outcome (async).

The guarantees, each kept here:
- The SSRF guard: the hook's host is resolved once (on a DNS thread: `getaddrinfo` cannot be
  cancelled, so it gets threads of its own), every address is checked against the network policy,
  and the connection goes to a checked address; TLS still verifies the hook's host name. A kept-alive
  connection is reused only under the key it was opened and checked under (scheme, host, port, the
  hook's `allow_private`, its `insecure_ssl`).
- One wall-clock deadline (`delivery.timeout_s`) bounds the whole attempt: name resolution, TCP
  connect, the TLS handshake, sending, and reading the response. A response whose status arrived
  counts even when the deadline cut its body; the attempt's `error` says so.
- Only `delivery.max_response_bytes` of a response are read; redirects are never followed (one to a
  refused address is reported as `blocked`); no proxy from the environment is ever used.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urljoin, urlsplit

from hookd import __version__
from hookd.config import Settings
from hookd.delivery.http import Connection, Pool, ProtocolError, Response
from hookd.errors import BlockedDestination
from hookd.messages import Delivery
from hookd.netpolicy import AddressCheck, NetworkPolicy, default_port, literal_address
from hookd.outcomes import Verdict
from hookd.retry import Attempt, classify, parse_retry_after
from hookd.signing import signature_headers
from hookd.subscriptions.model import Hook

USER_AGENT = f"hookd/{__version__}"
_DNS_THREADS = 32
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


@dataclass(frozen=True, slots=True)
class _Route:
    """A hook URL taken apart once: where to connect, what to verify, what goes on the request line."""

    scheme: str
    host: str  # for DNS and the policy (IDNA-encoded, brackets stripped)
    port: int
    target: str  # the request target: path and query, percent-encoded
    host_header: str


def route(url: str) -> _Route:
    """Parse a hook URL; `ValueError` for one no request can be made to."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url[:200]!r}")
    host = parts.hostname if literal_address(parts.hostname) else parts.hostname.encode("idna").decode("ascii")
    port = parts.port or default_port(scheme)
    target = quote(parts.path or "/", safe=_SAFE_PATH)
    if parts.query:
        target += "?" + quote(parts.query, safe=_SAFE_QUERY)
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if parts.port is None else f"{shown}:{port}"
    return _Route(scheme, host, port, target, host_header)


def request_bytes(hook: Hook, delivery: Delivery, number: int, where: _Route) -> bytes:
    """The whole request: line, headers and body. `ValueError` for a value no header can carry."""
    headers = {
        "Host": where.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Hook-Event": delivery.event,
        "X-Hook-ID": hook.id,
        "X-Hook-Delivery": delivery.delivery_id,
        "X-Hook-Attempt": str(number),
        # X-Hook-Signature (current secret) and the Standard Webhooks headers, timestamped per attempt
        **signature_headers(hook.signing_secrets(), delivery.delivery_id, delivery.body),
        "Content-Length": str(len(delivery.body)),
    }
    if hook.basic_auth is not None:
        pair = f"{hook.basic_auth.username}:{hook.basic_auth.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    lines = [f"POST {where.target} HTTP/1.1"]
    for name, value in headers.items():
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"header {name} would carry a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + delivery.body


class Sender:
    """Makes delivery attempts on the event loop that calls it (the engine's); not thread-safe."""

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
        self._dns = ThreadPoolExecutor(max_workers=_DNS_THREADS, thread_name_prefix="dns")
        self._tls = ssl.create_default_context(cafile=ca_certs)  # the system store (SSL_CERT_FILE/DIR honoured)
        self._tls_unverified = ssl.create_default_context(cafile=ca_certs)
        self._tls_unverified.check_hostname = False
        self._tls_unverified.verify_mode = ssl.CERT_NONE
        self._routes: dict[str, _Route] = {}

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

    def sweep(self) -> None:
        """Close keep-alive connections idle past their timeout (the engine calls it now and then)."""
        self._pool.sweep()

    def close(self) -> None:
        self._pool.close()
        self._dns.shutdown(wait=False, cancel_futures=True)

    async def attempt(self, hook: Hook, delivery: Delivery, number: int) -> Attempt:
        """Make attempt `number` of `delivery` to `hook` within the deadline; never raises for network or
        HTTP problems: every outcome is an `Attempt`."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        conn: Connection | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                where = self._route(hook.url)
                request = request_bytes(hook, delivery, number, where)
                conn, key, reused = await self._connection(hook, where)
                try:
                    response = await conn.exchange(request)
                except (OSError, ProtocolError):
                    if not reused or conn.partial.status is not None:
                        raise
                    # A kept-alive connection the receiver closed while it sat idle: once more on a new one.
                    conn, key, _ = await self._connection(hook, where, fresh=True)
                    response = await conn.exchange(request)
                self._pool.give(key, conn)
        except BlockedDestination as exc:
            return Attempt(number, Verdict.BLOCKED, loop.time() - started, error=str(exc))
        except ssl.SSLError as exc:  # before ValueError: a certificate error is both, and is not final
            return Attempt(number, Verdict.RETRYABLE, loop.time() - started, error=_describe(exc))
        except (ValueError, UnicodeError) as exc:  # a URL or header value no request can carry
            return Attempt(number, Verdict.PERMANENT, loop.time() - started, error=_describe(exc))
        except TimeoutError:
            if conn is None or conn.partial.status is None:
                error = f"timeout: deadline of {self._timeout_s:g} s exceeded"
                return Attempt(number, Verdict.RETRYABLE, loop.time() - started, error=error)
            response = conn.partial  # the answer arrived; the deadline cut its body
            response.cut = True
            conn.close()
        except (OSError, ProtocolError) as exc:
            if conn is not None:
                conn.close()
            return Attempt(number, Verdict.RETRYABLE, loop.time() - started, error=_describe(exc))
        return await self._judge(hook, number, response, loop.time() - started)

    def _route(self, url: str) -> _Route:
        found = self._routes.get(url)
        if found is None:
            found = route(url)
            if len(self._routes) >= 4096:  # hooks come and go: forget them all now and then
                self._routes.clear()
            self._routes[url] = found
        return found

    async def _connection(
        self, hook: Hook, where: _Route, *, fresh: bool = False
    ) -> tuple[Connection, tuple[object, ...], bool]:
        """A pooled connection opened under the same rules (True), or a new one to a checked address."""
        https = where.scheme == "https"
        key = (where.scheme, where.host, where.port, hook.allow_private, https and hook.insecure_ssl)
        pooled = None if fresh else self._pool.take(key)
        if pooled is not None:
            return pooled, key, True
        addresses = await self._addresses(where.host, where.port, hook.allow_private)
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

    async def _addresses(self, host: str, port: int, allow_private: bool) -> list[str]:
        """The addresses the policy allows for `host` (a literal is checked here, a name on a DNS thread)."""
        if self._check is None:
            return [host]
        if literal_address(host) is not None:
            return self._check(host, port, allow_private)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._dns, self._check, host, port, allow_private)

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
        if response.cut and len(body) <= self._cap:  # cut by the deadline, not by the byte cap
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

    async def _redirect_refusal(self, hook: Hook, status: int, location: str | None) -> str | None:
        """Redirects are never followed; but one to an address the policy refuses is an SSRF attempt,
        reported as such (`ssrf_blocked`) rather than as a plain permanent failure."""
        if not (300 <= status < 400 and location and self._check is not None):
            return None
        try:
            target = urlsplit(urljoin(hook.url, location))
            port = target.port or default_port(target.scheme)
            async with asyncio.timeout(self._timeout_s):
                await self._addresses(target.hostname or "", port, hook.allow_private)
        except BlockedDestination as exc:
            return str(exc)
        except (OSError, ValueError):
            return None
        return None


def _describe(exc: BaseException) -> str:
    kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return f"{kind}: {str(exc)[:300]}"
