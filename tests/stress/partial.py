"""Requests that never arrive whole, and connections reset at once: neither reaches the app or the log.

- **Cut requests**: a request line, headers or a body cut short, by the client leaving or by the
  device's deadline. Each is journaled as ``dropped`` and never executed: no request from those
  connections in the journal, nothing created, no failed login counted toward the lockout.
- **Slowloris**: many connections trickling a request a byte at a time until the deadline drops
  them. None is executed, so a healthy client from the same address is never locked out (429).
- **connect + RST** (SO_LINGER 0): each is journaled as a failed handshake, none logged as an error.

Each function takes a started device (a FortiGate: the cut requests target FortiOS paths) and
returns figures; :meth:`PartialFigures.problems` lists the invariants that broke.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from .watch import ErrorLog
from deadlines import seconds

STATUS = "/api/v2/monitor/system/status"
ADDRESSES = "/api/v2/cmdb/firewall/address"
ADMIN = "netops"  # the admin of scenarios/fgt-healthy.toml


@dataclass
class PartialFigures:
    cut: Counter = field(default_factory=Counter)  # cut requests sent, by kind
    slow: int = 0  # slowloris connections
    resets: int = 0  # connect + RST
    dropped: int = 0  # "dropped" events journaled for the cut and slow connections
    executed: list[str] = field(default_factory=list)  # requests of those connections the app answered
    created: list[str] = field(default_factory=list)  # objects the cut bodies would have created
    still_open: int = 0  # slow connections the device never dropped
    healthy: Counter = field(default_factory=Counter)  # statuses a healthy client got meanwhile and after
    resets_journaled: int = 0
    errors_logged: int = 0  # ERROR records of the mockfgt loggers (a traceback each)

    def problems(self) -> list[str]:
        found = []
        if self.executed:
            found.append(f"{len(self.executed)} incomplete requests executed: {self.executed[:5]}")
        if self.created:
            found.append(f"objects created by cut bodies: {self.created}")
        if self.still_open:
            found.append(f"{self.still_open} slow connections never dropped")
        if set(self.healthy) - {200}:
            found.append(f"a healthy client got {dict(self.healthy)}")
        if self.errors_logged:
            found.append(f"{self.errors_logged} errors logged")
        return found

    def lines(self) -> list[str]:
        return [f"{sum(self.cut.values())} cut requests ({dict(self.cut)}) and {self.slow} slowloris connections: "
                f"{self.dropped} journaled as dropped, {len(self.executed)} executed, "
                f"healthy client statuses {dict(self.healthy)}",
                f"{self.resets} connect+RST: {self.resets_journaled} journaled, {self.errors_logged} errors logged"]


# -- cut requests ------------------------------------------------------------------------------
def cut_requests(device, number: int = 0) -> dict[str, bytes]:
    """One request of each kind, cut where the kind says (the whole of each would be executed)."""
    token = device.token
    body = b'{"name": "cut-%d", "subnet": "192.0.2.9/32"}' % number
    return {
        "request-line": b"GET /api/v2/monitor/system/st",
        "headers": f"GET {STATUS} HTTP/1.1\r\nHost: x\r\nAuthoriz".encode(),
        "body": f"POST {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n".encode() + body,
        "chunked-body": f"POST {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                        f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                        + b"%x\r\n" % len(body) + body + b"\r\n",
        # A truncated password: once a failed login, three lock the address out.
        "login-body": f"POST /logincheck HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                      f"\r\nContent-Length: 100\r\n\r\nusername={ADMIN}&secretkey=Forti".encode(),
    }


def tls_connection(device, timeout: float = seconds(30)) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", device.port), timeout=timeout)
    return ssl.create_default_context(cafile=device.ca_bundle).wrap_socket(raw, server_hostname="127.0.0.1")


def is_dropped(sock) -> bool:
    """Wait (up to the socket's timeout) for the device to close; True if it did."""
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True
    except OSError:  # timed out
        return False


def healthy_status(device) -> int | str:
    try:
        return requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                            verify=device.ca_bundle, timeout=seconds(30)).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def send_cut(device, per_kind: int, *, leave: bool, figures: PartialFigures | None = None) -> PartialFigures:
    """``per_kind`` cut requests of each kind; the client leaves at once (``leave``) or waits for
    the device's deadline to drop it. Then checks what the journal and the CMDB say."""
    figures = figures or PartialFigures()
    since = _last_seq(device)
    ports = set()
    for number in range(per_kind):
        held = []
        for kind, data in cut_requests(device, number).items():
            sock = tls_connection(device)
            ports.add(sock.getsockname()[1])
            sock.sendall(data)
            figures.cut[kind] += 1
            held.append(sock)
        for sock in held:
            if not leave:
                sock.settimeout(device._listener.request_timeout * 4 + seconds(10))
                is_dropped(sock)
            sock.close()
    _wait_for_drops(device, since, ports, sum(figures.cut.values()) - figures.dropped)
    _account(device, since, ports, figures)
    figures.created += sorted(name for name in device.state.table("root", "firewall/address")
                              if name.startswith("cut-"))
    figures.healthy[healthy_status(device)] += 1
    return figures


# -- slowloris ---------------------------------------------------------------------------------
def slowloris(device, connections: int, interval: float, figures: PartialFigures | None = None) -> PartialFigures:
    """``connections`` connections each sending a request one byte every ``interval`` seconds until
    the device drops them; a healthy client asks once per round meanwhile, and once after."""
    figures = figures or PartialFigures()
    since = _last_seq(device)
    request = f"GET {STATUS} HTTP/1.1\r\nHost: x\r\nUser-Agent: {'s' * 100}\r\n\r\n".encode()
    open_ = {}
    for _ in range(connections):
        sock = tls_connection(device)
        sock.setblocking(False)
        open_[sock] = 0
    figures.slow += connections
    ports = {sock.getsockname()[1] for sock in open_}
    deadline = time.monotonic() + device._listener.request_timeout * 4 + seconds(10)
    while open_ and time.monotonic() < deadline:
        for sock, sent in list(open_.items()):
            try:
                if sock.recv(1) == b"":  # end of file: dropped
                    raise ConnectionError
            except ssl.SSLWantReadError:
                pass  # nothing yet: still open
            except (OSError, ssl.SSLError):
                sock.close()
                del open_[sock]
                continue
            if sent < len(request) - 1:  # never the last byte: the request stays incomplete
                try:
                    sock.send(request[sent:sent + 1])
                    open_[sock] = sent + 1
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
                except (OSError, ssl.SSLError):
                    sock.close()
                    del open_[sock]
        figures.healthy[healthy_status(device)] += 1
        time.sleep(interval)
    figures.still_open += len(open_)
    for sock in open_:
        sock.close()
    _wait_for_drops(device, since, ports, connections)
    _account(device, since, ports, figures)
    figures.healthy[healthy_status(device)] += 1
    return figures


# -- connect + RST -----------------------------------------------------------------------------
def resets(device, count: int, figures: PartialFigures | None = None) -> PartialFigures:
    """``count`` connections closed with a RST (SO_LINGER 0) right after connecting."""
    figures = figures or PartialFigures()
    since = _last_seq(device)
    ports = set()
    with ErrorLog() as errors:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", device.port), timeout=seconds(30))
            ports.add(sock.getsockname()[1])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        figures.resets += count
        deadline = time.monotonic() + seconds(30)
        while len(_events(device, since, ports)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        figures.healthy[healthy_status(device)] += 1
    figures.resets_journaled += len(_events(device, since, ports))
    figures.errors_logged += len(errors)
    return figures


# -- the journal -------------------------------------------------------------------------------
def _last_seq(device) -> int:
    events = device.journal.events()
    return events[-1]["seq"] if events else 0


def _events(device, since: int, ports: set[int]) -> list[dict]:
    return [e for e in device.journal.events(since) if e.get("client_port") in ports]


def _wait_for_drops(device, since: int, ports: set[int], expected: int) -> None:
    """Connection threads journal a drop a moment after the client saw it: wait for all of them."""
    deadline = time.monotonic() + seconds(10)
    while time.monotonic() < deadline:
        ended = {e["client_port"] for e in _events(device, since, ports) if e["event"] in ("dropped", "request")}
        if len(ended) >= expected:
            return
        time.sleep(0.05)


def _account(device, since: int, ports: set[int], figures: PartialFigures) -> None:
    events = _events(device, since, ports)
    figures.dropped += sum(1 for e in events if e["event"] == "dropped")
    figures.executed += [f"{e['method']} {e['path']} -> {e['status']}" for e in events if e["event"] == "request"]


def abuse(device, *, cut: int, slow: int, interval: float, resets_count: int) -> PartialFigures:
    """Everything above against one device: for ``make stress``."""
    figures = PartialFigures()
    with ErrorLog() as errors:
        send_cut(device, cut, leave=True, figures=figures)
        send_cut(device, max(1, cut // 10), leave=False, figures=figures)
        slowloris(device, slow, interval, figures=figures)
    resets(device, resets_count, figures=figures)
    figures.errors_logged += len(errors)
    return figures
