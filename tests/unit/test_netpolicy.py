"""netpolicy: the SSRF guard refuses every address that is not globally routable."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.errors import BlockedDestination
from hookd.netpolicy import NetworkPolicy, is_public


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.1.2.3",
        "192.168.1.10",
        "172.16.0.1",
        "172.31.255.254",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, CGNAT, unspecified, multicast and IPv4-in-IPv6 forms are not public."""
    assert not is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "2002:808:808::"])
def test_public_addresses_are_allowed(address: str) -> None:
    """Globally routable unicast addresses, also when wrapped in IPv6, are public."""
    assert is_public(address)


def test_public_multicast_is_refused() -> None:
    """A globally scoped multicast address is not a receiver."""
    assert not is_public("ff0e::1")


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe"])
def test_nat64_forms_of_private_addresses_are_refused(address: str) -> None:
    """A NAT64 (64:ff9b::/96) address embedding a private IPv4 address is not public."""
    assert not is_public(address)


@given(st.ip_addresses())
def test_is_public_never_raises_on_addresses(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """is_public returns a bool for every IPv4 and IPv6 address."""
    assert isinstance(is_public(str(address)), bool)


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_form_agrees_with_ipv4(address: ipaddress.IPv4Address) -> None:
    """An IPv4-mapped IPv6 address is judged like the IPv4 address it carries."""
    assert is_public(f"::ffff:{address}") == is_public(str(address))


class FakeResolver:
    """A resolver answering from a fixed table and recording its queries."""

    def __init__(self, answers: dict[str, list[str]] | None = None, error: OSError | None = None) -> None:
        self.answers = answers or {}
        self.error = error
        self.queries: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append((host, port))
        if self.error is not None:
            raise self.error
        return self.answers.get(host, [])


def test_default_policy_check_all_public_is_allowed() -> None:
    """A host resolving only to public addresses is allowed and its addresses returned."""
    resolver = FakeResolver({"hooks.example.com": ["8.8.8.8", "2001:4860:4860::8888"]})
    assert NetworkPolicy().check("hooks.example.com", 443, resolver) == ["8.8.8.8", "2001:4860:4860::8888"]
    assert resolver.queries == [("hooks.example.com", 443)]


def test_default_policy_check_any_private_is_refused() -> None:
    """One private address among public ones is enough to refuse the host, naming it."""
    resolver = FakeResolver({"rebind.example.com": ["8.8.8.8", "10.0.0.5"]})
    with pytest.raises(BlockedDestination, match=r"10\.0\.0\.5"):
        NetworkPolicy().check("rebind.example.com", 443, resolver)


def test_default_policy_check_metadata_endpoint_is_refused() -> None:
    """A host resolving to the cloud metadata endpoint is refused."""
    resolver = FakeResolver({"metadata.example.com": ["169.254.169.254"]})
    with pytest.raises(BlockedDestination):
        NetworkPolicy().check("metadata.example.com", 80, resolver)


def test_default_policy_check_no_address_is_refused() -> None:
    """A host that resolves to nothing is refused."""
    with pytest.raises(BlockedDestination, match="no address"):
        NetworkPolicy().check("empty.example.com", 443, FakeResolver())


def test_default_policy_check_resolver_error_propagates() -> None:
    """A resolver failure is transient: the OSError propagates rather than a policy refusal."""
    resolver = FakeResolver(error=OSError("temporary failure in name resolution"))
    with pytest.raises(OSError, match="temporary failure") as info:
        NetworkPolicy().check("hooks.example.com", 443, resolver)
    assert not isinstance(info.value, BlockedDestination)
