"""The client's address, trusting ``X-Forwarded-For`` only when our own proxy sent it."""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Iterable, Mapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def forwarded_for(environ: Mapping[str, Any]) -> str | None:
    """Every ``X-Forwarded-For`` header of a WSGI request (the server joins repeated ones with commas)."""
    return environ.get("HTTP_X_FORWARDED_FOR") or None


def parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=256)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            continue  # an unreadable entry allows nothing: failing closed
    return tuple(networks)


def address_in(text: str, cidrs: Iterable[str]) -> bool:
    address = parse_address(text)
    if address is None:
        return False
    return any(address.version == network.version and address in network
               for network in parse_networks(tuple(cidrs)))


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str:
    """The right-most address not belonging to a trusted proxy.

    Everything left of it could have been written by the client, so it is never used.
    """
    trusted = tuple(trusted_proxies)
    peer = peer or ""
    if not forwarded_for or not address_in(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, trusted):
            return hop
    return hops[0] if hops else peer
