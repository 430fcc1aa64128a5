"""Who may use the API: API keys as the device makes them, and trusted-host checks."""

from __future__ import annotations

import ipaddress
import string

from ..kernel import parse_network, random_key, source_address

TOKEN_ALPHABET = string.ascii_letters + string.digits


def new_token() -> str:
    """An API key shaped like the device's: 30 characters of [A-Za-z0-9]."""
    return random_key(30, TOKEN_ALPHABET)


def trusted(trusthosts: list[ipaddress.IPv4Network | ipaddress.IPv6Network], address: str) -> bool:
    """Whether ``address`` may connect: any source when there are no entries, else one must hold it."""
    if not trusthosts:
        return True
    ip = source_address(address)
    return any(ip in net for net in trusthosts if net.version == ip.version)


def parse_trusthost(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Accept '10.0.0.0/8', '10.0.0.0 255.0.0.0' or a bare address; 0.0.0.0/0 is refused as on the device."""
    net = parse_network(text)
    if net.prefixlen == 0:
        raise ValueError("allow-all (0.0.0.0/0 or ::/0) is not allowed for REST API users")
    return net
