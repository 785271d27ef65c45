"""Which receiver addresses hookd may connect to (the SSRF guard's policy).

By default only globally routable addresses are allowed, so an account admin cannot make hookd call
loopback services, the private network or the cloud metadata endpoint. `delivery.allow_private_networks`
lifts that for operators (and the demo and tests) whose receivers are internal.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from hookd.errors import BlockedDestination

Resolver = Callable[[str, int], list[str]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses, including the IPv4 forms hidden in IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in _NAT64 or ip in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(str(embedded))
        if ip in _NAT64_LOCAL:
            return False
    return ip.is_global and not ip.is_multicast


def check_host(host: str, port: int, resolver: Resolver = system_resolver) -> list[str]:
    """Resolve `host` and refuse it if any address is not public; return the addresses checked.

    A resolver failure (`OSError`) propagates: it is transient, not a policy refusal.
    """
    addresses = resolver(host, port)
    if not addresses:
        raise BlockedDestination(f"{host} resolves to no address")
    refused = [a for a in addresses if not is_public(a)]
    if refused:
        raise BlockedDestination(f"{host} resolves to non-public address {refused[0]}")
    return addresses
