"""The SSRF guard inside one delivery attempt (in process): no connection to a refused address, ever.

`delivery.Sender` is driven directly (tests/support/syncsender.py) with the policy's `address_check`
and a DNS the test controls, while `connect_guard` refuses every connection outside loopback before any
packet leaves and `tripwire` counts connections to the internal listeners. These tests pin down the
contract the delivery module must keep: resolve once, check every address, connect only to a checked
address, keep verifying TLS against the hostname, never follow redirects, ignore proxy variables.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.helpers import Receiver, Reply
from support.netfakes import ConnectGuard, FakeDns, TlsReceiver, Tripwire, make_certificate
from support.syncsender import SyncSender

from hookd.messages import Delivery
from hookd.netpolicy import NetworkPolicy, Resolver, system_resolver
from hookd.outcomes import Verdict
from hookd.retry import Attempt
from hookd.subscriptions.model import Hook

BODY = b'{"id": 7, "state": "failed"}'
ONLY_LOOPBACK_127_0_0_1 = NetworkPolicy.build(allowed_networks=["127.0.0.1/32"])


def _hook(url: str, **fields: Any) -> Hook:
    return Hook(id="h1", account_id="acme", url=url, events=("job",), secret="s3cr3t-value-1234", **fields)


def _note() -> Delivery:
    """The delivery every attempt here makes."""
    return Delivery(hook_id="h1", event="job.failed", event_id="evt-1", account_id="acme", delivery_id="d-1", body=BODY)


def _attempt(url: str, policy: NetworkPolicy, resolver: Resolver = system_resolver, **hook: Any) -> Attempt:
    with SyncSender(timeout_s=3, address_check=policy.address_check(resolver)) as sender:
        return sender.attempt(_hook(url, **hook), _note(), 1)


Senders = Callable[..., SyncSender]


@pytest.fixture
def senders() -> Iterator[Senders]:
    """Make `SyncSender`s (keyword arguments of `Sender`); every one is closed after the test."""
    made: list[SyncSender] = []

    def make(**options: Any) -> SyncSender:
        made.append(SyncSender(**options))
        return made[-1]

    yield make
    for sender in made:
        sender.close()


@pytest.fixture
def dns_everywhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a FakeDns as socket.getaddrinfo too, so a naive second lookup sees the attacker's answer."""
    installed: list[FakeDns] = []

    def install(dns: FakeDns) -> FakeDns:
        monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo(socket.getaddrinfo))
        installed.append(dns)
        return dns

    yield install


# -- the address matrix ------------------------------------------------------------------------------------------
INTERNAL_HOSTS = [
    "127.0.0.1",
    "127.0.0.2",
    "0.0.0.0",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "[::ffff:169.254.169.254]",
    "[fe80::1]",
    "[fd00::1]",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
]


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_internal_address_is_blocked_without_any_connection(
    host: str, scheme: str, connect_guard: ConnectGuard, tripwire: Tripwire
) -> None:
    """Every non-public address, in any spelling, is refused before any connection is attempted."""
    result = _attempt(f"{scheme}://{host}:{tripwire.port}/in", NetworkPolicy())
    assert result.verdict is Verdict.BLOCKED, result
    assert connect_guard.attempts == [] and tripwire.accepted == 0


#: Spellings that `inet_aton` (and browsers) read as internal addresses but RFC 3986 does not: the URL
#: rules refuse them (hookd.urls), so a stored one is a permanent failure, never a connection.
OTHER_SPELLINGS = ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.0.0.1.", "0", "[::1%25lo]"]


@pytest.mark.parametrize("host", OTHER_SPELLINGS)
def test_other_spellings_of_internal_addresses_are_refused_without_any_connection(
    host: str, connect_guard: ConnectGuard, tripwire: Tripwire
) -> None:
    """A stored URL whose host is another spelling of an address is refused by the URL rules: no connection."""
    result = _attempt(f"http://{host}:{tripwire.port}/in", NetworkPolicy.build(allow_private_networks=True))
    assert result.verdict is Verdict.PERMANENT and (result.error or "").startswith("url: "), result
    assert connect_guard.attempts == [] and tripwire.accepted == 0


def test_name_resolving_to_loopback_is_blocked_without_connection(
    connect_guard: ConnectGuard, tripwire: Tripwire
) -> None:
    """A name whose address is loopback is refused with no connection; the error names the address."""
    dns = FakeDns({"internal.example": [["127.0.0.1"]]})
    result = _attempt(f"http://internal.example:{tripwire.port}/in", NetworkPolicy(), dns)
    assert result.verdict is Verdict.BLOCKED and "127.0.0.1" in (result.error or "")
    assert connect_guard.attempts == [] and tripwire.accepted == 0


def test_name_with_one_internal_answer_among_public_ones_is_blocked(
    connect_guard: ConnectGuard, tripwire: Tripwire
) -> None:
    """A mixed answer is refused whole: not even the public address is connected to."""
    dns = FakeDns({"split.example": [["93.184.216.34", "127.0.0.1"]]})
    result = _attempt(f"http://split.example:{tripwire.port}/in", NetworkPolicy(), dns)
    assert result.verdict is Verdict.BLOCKED
    assert connect_guard.attempts == [] and tripwire.accepted == 0


# -- DNS rebinding --------------------------------------------------------------------------------------------------
def test_rebinding_never_reaches_the_internal_listener(
    receiver: Receiver, dns_everywhere: Any, senders: Senders
) -> None:
    """Allowed first, internal next: the attempt connects to the address it checked, the next one is blocked."""
    internal = Tripwire(hosts=("127.0.0.2",), port=receiver.port)
    try:
        receiver.program("/in", then=Reply(200, headers={"Connection": "close"}))  # no keep-alive: reconnect
        dns = dns_everywhere(FakeDns({"rebind.example": [["127.0.0.1"], ["127.0.0.2"]]}))
        sender = senders(timeout_s=3, address_check=ONLY_LOOPBACK_127_0_0_1.address_check(dns))
        url = f"http://rebind.example:{receiver.port}/in"
        first = sender.attempt(_hook(url), _note(), 1)
        second = sender.attempt(_hook(url), _note(), 2)
        assert first.verdict is Verdict.DELIVERED, first
        assert second.verdict is Verdict.BLOCKED, second
        assert internal.accepted == 0
        [request] = receiver.requests("/in")
        assert request.header("Host") == f"rebind.example:{receiver.port}"  # the name, not the address
    finally:
        internal.close()


def test_rebinding_checks_once_per_connection(receiver: Receiver, dns_everywhere: Any) -> None:
    """One attempt resolves the name once: the connection uses that answer, no second lookup."""
    receiver.program("/in", then=Reply(200, headers={"Connection": "close"}))
    dns = dns_everywhere(FakeDns({"once.example": [["127.0.0.1"], ["127.0.0.2"]]}))
    result = _attempt(f"http://once.example:{receiver.port}/in", ONLY_LOOPBACK_127_0_0_1, dns)
    assert result.verdict is Verdict.DELIVERED and dns.queries == ["once.example"]


def test_rebinding_from_public_to_loopback_connects_only_to_the_public_address(
    connect_guard: ConnectGuard, tripwire: Tripwire, dns_everywhere: Any, senders: Senders
) -> None:
    """A public answer, then loopback: attempt 1 goes to the public address (refused here), attempt 2 is blocked."""
    dns = dns_everywhere(FakeDns({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]}))
    sender = senders(timeout_s=3, address_check=NetworkPolicy().address_check(dns))
    url = f"http://rebind.example:{tripwire.port}/in"
    first = sender.attempt(_hook(url), _note(), 1)
    second = sender.attempt(_hook(url), _note(), 2)
    assert first.verdict is Verdict.RETRYABLE and second.verdict is Verdict.BLOCKED
    assert connect_guard.outside() == [("93.184.216.34", tripwire.port)]
    assert tripwire.accepted == 0


# -- allowlists and the per-hook override -------------------------------------------------------------------------
def test_allowlist_lets_exactly_its_network_through(receiver: Receiver, tripwire: Tripwire) -> None:
    """With 127.0.0.1/32 allowed, 127.0.0.1 is delivered to and 127.0.0.2 (same machine) is blocked."""
    assert _attempt(receiver.url("/ok"), ONLY_LOOPBACK_127_0_0_1).verdict is Verdict.DELIVERED
    assert _attempt(tripwire.url("127.0.0.2"), ONLY_LOOPBACK_127_0_0_1).verdict is Verdict.BLOCKED
    assert tripwire.accepted == 0


def test_hook_allow_private_lets_that_hook_through(receiver: Receiver) -> None:
    """A hook the operator marked allow_private reaches an internal receiver under the default policy."""
    assert _attempt(receiver.url("/ok"), NetworkPolicy(), allow_private=True).verdict is Verdict.DELIVERED
    assert _attempt(receiver.url("/ok"), NetworkPolicy()).verdict is Verdict.BLOCKED


# -- redirects and proxies ------------------------------------------------------------------------------------------
def test_redirect_to_an_internal_address_is_blocked_not_followed(receiver: Receiver, tripwire: Tripwire) -> None:
    """A 302 to an internal address is not followed and counts as blocked (dead-lettered ssrf_blocked)."""
    receiver.program("/redirect", then=Reply(302, headers={"Location": tripwire.url("127.0.0.2", "/meta")}))
    result = _attempt(receiver.url("/redirect"), ONLY_LOOPBACK_127_0_0_1)
    assert result.verdict is Verdict.BLOCKED, result
    assert tripwire.accepted == 0 and len(receiver.requests("/redirect")) == 1


def test_redirect_elsewhere_is_a_permanent_failure_not_followed(
    receiver: Receiver, connect_guard: ConnectGuard
) -> None:
    """A 302 to a public address is not followed either: a permanent failure, no second connection."""
    receiver.program("/redirect", then=Reply(302, headers={"Location": "http://93.184.216.34/in"}))
    result = _attempt(receiver.url("/redirect"), ONLY_LOOPBACK_127_0_0_1)
    assert result.verdict is Verdict.PERMANENT and result.status == 302
    assert connect_guard.outside() == []


def test_proxy_environment_variables_are_ignored(
    receiver: Receiver, tripwire: Tripwire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY and ALL_PROXY in the environment are not used: the request goes straight to the receiver."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, tripwire.url("127.0.0.1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _attempt(receiver.url("/direct"), ONLY_LOOPBACK_127_0_0_1).verdict is Verdict.DELIVERED
    assert tripwire.accepted == 0 and len(receiver.requests("/direct")) == 1


# -- TLS on a pinned address ------------------------------------------------------------------------------------------
@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start an HTTPS receiver presenting a certificate for a given name; that certificate is trusted."""
    servers: list[TlsReceiver] = []

    def start(name: str) -> TlsReceiver:
        cert, key = make_certificate(tmp_path, name)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # OpenSSL's standard override of the system store
        servers.append(TlsReceiver(cert, key))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_tls_to_a_pinned_address_verifies_the_hostname(tls: Any) -> None:
    """Connecting to the checked address keeps TLS verification against the URL's name (and the Host header)."""
    server = tls("hooks.test")
    dns = FakeDns({"hooks.test": [["127.0.0.1"]]})
    result = _attempt(f"https://hooks.test:{server.port}/in", ONLY_LOOPBACK_127_0_0_1, dns)
    assert result.verdict is Verdict.DELIVERED, result
    assert server.hosts == [f"hooks.test:{server.port}"]


def test_tls_certificate_for_another_name_is_refused(tls: Any) -> None:
    """A certificate that does not name the URL's host fails the attempt: hostname verification is on."""
    server = tls("other.test")
    dns = FakeDns({"hooks.test": [["127.0.0.1"]]})
    result = _attempt(f"https://hooks.test:{server.port}/in", ONLY_LOOPBACK_127_0_0_1, dns)
    assert result.verdict is Verdict.RETRYABLE and server.hosts == []
    assert "certificate" in (result.error or "").lower() or "hostname" in (result.error or "").lower()


def test_insecure_ssl_skips_verification_for_that_hook(tls: Any) -> None:
    """A hook with insecure_ssl accepts any certificate; the address is still checked and pinned."""
    server = tls("other.test")
    dns = FakeDns({"hooks.test": [["127.0.0.1"]]})
    result = _attempt(f"https://hooks.test:{server.port}/in", ONLY_LOOPBACK_127_0_0_1, dns, insecure_ssl=True)
    assert result.verdict is Verdict.DELIVERED, result


def test_a_connection_opened_for_an_allow_private_hook_is_never_reused_by_another_hook(
    receiver: Receiver, senders: Senders
) -> None:
    """Kept-alive connections are shared between threads and hooks of the same host, but one checked
    under a hook's own allow_private must not carry a request of a hook without it."""
    sender = senders(timeout_s=3, address_check=NetworkPolicy().address_check())
    url = receiver.url("/kept-alive")
    assert sender.attempt(_hook(url, allow_private=True), _note(), 1).verdict is Verdict.DELIVERED
    refused = sender.attempt(_hook(url), _note(), 1)
    assert refused.verdict is Verdict.BLOCKED, refused
    assert len(receiver.requests("/kept-alive")) == 1
