"""Host names in URLs and messages: an IPv6 literal goes in brackets (RFC 3986), anything else as is."""


def url_host(host: str) -> str:
    """``host`` as the host part of a URL or a Host header: ``[::1]``, ``127.0.0.1``, ``fgt.example``."""
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets: ``[::1]:8443``."""
    return f"{url_host(host)}:{port}"
