"""Clients that open a connection and then misbehave, many at once: each must be dropped in time.

Kinds: silent TCP, half a ClientHello, half a request line after the handshake, a body shorter
than declared. While all of them hold their connections, a well-formed client must be served.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from deadlines import seconds

KINDS = ("silent", "half-hello", "half-request-line", "short-body")
STATUS = "/api/v2/monitor/system/status"


@dataclass
class DropFigures:
    connections: int = 0
    dropped: Counter = field(default_factory=Counter)
    served_meanwhile: bool = False
    served_status: int | str = ""
    still_open: int = 0


def _open(device, kind: str):
    raw = socket.create_connection(("127.0.0.1", device.port), timeout=seconds(30))
    if kind == "silent":
        return raw
    if kind == "half-hello":
        raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        return raw
    tls = ssl.create_default_context(cafile=device.ca_bundle).wrap_socket(raw, server_hostname="127.0.0.1")
    if kind == "half-request-line":
        tls.sendall(b"GET /api/v2/monitor/system/st")
    else:
        tls.sendall(f"POST /api/v2/cmdb/firewall/address HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}"
                    f"\r\nContent-Length: 500\r\n\r\n{{\"name\": \"short".encode())
    return tls


def _is_dropped(sock) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True
    except (TimeoutError, OSError):
        return False


def misbehave(device, per_kind: int) -> DropFigures:
    """``per_kind`` connections of each kind at once against ``device`` (give it a short request_timeout)."""
    figures = DropFigures()
    held = [(kind, _open(device, kind)) for kind in KINDS for _ in range(per_kind)]
    figures.connections = len(held)
    try:
        answer = requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                              verify=device.ca_bundle, timeout=seconds(30))
        figures.served_status = answer.status_code
    except requests.RequestException as exc:
        figures.served_status = repr(exc)
    figures.served_meanwhile = figures.served_status == 200
    deadline = time.monotonic() + device._listener.request_timeout * 4 + seconds(10)
    for kind, sock in held:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        if _is_dropped(sock):
            figures.dropped[kind] += 1
        else:
            figures.still_open += 1
        sock.close()
    return figures
