"""Small pieces both emulated kinds use: random keys, firmware versions, source-address networks.

Each kind decides the shapes (a FortiOS key is 30 mixed-case characters, a FortiManager one 32
lowercase); the mechanics live here once.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import UTC, datetime

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def random_key(length: int, alphabet: str) -> str:
    """``length`` characters drawn from ``alphabet`` with the secrets module's randomness.

    One read of the system's random source for the whole key (a key per device is on the path of
    every start and swap); 16 bits per character keep the modulo's bias below 0.1 %."""
    raw = secrets.token_bytes(2 * length)
    return "".join(alphabet[int.from_bytes(raw[i:i + 2], "big") % len(alphabet)] for i in range(0, 2 * length, 2))


def parse_version(text: str) -> tuple[int, int, int]:
    """'7.4.5' or 'v7.4' as (7, 4, 5) or (7, 4, 0)."""
    parts = [int(p) for p in text.lstrip("v").split(".")]
    return tuple((parts + [0, 0, 0])[:3])  # type: ignore[return-value]


def parse_network(value: object) -> Network:
    """A network as the devices write one: '10.0.0.0/8', '10.0.0.0 255.0.0.0', a bare address, or the
    JSON-RPC pair ``["10.0.0.0", "255.0.0.0"]``. ValueError for anything else."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        text = f"{value[0]}/{value[1]}"
    elif isinstance(value, str):
        text = "/".join(value.split())
    else:
        raise ValueError(f"{value!r} is not an address with a mask")
    return ipaddress.ip_network(text, strict=False)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date and time ('2026-01-05T09:00:00', a 'Z' or an offset allowed) in UTC; naive
    means UTC. ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def source_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client's address as a trusted-host check sees it: no zone, an IPv4-mapped IPv6 address as
    the IPv4 address it carries (a dual-stack listener reports IPv4 clients that way)."""
    ip = ipaddress.ip_address(peer.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip
