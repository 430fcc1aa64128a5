"""One accept loop per process: a device costs a socket, not a thread; stalls hold until the client leaves.

Every device of a process shares one selector thread and a bounded worker pool (mockfgt.acceptloop).
Idle keep-alive connections and stalls wait in the selector, so neither many devices nor many held
connections add threads, and a stall ends only when its client leaves, the scenario is swapped or
the device stops (reference H.7): never by a clock of its own.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time

import pytest

from mockfgt import FortiGate, acceptloop

from deadlines import seconds

STATUS = "/api/v2/monitor/system/status"
WAIT = seconds(10)
DEVICES = 60


def status(device, conn: http.client.HTTPSConnection | None = None) -> int:
    conn = conn or https(device)
    conn.request("GET", STATUS, headers={"Authorization": f"Bearer {device.token}"})
    answer = conn.getresponse()
    answer.read()
    return answer.status


def https(device) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=device.ca_bundle)
    return http.client.HTTPSConnection("127.0.0.1", device.port, context=context, timeout=WAIT)


def raw(device) -> socket.socket:
    return socket.create_connection(("127.0.0.1", device.port), timeout=WAIT)


def tls(device) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=device.ca_bundle)
    return context.wrap_socket(raw(device), server_hostname="127.0.0.1")


def closed_by_device(sock: socket.socket) -> bool:
    """True once the device closed the connection; False if it is still open after the client's wait."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def wait_for(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def journaled(device, event: str) -> int:
    return sum(e["event"] == event for e in device.journal.events())


@pytest.fixture
def fleet(mockfgt_ca):
    devices = [FortiGate(ca=mockfgt_ca) for _ in range(DEVICES)]
    yield devices
    for device in devices:
        device.begin_stop()
    for device in devices:
        device.stop()


# -- one loop for every device -----------------------------------------------------------------
def test_many_devices_share_one_loop_and_add_no_thread_each(fleet):
    before = threading.active_count()
    for device in fleet:
        device.start()
    # At most the loop's own thread, if no other device of this process had started it.
    assert threading.active_count() <= before + 1
    assert sum(t.name == "mockfgt-loop" for t in threading.enumerate()) == 1
    for device in fleet:
        assert status(device) == 200
    # Requests one after another need a worker or two, not one per device.
    assert threading.active_count() < before + DEVICES // 4
    assert sum(t.name == "mockfgt-loop" for t in threading.enumerate()) == 1


def test_idle_keep_alive_connections_hold_no_thread(fleet):
    for device in fleet:
        device.start()
    before = threading.active_count()
    kept = [https(device) for device in fleet]
    try:
        for device, conn in zip(fleet, kept):
            assert status(device, conn) == 200
        assert wait_for(lambda: all(d.connections == 1 for d in fleet))  # every one open, idle
        assert threading.active_count() < before + DEVICES // 4
        for device, conn in zip(fleet, kept):  # and each answers again on the connection it kept
            assert status(device, conn) == 200
    finally:
        for conn in kept:
            conn.close()
    assert wait_for(lambda: all(d.connections == 0 for d in fleet))


def test_stopping_one_device_leaves_the_others_serving(fleet):
    for device in fleet:
        device.start()
    kept = https(fleet[1])
    assert status(fleet[1], kept) == 200
    gone = fleet[0]
    gone.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", gone.port), timeout=WAIT)
    assert status(fleet[1], kept) == 200  # a kept-alive connection to another device survives
    kept.close()
    for device in fleet[1:]:
        assert status(device) == 200


def test_the_loop_stops_with_the_last_listener_and_starts_again(mockfgt_ca):
    # Other devices of this test session may keep the loop running; with none, it stops.
    others = acceptloop.running() is not None
    with FortiGate(ca=mockfgt_ca) as device:
        assert status(device) == 200
    if not others:
        assert acceptloop.running() is None
        assert wait_for(lambda: not any(t.name == "mockfgt-loop" for t in threading.enumerate()))
    with FortiGate(ca=mockfgt_ca) as device:
        assert status(device) == 200


# -- stalls hold until the client leaves -------------------------------------------------------
def test_a_stalled_handshake_outlasts_the_request_timeout(make_fortigate):
    """A silent device never closes by itself: the stall outlasts every deadline the device has."""
    device = make_fortigate("tls-stall", request_timeout=0.2)
    with raw(device) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello
        sock.settimeout(1.0)  # five request timeouts: still held
        assert not closed_by_device(sock)
        assert device.connections == 1
    assert wait_for(lambda: device.connections == 0)  # the client left: the device let go
    assert journaled(device, "stall-handshake") == 1
    assert journaled(device, "dropped") == 0


def test_a_stalled_response_holds_until_the_client_leaves(make_fortigate):
    device = make_fortigate("response-stall", request_timeout=0.2)
    with tls(device) as sock:
        sock.sendall(f"GET {STATUS}?access_token=secret HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {device.token}\r\n\r\n".encode())
        sock.settimeout(1.0)  # five request timeouts, and no answer
        assert not closed_by_device(sock)
        assert device.connections == 1
    assert wait_for(lambda: device.connections == 0)
    held = [e for e in device.journal.events() if e["event"] == "stall-response"]
    assert [(e["method"], e["path"]) for e in held] == [("GET", STATUS)]  # no query: it may hold a key
    assert device.journal.requests() == []  # held, never run


@pytest.mark.parametrize("scenario", ["tls-stall", "response-stall"])
def test_a_swap_or_a_stop_releases_every_held_connection_at_once(make_fortigate, scenario):
    device = make_fortigate(scenario)
    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    clients = []
    for _ in range(20):
        sock = tls(device) if scenario == "response-stall" else raw(device)
        sock.sendall(f"GET {STATUS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        clients.append(sock)
    assert wait_for(lambda: device.connections == 20)
    device.use("fgt-healthy")
    for sock in clients:
        assert closed_by_device(sock)
        sock.close()
    assert wait_for(lambda: device.connections == 0)
    assert status(device) == 200
    held = tls(device) if scenario == "response-stall" else raw(device)
    device.use(scenario)
    with held:  # a connection of the healthy plan is not a stall: untouched by the swap back
        # status()'s closed connection may still be counted until the device has seen it close.
        assert wait_for(lambda: device.connections == 1)
    assert wait_for(lambda: device.connections == 0)
    stalled = raw(device)
    assert wait_for(lambda: device.connections == 1)
    device.stop()
    with stalled:
        assert closed_by_device(stalled)
    assert wait_for(lambda: len(os.listdir("/proc/self/fd")) <= fds and threading.active_count() <= threads)


def test_held_stalls_do_not_starve_other_devices(make_fortigate):
    """More stalls than the pool has workers: a healthy device of the same process still answers."""
    stalled, healthy = make_fortigate("response-stall"), make_fortigate()
    clients = []
    try:
        for _ in range(acceptloop.MAX_WORKERS + 20):
            sock = tls(stalled)
            sock.sendall(f"GET {STATUS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            clients.append(sock)
        assert wait_for(lambda: journaled(stalled, "stall-response") == len(clients))
        assert status(healthy) == 200
    finally:
        for sock in clients:
            sock.close()
    assert wait_for(lambda: stalled.connections == 0)


def test_a_scenario_may_answer_late_instead(make_fortigate):
    """``stall_seconds`` set: the device answers after that long (only a scenario that says so)."""
    device = make_fortigate()
    device.apply({"op": "set-connection", "fault": "stall-response", "stall_seconds": 0.3})
    assert status(device) == 200
    assert [e["event"] for e in device.journal.events()][-2:] == ["stall-response", "request"]
    device.apply({"op": "set-connection", "fault": "stall-handshake", "stall_seconds": 0.3})
    assert status(device) == 200  # the handshake, late
    assert journaled(device, "stall-handshake") == 1
