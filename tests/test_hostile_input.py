"""Hostile input over real TLS: random requests to both surfaces, bytes that are not HTTP, oversized bodies.

The property-based part lives in :mod:`stress.fuzz` so that ``make stress`` runs the same checks
with many more examples; here each surface gets a quick, reproducible run.
"""

from __future__ import annotations

import json
import time

import pytest

import mockfgt
from mockfgt.bodies import MAX_BODY

from deadlines import seconds
from stress import fuzz
from stress.watch import ErrorLog
from stress.wire import Wire, build, one_shot

OVERSIZE = 17 * 1024 * 1024
PAUSE_AT = MAX_BODY + 512 * 1024  # past the limit, chunk framing included


# The garbage tests wait for each keep-alive connection to be closed idle, so these devices close
# them after 2 s; their requests are small (bodies up to 2 MB).
@pytest.fixture(scope="module")
def fuzz_fortigate(mockfgt_ca):
    with mockfgt.FortiGate(fuzz.FORTIGATE_SCENARIO, ca=mockfgt_ca, request_timeout=2.0) as device:
        yield device


@pytest.fixture(scope="module")
def fuzz_fortimanager(mockfgt_ca):
    with mockfgt.FortiManager(fuzz.FORTIMANAGER_SCENARIO, ca=mockfgt_ca, request_timeout=2.0) as device:
        yield device


# A 17 MiB body must reach the device, and be swallowed, within its request_timeout: on a busy
# machine that is no 2 s job, and nothing here waits for an idle close.
@pytest.fixture(scope="module")
def big_body_fortigate(mockfgt_ca):
    with mockfgt.FortiGate(fuzz.FORTIGATE_SCENARIO, ca=mockfgt_ca, request_timeout=seconds(10)) as device:
        yield device


@pytest.fixture(scope="module")
def big_body_fortimanager(mockfgt_ca):
    with mockfgt.FortiManager(fuzz.FORTIMANAGER_SCENARIO, ca=mockfgt_ca, request_timeout=seconds(10)) as device:
        yield device


def test_random_fortios_requests(fuzz_fortigate):
    figures = fuzz.fuzz(fuzz_fortigate, fuzz.FORTIOS)
    assert figures.requests == fuzz.PROFILES["test"].max_examples and figures.unhandled == 0
    assert figures.refused > 0 and figures.accepted > 0  # both sides of the surface were reached


def test_random_jsonrpc_requests(fuzz_fortimanager):
    figures = fuzz.fuzz(fuzz_fortimanager, fuzz.FORTIMANAGER)
    assert figures.requests == fuzz.PROFILES["test"].max_examples and figures.unhandled == 0
    assert figures.statuses[200] > 0


@pytest.mark.parametrize("surface", ["fortigate", "fortimanager"])
def test_bytes_that_are_not_http(surface, fuzz_fortigate, fuzz_fortimanager):
    device, kind = (fuzz_fortigate, fuzz.FORTIOS) if surface == "fortigate" else (fuzz_fortimanager, fuzz.FORTIMANAGER)
    figures = fuzz.throw_garbage(device, kind)
    assert figures.requests >= 20 and figures.unhandled == 0
    assert figures.statuses["400"] > 0  # answered as a web server answers, not silently dropped


def _post(device, path: bytes, body_head: bytes, *, chunked: bool, pause: float = 0.0) -> bytes:
    """A POST of OVERSIZE bytes, declared by length or sent in chunks; the answer.

    With ``pause``, the client stops for that long once past the limit (while the device swallows
    the rest), as an upload from a busy machine or over a slow link does.
    """
    headers = [(b"Authorization", f"Bearer {device.token}".encode()), (b"Content-Type", b"application/json")]
    filler = body_head + b" " * (OVERSIZE - len(body_head))
    if chunked:
        headers.append((b"Transfer-Encoding", b"chunked"))
        step = 1 << 20
        body = b"".join(b"%x\r\n" % len(filler[i:i + step]) + filler[i:i + step] + b"\r\n"
                        for i in range(0, len(filler), step)) + b"0\r\n\r\n"
        request = build(b"POST", path, headers, None) + body
    else:
        request = build(b"POST", path, headers, filler)
    wire = Wire(device)
    try:
        if pause:
            sock = wire.connect()
            sock.sendall(request[:PAUSE_AT])
            time.sleep(pause)
            sock.sendall(request[PAUSE_AT:])
            answer = wire.read(sock, b"POST")
            sock.close()
        else:
            answer = wire.exchange(request, b"POST")
    finally:
        wire.close()
    assert answer is not None, "no answer to an oversized body"
    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_bodies_are_refused_as_the_devices_refuse_them(big_body_fortigate, big_body_fortimanager, chunked):
    fortigate, fortimanager = big_body_fortigate, big_body_fortimanager
    with ErrorLog() as errors:
        before = fuzz.fortios_snapshot(fortigate.state)
        fgt = _post(fortigate, b"/api/v2/cmdb/firewall/address", b'{"name": "huge", "comment": "', chunked=chunked)
        fmg = _post(fortimanager, b"/jsonrpc", b'{"method": "add", "params": [', chunked=chunked)
    assert fgt.status == 413 and json.loads(fgt.body)["http_status"] == 413  # FortiOS: its JSON envelope
    assert fmg.status == 413 and b"Request Entity Too Large" in fmg.body  # FortiManager: httpsd's page
    assert fuzz.fortios_snapshot(fortigate.state) == before
    assert len(errors) == 0, errors.describe()
    assert fuzz.fortios_healthy(Wire(fortigate), fortigate)
    assert fuzz.fortimanager_healthy(Wire(fortimanager), fortimanager)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_pause_in_an_oversized_upload_still_gets_the_answer(big_body_fortigate, chunked):
    """The device swallows the rest of a refused body across a pause, as Apache's lingering close
    does; closing during it would reset the connection under the 413 (what a busy CI machine saw)."""
    answer = _post(big_body_fortigate, b"/api/v2/cmdb/firewall/address", b'{"name": "huge", "comment": "',
                   chunked=chunked, pause=0.5)
    assert answer.status == 413 and json.loads(answer.body)["http_status"] == 413


@pytest.fixture(scope="module")
def quick_fortimanager(mockfgt_ca):
    """Idle keep-alive connections close after 0.3 s, so a request that is whole does not hold the test."""
    with mockfgt.FortiManager(ca=mockfgt_ca, request_timeout=0.3) as device:
        yield device


@pytest.mark.parametrize("data", fuzz.GARBAGE, ids=range(len(fuzz.GARBAGE)))
def test_each_known_malformed_request(quick_fortimanager, data):
    """The listener's share (request line, headers, framing) is the same for both kinds: one device suffices."""
    with ErrorLog() as errors:
        answer = one_shot(quick_fortimanager, data)
    assert len(errors) == 0, errors.describe()
    status = answer[9:12] if answer.startswith(b"HTTP/1.1 ") else b""
    assert answer == b"" or (status and not b"500" <= status <= b"504"), answer[:200]  # never an internal error
    assert b"Traceback" not in answer
    assert fuzz.fortimanager_healthy(Wire(quick_fortimanager), quick_fortimanager)
