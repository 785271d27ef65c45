"""One HTTP delivery attempt: request building, the network policy check, outcome classification.

This is the only module that imports requests. Each delivery thread keeps its own `requests.Session`
(connection pooling with keep-alive per receiving host); environment proxies are ignored and
redirects are never followed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from hookd import __version__
from hookd.errors import BlockedDestination
from hookd.netpolicy import Resolver, check_host, system_resolver
from hookd.retry import Attempt, Verdict, classify
from hookd.subscriptions.model import Hook

USER_AGENT = f"hookd/{__version__}"
#: How much of a response body is read (enough for an excerpt; the rest is never downloaded).
RESPONSE_READ_CAP_BYTES = 16 * 1024
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
    signature: str


class Sender:
    """Makes delivery attempts; safe to share between threads (sessions are per thread)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private_networks: bool,
        pool_size: int = 16,
        excerpt_bytes: int = 1024,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._timeout = (timeout_s, timeout_s)
        self._allow_private = allow_private_networks
        self._pool_size = pool_size
        self._resolver = resolver
        self._excerpt_bytes = excerpt_bytes
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or netrc credentials from the environment
            adapter = HTTPAdapter(pool_connections=self._pool_size, pool_maxsize=self._pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def attempt(self, hook: Hook, note: Notification, number: int) -> Attempt:
        """Make attempt `number` of `note` to `hook`; never raises for network or HTTP problems."""
        started = time.monotonic()
        if not self._allow_private:
            parts = urlsplit(hook.url)
            try:
                check_host(parts.hostname or "", parts.port or 443, self._resolver)
            except BlockedDestination as exc:
                return Attempt(number, Verdict.BLOCKED, time.monotonic() - started, error=str(exc))
            except OSError as exc:
                return Attempt(number, Verdict.RETRYABLE, time.monotonic() - started, error=f"dns: {exc}")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hook-Event": note.event,
            "X-Hook-ID": hook.id,
            "X-Hook-Delivery": note.delivery_id,
            "X-Hook-Attempt": str(number),
            "X-Hook-Signature": note.signature,
        }
        auth = (hook.basic_auth.username, hook.basic_auth.password) if hook.basic_auth else None
        try:
            response = self._session().post(
                hook.url,
                data=note.body,
                headers=headers,
                auth=auth,
                timeout=self._timeout,
                allow_redirects=False,
                verify=not hook.insecure_ssl,
                stream=True,
            )
            try:
                head = _read_capped(response)
            finally:
                response.close()
        except _PERMANENT_ERRORS as exc:
            return Attempt(number, Verdict.PERMANENT, time.monotonic() - started, error=_describe(exc))
        except requests.RequestException as exc:
            return Attempt(number, Verdict.RETRYABLE, time.monotonic() - started, error=_describe(exc))
        status = response.status_code
        verdict = classify(status)
        excerpt = head[: self._excerpt_bytes].decode("utf-8", "replace") if self._excerpt_bytes else None
        error = None if verdict is Verdict.DELIVERED else f"HTTP {status}"
        return Attempt(number, verdict, time.monotonic() - started, status=status, error=error, excerpt=excerpt)


def _read_capped(response: requests.Response) -> bytes:
    """Read at most the cap; a body read to its end lets the connection be reused (keep-alive)."""
    data = bytearray()
    for chunk in response.iter_content(chunk_size=4096):
        data += chunk
        if len(data) > RESPONSE_READ_CAP_BYTES:
            break
    return bytes(data[:RESPONSE_READ_CAP_BYTES])


def _describe(exc: requests.RequestException) -> str:
    kind = "timeout" if isinstance(exc, requests.Timeout) else type(exc).__name__
    return f"{kind}: {str(exc)[:300]}"
