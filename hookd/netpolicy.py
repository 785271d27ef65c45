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


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses, including the IPv4 forms hidden in IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(str(ip.ipv4_mapped))
        if ip.sixtofour is not None:
            return is_public(str(ip.sixtofour))
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
