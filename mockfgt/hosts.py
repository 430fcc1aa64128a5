"""Host names in URLs and messages: an IPv6 literal goes in brackets (RFC 3986), anything else as is."""

import ipaddress


def url_host(host: str) -> str:
    """``host`` as the host part of a URL or a Host header: ``[::1]``, ``127.0.0.1``, ``fgt.example``."""
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets: ``[::1]:8443``."""
    return f"{url_host(host)}:{port}"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
