"""The listener under clients that stop half-way, reset, stop reading, exhaust descriptors or frame
bodies ambiguously (issue 13): real sockets on 127.0.0.1, real TLS, in-process and ``mockfgt serve``."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest
import requests

import mockfgt

from deadlines import seconds
from run_cli import cli_env, mockfgt_command
from stress import partial
from stress.watch import ErrorLog, Resources, settle

STATUS = "/api/v2/monitor/system/status"
ADDRESSES = "/api/v2/cmdb/firewall/address"
TIMEOUT = 0.5  # the device's request_timeout where a test waits for it to fire
WAIT = seconds(10)


@pytest.fixture
def device(make_fortigate):
    return make_fortigate(request_timeout=TIMEOUT)


def read_all(sock) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (OSError, ssl.SSLError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def addresses(device) -> set[str]:
    return set(device.state.table("root", "firewall/address"))


def get_status(device) -> int:
    return requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                        verify=device.ca_bundle, timeout=WAIT).status_code


# -- 1. a request is executed only when it arrived whole ---------------------------------------
@pytest.mark.parametrize("leave", [False, True], ids=["dropped-at-deadline", "client-leaves"])
def test_cut_requests_are_journaled_as_dropped_and_never_executed(device, leave):
    before = addresses(device)
    figures = partial.send_cut(device, 1, leave=leave)
    assert figures.executed == [] and figures.created == []
    assert figures.dropped == sum(figures.cut.values()) == len(partial.cut_requests(device))
    assert addresses(device) == before
    assert figures.healthy == {200: 1}


def test_three_cut_logins_do_not_lock_a_healthy_agent_out(device):
    # FortiOS locks a source out after admin-lockout-threshold (3) failures; a cut login is none.
    for _ in range(3):
        with partial.tls_connection(device) as sock:
            sock.sendall(partial.cut_requests(device)["login-body"])
    deadline = time.monotonic() + WAIT
    while sum(e["event"] == "dropped" for e in device.journal.events()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert get_status(device) == 200
    assert device.journal.requests(path="/logincheck") == []


def test_slowloris_is_dropped_without_locking_out_a_healthy_client(device):
    figures = partial.slowloris(device, 12, interval=0.1)
    assert figures.still_open == 0 and figures.executed == []
    assert figures.dropped == 12
    assert set(figures.healthy) == {200}


# -- 2. expected client behaviour is not an error ----------------------------------------------
def test_connect_and_reset_is_journaled_not_logged(device):
    figures = partial.resets(device, 200)
    assert figures.errors_logged == 0
    assert figures.resets_journaled == 200
    assert figures.healthy == {200: 1}


def test_stop_under_load_logs_no_error(make_fortigate):
    device = make_fortigate()
    stop = threading.Event()

    def load():  # a new connection each time: the stop finds some in their handshake, some mid-request
        while not stop.is_set():
            try:
                requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                             verify=device.ca_bundle, timeout=WAIT)
            except requests.RequestException:
                pass

    clients = [threading.Thread(target=load) for _ in range(8)]
    with ErrorLog() as errors:
        for client in clients:
            client.start()
        deadline = time.monotonic() + WAIT
        while len(device.journal.requests()) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        device.stop()
        stop.set()
        for client in clients:
            client.join(WAIT)
        time.sleep(0.2)  # connection threads finish a moment after the stop
    assert len(device.journal.requests()) >= 30
    assert len(errors) == 0, errors.describe()


class Serve:
    """``mockfgt serve`` with its stderr in a file (a pipe nobody reads would block it)."""

    def __init__(self, certs_dir, *args: str) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([*mockfgt_command(), "serve", "--port", "0", "--certs-dir", str(certs_dir),
                                         *args], text=True,
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=cli_env())
        self.banner = []
        deadline = time.monotonic() + seconds(60)
        for line in self.process.stdout:
            self.banner.append(line)
            if "Press Ctrl+C to stop." in line or time.monotonic() > deadline:
                break
        url = next(re.search(r"https://127\.0\.0\.1:(\d+)", line) for line in self.banner
                   if "https://127.0.0.1:" in line)
        self.port = int(url[1])
        self.token = next(line.split()[-1] for line in self.banner if line.strip().startswith("API token"))
        self.ca_bundle = next(line.split()[-1] for line in self.banner if line.strip().startswith("CA bundle"))
        self.url = f"https://127.0.0.1:{self.port}"

    def status(self) -> int:
        return requests.get(self.url + STATUS, headers={"Authorization": f"Bearer {self.token}"},
                            verify=self.ca_bundle, timeout=WAIT).status_code

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=seconds(30))
        self.process.stdout.close()
        self.stderr.seek(0)
        return code, self.stderr.read()


@pytest.fixture
def served(tmp_path):
    server = Serve(tmp_path)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=seconds(30))


def test_serve_prints_no_traceback_for_resets_and_a_stop_under_load(served):
    for _ in range(300):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=WAIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert served.status() == 200
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                served.status()
            except requests.RequestException:
                pass

    clients = [threading.Thread(target=load) for _ in range(6)]
    for client in clients:
        client.start()
    time.sleep(0.5)  # the load is on
    code, stderr = served.stop()
    stop.set()
    for client in clients:
        client.join(WAIT)
    assert code == 0
    assert stderr.count("Traceback") == 0, stderr[-3000:]


# -- 3. slow readers and descriptor exhaustion -------------------------------------------------
def test_a_client_that_never_reads_its_answers_is_dropped(device):
    with requests.Session() as session:  # answers of some 30 kB: a few hundred fill every buffer on the way
        for i in range(100):
            session.post(device.url + ADDRESSES, json={"name": f"wide-{i}", "subnet": f"192.0.2.{i}/32",
                                                       "comment": "x" * 255},
                         headers={"Authorization": f"Bearer {device.token}"}, verify=device.ca_bundle, timeout=WAIT)
    baseline = settle(Resources.now(), timeout=seconds(2))
    sock = partial.tls_connection(device)
    sock.settimeout(seconds(1))  # a device still reading takes a request within this
    request = f"GET {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}\r\n\r\n".encode()
    sent = 0
    try:  # pipelined requests, no answer read: the device blocks writing once every buffer is full
        while sent < 5000:
            sock.sendall(request)
            sent += 1
    except (OSError, ssl.SSLError):
        pass  # our own send blocks too: the device has stopped reading
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not any(
            "answer not taken" in e.get("reason", "") for e in device.journal.events()):
        time.sleep(0.05)
    assert any("answer not taken" in e.get("reason", "") for e in device.journal.events()), \
        f"{sent} requests sent; journal ends {device.journal.events()[-3:]}"
    sock.close()
    after = settle(baseline)
    assert after.threads <= baseline.threads
    assert get_status(device) == 200


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_out_of_descriptors_backs_off_logs_once_and_recovers(served):
    assert served.status() == 200  # warm: what a request needs is loaded
    pid = served.process.pid
    in_use = len(os.listdir(f"/proc/{pid}/fd"))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 8, in_use + 8))
    held = [socket.create_connection(("127.0.0.1", served.port), timeout=WAIT) for _ in range(30)]
    try:
        deadline = time.monotonic() + WAIT  # until the device has taken all it can
        while len(os.listdir(f"/proc/{pid}/fd")) < in_use + 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        window, used = 2.0, cpu_seconds(pid)
        time.sleep(window)
        used = cpu_seconds(pid) - used
        # A loop retrying accept() at once burns a core; backing off costs next to nothing.
        assert used < window / 4, f"{used:.2f} s of CPU in {window} s while out of descriptors"
    finally:
        for sock in held:
            sock.close()
    assert served.status() == 200  # descriptors came back: served again
    code, stderr = served.stop()
    assert code == 0
    assert stderr.count("cannot take new connections") == 1, stderr[-3000:]
    assert "Traceback" not in stderr


# -- 4. a fault never frees a port --------------------------------------------------------------
def test_a_refusing_device_keeps_its_port(make_fortigate, mockfgt_ca):
    device = make_fortigate()
    for _ in range(3):  # the device closes these first: TIME_WAIT on its port, which listen() must pass
        sock = partial.tls_connection(device)
        sock.sendall(f"GET {STATUS} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        read_all(sock)
        sock.close()
    device.use("port-closed")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", device.port), timeout=WAIT)
    with pytest.raises(OSError) as taken:  # what a second `mockfgt serve --port` does
        mockfgt.FortiGate(ca=mockfgt_ca, port=device.port)
    assert taken.value.errno == 98  # EADDRINUSE
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with other, pytest.raises(OSError):
        other.bind(("0.0.0.0", device.port))
    device.use("fgt-healthy")
    assert get_status(device) == 200


def test_a_device_that_cannot_listen_again_raises(make_fortigate):
    device = make_fortigate("port-closed")
    # What the port was open to before it was kept: another socket sharing it takes the LISTEN.
    device._listener._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with intruder:
        intruder.bind(("127.0.0.1", device.port))
        intruder.listen(1)
        with pytest.raises(OSError):
            device.use("fgt-healthy")


# -- 5. framing ----------------------------------------------------------------------------------
def test_expect_100_continue_is_answered_once(device):
    body = b'{"name": "continued", "subnet": "192.0.2.10/32"}'
    with partial.tls_connection(device) as sock:
        sock.sendall(f"POST {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = read_all(sock)
    assert answer.count(b"100 Continue") == 0 and answer.startswith(b"HTTP/1.1 200 ")
    assert "continued" in addresses(device)


BODY = b'{"name": "smuggled", "subnet": "192.0.2.11/32"}'
FRAMINGS = {
    "length-and-chunked": [b"Content-Length: %d" % len(BODY), b"Transfer-Encoding: chunked"],
    "two-lengths": [b"Content-Length: %d" % len(BODY), b"Content-Length: %d" % (len(BODY) - 1)],
    "same-length-twice": [b"Content-Length: %d" % len(BODY)] * 2,
    "plus-sign": [b"Content-Length: +%d" % len(BODY)],
    "underscore": [b"Content-Length: %s" % f"{len(BODY) // 10}_{len(BODY) % 10}".encode()],
    "hex": [b"Content-Length: 0x%x" % len(BODY)],
    "negative": [b"Content-Length: -1"],
    "gzip-coding": [b"Transfer-Encoding: gzip, chunked"],
}


@pytest.mark.parametrize("framing", FRAMINGS, ids=list(FRAMINGS))
def test_ambiguous_framing_is_refused_with_400(device, framing):
    headers = b"\r\n".join(FRAMINGS[framing])
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY) if b"chunked" in headers else BODY
    with partial.tls_connection(device) as sock:
        sock.sendall(f"POST {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}\r\n"
                     "Content-Type: application/json\r\n".encode() + headers + b"\r\n\r\n" + body)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert "smuggled" not in addresses(device)
    assert device.journal.requests() == []


def test_a_chunk_size_int_would_accept_is_refused(device):
    with partial.tls_connection(device) as sock:
        sock.sendall(f"POST {ADDRESSES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                     + b"+%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY))
        assert read_all(sock).startswith(b"HTTP/1.1 400 ")
    assert "smuggled" not in addresses(device)
