"""Which receiver addresses hookd may connect to: the SSRF guard's policy (pure, apart from DNS).

A hook's URL is chosen by an account admin, so without a guard hookd could be made to call loopback
services, the private network or the cloud metadata endpoint (169.254.169.254) on their behalf. By
default only globally routable unicast addresses are allowed. Operators whose receivers are internal
lift that with `delivery.allow_private_networks` (everything but multicast and unspecified
addresses), with `delivery.allowed_networks` (exactly the CIDRs named), or per hook with
`allow_private` (operator-only: the hooks file, or `hookd hooks create/update --allow-private`).

The check is made on every attempt against the addresses the name resolves to *now*, and the caller
connects to one of the addresses returned, never resolving again: a DNS answer that changes between
the check and the connection (rebinding) cannot redirect the request. IPv4 addresses hidden in IPv6
(mapped, NAT64, 6to4) are judged as the IPv4 address they carry. Host literals are read the way
`inet_aton` and browsers read them, so `2130706433`, `0x7f.1` and `0177.0.0.1` are loopback too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import unquote

from hookd import urls
from hookd.errors import BlockedDestination

if TYPE_CHECKING:
    from hookd.config import DeliverySettings

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
#: `(host, port) -> addresses`: the system's getaddrinfo, or a fake in tests.
Resolver = Callable[[str, int], list[str]]


#: `(host, port, allow_private) -> addresses to connect to`: what delivery's guarded connection calls,
#: with the hook's operator-set `allow_private`. Raises `BlockedDestination` or `OSError` (resolution).
AddressCheck = Callable[[str, int, bool], list[str]]

_V4, _V6 = ipaddress.IPv4Network, ipaddress.IPv6Network
# Never a receiver, whatever the configuration says: no TCP service lives there.
_NEVER: tuple[tuple[Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V6("::/128"), "unspecified"),
    (_V6("ff00::/8"), "multicast"),
)
# Not globally routable (IANA special-purpose registries); allowed only where the operator says so.
_NON_PUBLIC_V4: tuple[tuple[Network, str], ...] = (
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "IETF protocol assignment"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("240.0.0.0/4"), "reserved"),
)
_NON_PUBLIC_V6: tuple[tuple[Network, str], ...] = (
    (_V6("::1/128"), "loopback"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001::/23"), "IETF protocol assignment"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "segment routing"),
    (_V6("fc00::/7"), "unique local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
)
# Every globally routable IPv6 unicast address lies in 2000::/3; anything outside it is reserved.
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")
_IPV4_TRANSLATED = _V6("::ffff:0:0:0/96")  # SIIT (RFC 2765): an IPv4 address under another prefix
# Names that always mean this machine (RFC 6761, and Debian's /etc/hosts), refused at creation.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (TCP), in its order, without duplicates.

    `OSError` (e.g. `socket.gaierror`) means "no answer now" and is retryable; a name the resolver
    cannot even encode (an over-long label, a NUL) is reported the same way, as `gaierror`.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (UnicodeError, ValueError):
        raise socket.gaierror(socket.EAI_NONAME, f"invalid host name {host[:100]!r}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_address(address: str) -> Address:
    """An address as a resolver returns it (an IPv6 zone `%eth0` is allowed); `ValueError` otherwise."""
    return ipaddress.ip_address(address.strip().split("%", 1)[0])


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, SIIT, NAT64 or 6to4), else None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def category(address: str | Address) -> str:
    """`public`, or what kind of non-public address this is (`loopback`, `private`, ...).

    IPv4 forms hidden in IPv6 are judged as the IPv4 address they carry. A string that is not an
    address is `invalid`.
    """
    try:
        ip = parse_address(address) if isinstance(address, str) else address
    except ValueError:
        return "invalid"
    inner = embedded_ipv4(ip)
    if inner is not None:
        return category(inner)
    for network, label in _NEVER:
        if ip in network:
            return label
    table = _NON_PUBLIC_V4 if isinstance(ip, ipaddress.IPv4Address) else _NON_PUBLIC_V6
    for network, label in table:
        if ip in network:
            return label
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return "reserved"
    return "public" if ip.is_global else "reserved"  # the stdlib's list, as a second opinion


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses, including the IPv4 forms hidden in IPv6."""
    return category(address) == "public"


def literal_address(host: str) -> Address | None:
    """`host` read as an IP address the way `inet_aton` and browsers do, or None for a name.

    Besides dotted quads this accepts one to four parts in decimal, octal (leading 0) or hex (0x):
    `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1` are all 127.0.0.1. A trailing dot is ignored.
    IPv6 literals may be bracketed and carry a (percent-encoded) zone: `[fe80::1%25eth0]`.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        address, percent, zone = text.partition("%")
        try:
            parsed = ipaddress.IPv6Address(address)
        except ValueError:
            return None
        zone = unquote("%" + zone)[1:]  # a URL spells the zone's "%" as "%25"
        if percent and zone and zone.isprintable() and "%" not in zone:
            return ipaddress.IPv6Address(f"{parsed}%{zone}")
        return parsed
    return _ipv4_literal(text)


def _ipv4_literal(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "127.0.0.1." is still an address
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        number = _ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    if not part.isascii():
        return None
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:] or "0", 16)
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        return int(lowered, 10) if lowered.isdigit() else None
    except ValueError:
        return None


def default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Which addresses deliveries may reach: public ones, plus what the operator allowed.

    `allow_private` lets through every unicast address (`delivery.allow_private_networks`, or a
    hook's own operator-set `allow_private`); `allowed_networks` lets through exactly the CIDRs it
    names. Multicast, broadcast and unspecified addresses are never allowed.
    """

    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def build(cls, allow_private_networks: bool = False, allowed_networks: Iterable[str] = ()) -> NetworkPolicy:
        """From the settings' values; `allowed_networks` are CIDR strings (host bits are ignored)."""
        networks = tuple(ipaddress.ip_network(str(n).strip(), strict=False) for n in allowed_networks)
        return cls(allow_private=allow_private_networks, allowed_networks=networks)

    @classmethod
    def from_settings(cls, delivery: DeliverySettings) -> NetworkPolicy:
        """`delivery.allow_private_networks` and `delivery.allowed_networks` as a policy."""
        return cls.build(delivery.allow_private_networks, delivery.allowed_networks)

    def for_hook(self, allow_private: bool) -> NetworkPolicy:
        """This policy, widened to every unicast address for a hook the operator marked `allow_private`."""
        return replace(self, allow_private=True) if allow_private and not self.allow_private else self

    def refusal(self, address: str | Address) -> str | None:
        """Why the policy refuses `address` (its category), or None when it may be connected to."""
        try:
            ip = parse_address(address) if isinstance(address, str) else address
        except ValueError:
            return "invalid"
        kind = category(ip)
        if kind == "public":
            return None
        if kind in ("invalid", "unspecified", "multicast", "broadcast"):
            return kind
        if self.allow_private:
            return None
        inner = embedded_ipv4(ip)
        if any(ip in net or (inner is not None and inner in net) for net in self.allowed_networks):
            return None
        return kind

    def permits(self, address: str | Address) -> bool:
        return self.refusal(address) is None

    def check(self, host: str, port: int, resolver: Resolver = system_resolver) -> list[str]:
        """Resolve `host` once and return its addresses if the policy allows every one of them.

        Connect to one of the returned addresses (with TLS still verifying `host`), never to `host`
        itself, so no second lookup can answer differently. An IP literal in any spelling is not
        resolved: its canonical form is returned. Raises `BlockedDestination` when any address is
        refused (a mix of public and private answers is refused whole) or there is none; a resolver
        failure (`OSError`) propagates: it is transient, not a policy refusal.
        """
        literal = literal_address(host)
        addresses = [str(literal)] if literal is not None else resolver(host, port)
        addresses = list(dict.fromkeys(addresses))
        if not addresses:
            raise BlockedDestination(f"{host} resolves to no address")
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                shown = "" if literal is not None else f"{host} resolves to "
                raise BlockedDestination(f"{shown}{why} address {address} is not allowed (ssrf guard)")
        return addresses

    def address_check(self, resolver: Resolver = system_resolver) -> AddressCheck:
        """`check` as delivery calls it, per hook: the hook's `allow_private` widens the policy for it."""

        def check(host: str, port: int, allow_private: bool) -> list[str]:
            return self.for_hook(allow_private).check(host, port, resolver)

        return check

    def check_url(self, url: str, resolver: Resolver = system_resolver) -> list[str]:
        """`check` for a hook URL's host and port, read by `hookd.urls` (IDNA 2008 for names); a URL
        those rules refuse is refused here too."""
        try:
            parsed = urls.parse(url)
        except urls.UrlError as exc:
            raise BlockedDestination(f"not a valid hook URL: {exc.problem}") from None
        return self.check(parsed.host, parsed.port, resolver)

    def creation_problem(self, url: str) -> str | None:
        """Why a hook URL is refused when the hook is created or changed, without any DNS lookup.

        Only what can be known without resolving is refused here: a literal non-public address, or
        a name that always means this machine (`localhost`). Other names are checked on every
        attempt, against what they resolve to then. A URL `hookd.urls` refuses gets None here: the
        field rules report it (`subscriptions.rules.url_problem`).
        """
        try:
            host = urls.parse(url).host
        except urls.UrlError:
            return None
        literal = literal_address(host)
        if literal is None and _is_local_name(host):
            literal = ipaddress.IPv4Address("127.0.0.1")  # judged as the loopback address it names
        why = None if literal is None else self.refusal(literal)
        if why is None:
            return None
        return (
            f"host {host} is not a public address ({why}: {literal}); hooks may only reach public addresses unless "
            "the operator allows it (delivery.allow_private_networks, delivery.allowed_networks, --allow-private)"
        )


def _is_local_name(host: str) -> bool:
    name = host.strip().rstrip(".").lower()
    return name in _LOCAL_NAMES or name.endswith(".localhost")
