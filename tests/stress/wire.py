"""Sending requests byte for byte over real TLS, for the requests that client libraries refuse to send.

:class:`Wire` keeps one TLS connection alive across requests (reconnecting when the device closes
it), writes each request exactly as given and reads the answer with ``http.client``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass, field

from deadlines import seconds

TIMEOUT = seconds(10)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")


@dataclass
class Wire:
    """A keep-alive TLS connection to ``device`` trusting only the harness CA."""

    device: object
    timeout: float = TIMEOUT
    connections: int = 0
    _sock: ssl.SSLSocket | None = field(default=None, repr=False)

    def connect(self) -> ssl.SSLSocket:
        ctx = ssl.create_default_context(cafile=self.device.ca_bundle)
        raw = socket.create_connection(("127.0.0.1", self.device.port), timeout=self.timeout)
        self.connections += 1
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def exchange(self, request: bytes, method: bytes = b"GET") -> Answer | None:
        """Send ``request`` and read one answer; None when the device closed without one.

        A keep-alive connection the device closed while idle is reopened once before giving up.
        """
        for attempt in range(2):
            fresh = self._sock is None
            if fresh:
                self._sock = self.connect()
            try:
                self._sock.sendall(request)
                answer = self.read(self._sock, method)
            except (OSError, http.client.HTTPException):
                self.close()
                if fresh or attempt:
                    return None
                continue
            if answer.headers.get("connection", "").lower() == "close":
                self.close()
            return answer
        return None

    @staticmethod
    def read(sock: ssl.SSLSocket, method: bytes) -> Answer:
        response = http.client.HTTPResponse(sock, method=method.decode("latin-1"))
        response.begin()  # skips a "100 Continue"
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


def one_shot(device, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Open a TLS connection, send ``data``, half-close and read until the device closes; what came back."""
    ctx = ssl.create_default_context(cafile=device.ca_bundle)
    chunks = []
    with socket.create_connection(("127.0.0.1", device.port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            try:
                sock.sendall(data)
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except (OSError, ssl.SSLError):
                pass  # the device reset or dropped us: what arrived before counts
    return b"".join(chunks)


def build(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None,
          *, claimed_length: int | None = None) -> bytes:
    """An HTTP/1.1 request: Host first, then ``headers``, Content-Length for a body (or as claimed)."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    if claimed_length is not None:
        lines.append(b"Content-Length: " + str(claimed_length).encode())
    elif body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
