"""Clients that misbehave are dropped within the device's request timeout; everyone else is served."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time

import pytest
import requests

from deadlines import seconds

STATUS = "/api/v2/monitor/system/status"
TIMEOUT = 0.5  # the device's request_timeout in these tests
WAIT = seconds(10)  # how long a test waits for the device to drop a client before calling it a failure


@pytest.fixture
def device(make_fortigate):
    return make_fortigate(request_timeout=TIMEOUT)


def raw(device) -> socket.socket:
    return socket.create_connection(("127.0.0.1", device.port), timeout=WAIT)


def tls(device) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=device.ca_bundle)
    return ctx.wrap_socket(raw(device), server_hostname="127.0.0.1")


def dropped(sock) -> bool:
    """True once the device closed the connection (end of file or reset)."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def served(device) -> bool:
    answer = requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                          verify=device.ca_bundle, timeout=WAIT)
    return answer.status_code == 200


def test_silent_client_is_dropped(device):
    with raw(device) as sock:
        assert served(device)
        assert dropped(sock)
    assert any(e["event"] == "dropped" for e in device.journal.events())


def test_half_a_handshake_is_dropped_and_others_are_served(device):
    with raw(device) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
        assert served(device)
        assert dropped(sock)


def test_aborted_handshake_leaves_the_device_serving(device):
    for _ in range(20):
        sock = raw(device)
        sock.sendall(b"\x16\x03\x01\x00\x05hello")
        sock.close()
    assert served(device)


def test_half_a_request_is_dropped(device):
    with tls(device) as sock:
        sock.sendall(b"GET /api/v2/monitor/system/status HTTP/1.1\r\nHost:")
        assert dropped(sock)


def test_headers_one_byte_at_a_time_are_dropped(device):
    request = f"GET {STATUS} HTTP/1.1\r\nHost: x\r\nX-Slow: {'a' * 200}\r\n\r\n".encode()
    with tls(device) as sock:
        sock.settimeout(0.05)
        started = time.monotonic()
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (OSError, ssl.SSLError):
                break  # the device closed the connection under us: dropped
            if dropped(sock) or time.monotonic() - started > WAIT:
                break
        assert time.monotonic() - started < WAIT, "a trickling client was never dropped"
    assert served(device)


def test_disconnect_mid_body_changes_nothing(device):
    before = dict(device.state.table("root", "firewall/address"))
    with tls(device) as sock:
        sock.sendall(f"POST /api/v2/cmdb/firewall/address HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {device.token}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 1000\r\n\r\n{{\"name\": \"half\"".encode())
    assert served(device)
    assert device.state.table("root", "firewall/address") == before


def test_threads_and_descriptors_return_to_baseline_after_a_storm(device):
    served(device)
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    storm = []
    for i in range(30):
        sock = raw(device)
        if i % 3 == 0:
            sock.sendall(b"\x16\x03\x01\x00")  # stuck in the handshake
        elif i % 3 == 1:
            sock.close()  # gone at once
            continue
        storm.append(sock)
    assert served(device)
    for sock in storm:
        assert dropped(sock)
        sock.close()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and (
        threading.active_count() > threads or len(os.listdir("/proc/self/fd")) > fds
    ):
        time.sleep(0.05)
    assert threading.active_count() <= threads
    assert len(os.listdir("/proc/self/fd")) <= fds
