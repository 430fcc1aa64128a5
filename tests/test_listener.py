"""The listener: keep-alive HTTP/1.1 over per-connection TLS, bodies read whole, faults survived."""

from __future__ import annotations

import socket
import ssl

import httpx
import requests

from deadlines import seconds

STATUS = "/api/v2/monitor/system/status"
ADDRESSES = "/api/v2/cmdb/firewall/address"


def connections(device) -> int:
    return len({e["client_port"] for e in device.journal.events()})


def test_requests_session_reuses_one_connection(fortigate):
    with requests.Session() as session:
        session.verify = fortigate.ca_bundle
        session.headers["Authorization"] = f"Bearer {fortigate.token}"
        answers = [session.get(fortigate.url + STATUS) for _ in range(5)]
        answers.append(session.post(fortigate.url + ADDRESSES, json={"name": "ka", "subnet": "192.0.2.7/32"}))
        answers.append(session.get(fortigate.url + ADDRESSES + "/ka"))
    assert [a.status_code for a in answers] == [200] * 7
    assert "close" not in answers[0].headers.get("Connection", "")
    assert connections(fortigate) == 1


def test_httpx_client_reuses_one_connection(fortigate):
    ctx = ssl.create_default_context(cafile=fortigate.ca_bundle)
    with httpx.Client(verify=ctx, headers={"Authorization": f"Bearer {fortigate.token}"}, trust_env=False) as client:
        codes = [client.get(fortigate.url + STATUS).status_code for _ in range(5)]
    assert codes == [200] * 5 and connections(fortigate) == 1


def test_chunked_body_is_read_whole_and_the_connection_stays_usable(fortigate):
    with requests.Session() as session:
        session.verify = fortigate.ca_bundle
        session.headers["Authorization"] = f"Bearer {fortigate.token}"
        body = (part for part in (b'{"name": "chunked", ', b'"subnet": "192.0.2.8/32"}'))
        created = session.post(fortigate.url + ADDRESSES, data=body, headers={"Content-Type": "application/json"})
        listed = session.get(fortigate.url + ADDRESSES + "/chunked")
    assert created.status_code == 200 and listed.json()["results"][0]["name"] == "chunked"
    assert fortigate.requests[0]["headers"].get("Transfer-Encoding") == "chunked"
    assert connections(fortigate) == 1


def test_unread_oversized_body_closes_the_connection(fortigate):
    raw = _tls_socket(fortigate)
    raw.sendall(f"POST {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fortigate.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {17 * 1024 * 1024}\r\n\r\n".encode())
    answer = _read_all(raw)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer


def test_a_client_that_sends_nothing_does_not_block_others(fortigate):
    idle = socket.create_connection(("127.0.0.1", fortigate.port))
    try:
        answer = requests.get(fortigate.url + STATUS, headers={"Authorization": f"Bearer {fortigate.token}"},
                              verify=fortigate.ca_bundle, timeout=seconds(5))
        assert answer.status_code == 200
    finally:
        idle.close()


def _tls_socket(device) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=device.ca_bundle)
    sock = socket.create_connection(("127.0.0.1", device.port), timeout=seconds(5))
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def _read_all(sock) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_finished_connections_release_their_descriptors(fortigate):
    import os
    import time

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    headers = {"Authorization": f"Bearer {fortigate.token}"}
    requests.get(fortigate.url + STATUS, headers=headers, verify=fortigate.ca_bundle, timeout=seconds(5))
    baseline = open_fds()
    for _ in range(30):
        requests.get(fortigate.url + STATUS, headers=headers, verify=fortigate.ca_bundle, timeout=seconds(5))
    deadline = time.monotonic() + seconds(5)  # server threads finish closing just after the client reads
    while open_fds() > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert open_fds() <= baseline + 2


def test_status_lines_carry_the_reason_phrases_httpsd_writes(fortigate):
    sock = _tls_socket(fortigate)
    sock.sendall(f"GET {ADDRESSES}/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fortigate.token}\r\n"
                 "Connection: close\r\n\r\n".encode())
    assert _read_all(sock).startswith(b"HTTP/1.1 404 Not Found\r\n")
