"""netpolicy: the full address matrix, odd IPv4 spellings, allowlists, the per-hook override, pinning."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from support.netfakes import FakeDns

from hookd.errors import BlockedDestination
from hookd.netpolicy import NetworkPolicy, category, literal_address, system_resolver
from hookd.subscriptions.model import Hook
from hookd.subscriptions.rules import hook_problems

# (address, category): every kind of address that is not globally routable.
NON_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.1", "private"),
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.9", "IETF protocol assignment"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fd12:3456:789a::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("100::1", "discard-only"),
    ("2001:db8::1", "documentation"),
    ("2001::1", "IETF protocol assignment"),  # Teredo
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
    ("4000::1", "reserved"),  # outside 2000::/3
    # IPv4-mapped, SIIT, NAT64 and 6to4 forms are judged as the IPv4 address they carry.
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::ffff:0:a00:1", "private"),
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "link-local"),
    ("64:ff9b::192.168.1.1", "private"),
    ("2002:7f00:1::", "loopback"),
    ("2002:a9fe:a9fe::1", "link-local"),
    ("2002:a00:1::", "private"),
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
# Spellings of 127.0.0.1 that inet_aton, getaddrinfo or browsers accept.
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0177.0.0.1",
    "0177.0.0.01",
    "017700000001",
    "0x7f.0.0.1",
    "0x7f.1",
    "127.0.0.1.",
    "[::ffff:127.0.0.1]",
]


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC)
def test_non_public_address_has_its_category(address: str, kind: str) -> None:
    """Each non-globally-routable address is recognised, with the kind it is."""
    assert category(address) == kind


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC)
def test_default_policy_refuses_every_non_public_address(address: str, kind: str) -> None:
    """The default policy refuses every address of the matrix."""
    assert NetworkPolicy().refusal(address) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_default_policy_permits_public_addresses(address: str) -> None:
    """Globally routable unicast addresses, also in IPv6 wrappers, are allowed."""
    assert NetworkPolicy().permits(address)


@pytest.mark.parametrize("address", ["not an address", "", "1.2.3.4.5", "::g"])
def test_garbage_from_a_resolver_is_refused(address: str) -> None:
    """A resolver answer that is not an address is refused, not trusted."""
    assert NetworkPolicy(allow_private=True).refusal(address) == "invalid"


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_odd_ipv4_spellings_are_read_as_loopback(spelling: str) -> None:
    """Decimal, hex, octal, short and mixed forms of 127.0.0.1 are read as that address."""
    literal = literal_address(spelling)
    assert literal is not None and category(literal) == "loopback"


@pytest.mark.parametrize("host", ["example.com", "999.0.0.1", "08.0.0.1", "0x7g.0.0.1", "1.2.3.4.5", "", "[::1"])
def test_names_and_malformed_numbers_are_not_literals(host: str) -> None:
    """Names, out-of-range or malformed numbers are not literals: they go to the resolver."""
    assert literal_address(host) is None


def test_ipv6_literal_keeps_its_zone() -> None:
    """A bracketed, percent-encoded zone (as in a URL) is decoded and kept for the connection."""
    assert str(literal_address("[fe80::1%25eth0]")) == "fe80::1%eth0"


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_check_refuses_literal_spellings_without_dns(spelling: str) -> None:
    """A loopback literal in any spelling is refused without asking the resolver."""
    dns = FakeDns({})
    with pytest.raises(BlockedDestination, match="loopback"):
        NetworkPolicy().check(spelling.strip("[]"), 80, dns)
    assert dns.queries == []


def test_check_returns_the_canonical_literal() -> None:
    """With loopback allowed, an odd spelling comes back as the canonical address to connect to."""
    assert NetworkPolicy(allow_private=True).check("2130706433", 80, FakeDns({})) == ["127.0.0.1"]


def test_name_resolving_to_loopback_is_refused() -> None:
    """A name whose address is loopback is refused, naming the host and the address."""
    dns = FakeDns({"internal.example": [["127.0.0.1"]]})
    with pytest.raises(BlockedDestination, match=r"internal\.example resolves to loopback address 127\.0\.0\.1"):
        NetworkPolicy().check("internal.example", 443, dns)


def test_mixed_public_and_private_answer_is_refused_whole() -> None:
    """One private address among public ones refuses the host: no address of it is used."""
    dns = FakeDns({"split.example": [["93.184.216.34", "10.0.0.5"]]})
    with pytest.raises(BlockedDestination, match=r"10\.0\.0\.5"):
        NetworkPolicy().check("split.example", 443, dns)


def test_check_resolves_once_and_returns_what_it_checked() -> None:
    """One check is one lookup; the addresses returned are exactly the ones checked."""
    dns = FakeDns({"hooks.example": [["93.184.216.34", "2606:4700::1"], ["127.0.0.1"]]})
    assert NetworkPolicy().check("hooks.example", 443, dns) == ["93.184.216.34", "2606:4700::1"]
    assert dns.queries == ["hooks.example"]


def test_rebinding_answer_is_refused_on_the_next_check() -> None:
    """A name that answered public and then private is refused at the check that sees the private answer."""
    dns = FakeDns({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    policy = NetworkPolicy()
    assert policy.check("rebind.example", 80, dns) == ["93.184.216.34"]
    with pytest.raises(BlockedDestination, match="loopback"):
        policy.check("rebind.example", 80, dns)


def test_no_address_is_refused() -> None:
    """A name that resolves to nothing is refused."""
    with pytest.raises(BlockedDestination, match="no address"):
        NetworkPolicy().check("empty.example", 443, lambda _h, _p: [])


def test_resolver_failure_propagates_as_oserror() -> None:
    """A resolver failure is transient: it propagates as OSError, not as a policy refusal."""
    with pytest.raises(OSError, match="unknown") as caught:
        NetworkPolicy().check("nowhere.example", 443, FakeDns({}))
    assert not isinstance(caught.value, BlockedDestination)


def test_duplicate_answers_are_returned_once() -> None:
    """Duplicate resolver answers (one per socket type) come back once each."""
    dns = FakeDns({"dup.example": [["93.184.216.34", "93.184.216.34"]]})
    assert NetworkPolicy().check("dup.example", 443, dns) == ["93.184.216.34"]


# -- allowlists --------------------------------------------------------------------------------------------
def test_allowed_network_lets_its_addresses_through() -> None:
    """An address inside an allowed CIDR is permitted."""
    assert NetworkPolicy.build(allowed_networks=["10.20.0.0/16"]).permits("10.20.3.4")


@pytest.mark.parametrize("address", ["10.21.0.1", "10.19.255.255", "127.0.0.1", "169.254.169.254", "fd00::1"])
def test_allowed_network_lets_nothing_else_through(address: str) -> None:
    """Addresses outside the allowed CIDRs stay refused."""
    assert not NetworkPolicy.build(allowed_networks=["10.20.0.0/16"]).permits(address)


def test_allowed_network_covers_the_mapped_form() -> None:
    """The IPv4-mapped form of an allowed IPv4 address is allowed too."""
    assert NetworkPolicy.build(allowed_networks=["10.20.0.0/16"]).permits("::ffff:10.20.0.1")


def test_allowed_ipv6_network() -> None:
    """An IPv6 CIDR allows exactly its addresses."""
    policy = NetworkPolicy.build(allowed_networks=["fd00:1::/64"])
    assert policy.permits("fd00:1::5") and not policy.permits("fd00:2::5")


def test_allowed_network_with_host_bits_is_accepted() -> None:
    """A CIDR written with host bits (10.20.1.1/16) means its network, as the config loader accepts it."""
    assert NetworkPolicy.build(allowed_networks=["10.20.1.1/16"]).permits("10.20.200.1")


@pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1"])
def test_nothing_allows_unspecified_multicast_or_broadcast(address: str) -> None:
    """Unspecified, multicast and broadcast addresses are refused even with everything allowed."""
    policy = NetworkPolicy.build(True, ["0.0.0.0/0", "::/0"])
    assert not policy.permits(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1", "::1", "100.64.0.1"])
def test_allow_private_networks_allows_internal_unicast(address: str) -> None:
    """allow_private_networks lets every internal unicast address through."""
    assert NetworkPolicy.build(allow_private_networks=True).permits(address)


def test_from_settings_reads_both_keys() -> None:
    """The policy is built from delivery.allow_private_networks and delivery.allowed_networks."""
    from hookd.config import DeliverySettings

    policy = NetworkPolicy.from_settings(DeliverySettings(allowed_networks=("10.1.0.0/16",)))
    assert not policy.allow_private and policy.permits("10.1.2.3") and not policy.permits("10.2.0.1")


# -- the per-hook override ---------------------------------------------------------------------------------
def test_for_hook_widens_only_when_the_hook_allows_private() -> None:
    """A hook's allow_private widens the policy for that hook; other hooks keep the default."""
    policy = NetworkPolicy()
    assert policy.for_hook(True).permits("10.0.0.1")
    assert not policy.for_hook(False).permits("10.0.0.1")


def test_address_check_applies_the_hooks_override() -> None:
    """address_check() checks each hook with its own allow_private, through the given resolver."""
    dns = FakeDns({"internal.example": [["10.0.0.7"]]})
    check = NetworkPolicy().address_check(dns)
    assert check("internal.example", 80, True) == ["10.0.0.7"]
    with pytest.raises(BlockedDestination):
        check("internal.example", 80, False)


# -- URLs --------------------------------------------------------------------------------------------------
def test_check_url_uses_the_default_port() -> None:
    """check_url resolves the URL's host with 443 for https and 80 for http."""
    seen: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["93.184.216.34"]

    policy = NetworkPolicy()
    policy.check_url("https://hooks.example/in", resolver)
    policy.check_url("http://hooks.example:8080/in", resolver)
    assert seen == [("hooks.example", 443), ("hooks.example", 8080)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]:8080/",
        "http://[::ffff:169.254.169.254]/",
        "https://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://100.64.1.1/",
        "http://localhost:8080/",
        "http://LOCALHOST/",
        "http://api.localhost/",
        "http://[fe80::1]/",
    ],
)
def test_creation_problem_refuses_internal_literals_at_creation(url: str) -> None:
    """Creating a hook on a literal internal address, or on localhost, is refused."""
    problem = NetworkPolicy().creation_problem(url)
    assert problem is not None and "not a public address" in problem


@pytest.mark.parametrize(
    "url",
    ["http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://LOCALHOST./", "http://[fe80::1%25eth0]/"],
)
def test_other_spellings_of_internal_hosts_are_refused_at_creation_by_the_url_rules(url: str) -> None:
    """inet_aton's numeric spellings, a trailing dot and an IPv6 zone are refused at creation by the URL rules."""
    assert hook_problems(Hook(id="1", account_id="a", url=url, events=("job",), secret="s"))[0].field == "url"


@pytest.mark.parametrize("url", ["https://hooks.example.com/in", "http://8.8.8.8/", "https://[2606:4700::1]/"])
def test_creation_problem_accepts_names_and_public_literals(url: str) -> None:
    """Names (checked on every attempt) and public literals are accepted at creation."""
    assert NetworkPolicy().creation_problem(url) is None


def test_creation_problem_honours_the_allowlist() -> None:
    """An allowed CIDR lets a literal of it be created, and nothing else."""
    policy = NetworkPolicy.build(allowed_networks=["10.0.0.0/24"])
    assert policy.creation_problem("http://10.0.0.5/") is None
    assert policy.creation_problem("http://10.0.1.5/") is not None


def test_creation_problem_honours_allow_private() -> None:
    """With allow_private (global or per hook) internal literals may be created."""
    assert NetworkPolicy().for_hook(True).creation_problem("http://127.0.0.1:9000/") is None


# -- the system resolver -----------------------------------------------------------------------------------
def test_system_resolver_reports_unencodable_names_as_gaierror() -> None:
    """A name the resolver cannot encode is a resolution failure (gaierror), not a crash."""
    with pytest.raises(socket.gaierror):
        system_resolver("a" * 64 + ".example", 443)


def test_system_resolver_resolves_numeric_hosts() -> None:
    """The system resolver answers an address literal with itself."""
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


def test_every_embedded_private_ipv4_is_refused() -> None:
    """For a sample of private IPv4 addresses, every IPv6 wrapper of each is refused too."""
    for text in ("10.1.2.3", "127.0.0.1", "169.254.169.254", "192.168.1.1", "100.64.0.1"):
        packed = int(ipaddress.IPv4Address(text))
        forms = [
            ipaddress.IPv6Address(0xFFFF00000000 | packed),  # ::ffff:a.b.c.d
            ipaddress.IPv6Address((0x64FF9B << 96) | packed),  # 64:ff9b::a.b.c.d
            ipaddress.IPv6Address((0x2002 << 112) | (packed << 80)),  # 2002:AABB:CCDD::
        ]
        assert all(not NetworkPolicy().permits(form) for form in forms), text
