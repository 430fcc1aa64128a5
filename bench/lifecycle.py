"""A device's life cycle in-process, and the first request a client makes to a fresh device.

- start: ``FortiGate(ca=ca).start()`` returns with the port listening (connects succeed from then on);
- swap: ``device.use(name)`` on a running device, cycling through every scenario of the catalogue
  (so certificate shapes, TLS versions and the refused port all change), by name as users call it;
- stop: ``device.stop()``; afterwards the port is bound again (without SO_REUSEADDR) to prove it is free;
- first request: TCP connect, TLS handshake and one authenticated ``GET monitor/system/status`` on a
  device started just before, with a client context made once (clients reuse theirs).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time

import mockfgt
from mockfgt.device import default_ca

from .measure import Figure, Stopwatch

STATUS = "/api/v2/monitor/system/status"


def harness_ca_figure() -> Figure:
    """The one-off cost every process pays before its first device: the harness CA."""
    watch = Stopwatch()
    with watch:
        default_ca()
    return Figure("harness CA, once per process", "ms", watch.samples, note="paid by the first device only")


def life_cycle(runs: int) -> list[Figure]:
    ca = default_ca()
    for _ in range(3):  # warm-up: imports, lazily built apps and caches
        mockfgt.FortiGate(ca=ca).start().stop()
    start, stop = Stopwatch(), Stopwatch()
    not_released = 0
    for _ in range(runs):
        with start:
            device = mockfgt.FortiGate(ca=ca).start()
        port = device.port
        with stop:
            device.stop()
        not_released += not _port_is_free(port)
    return [
        Figure("device start to ready", "ms", start.samples, "<= 5 ms"),
        Figure("device stop, port released", "ms", stop.samples, "<= 2 ms",
               note=f"port bound again afterwards: {runs - not_released}/{runs}"),
    ]


def scenario_swaps(passes: int) -> Figure:
    """``use()`` through the whole catalogue, ``passes`` times after one untimed pass."""
    names = [sc.name for sc in mockfgt.catalogue()]
    watch = Stopwatch()
    with mockfgt.Device(ca=default_ca()) as device:
        for name in names:  # warm-up pass: intermediate and private CA are made on first use
            device.use(name)
        for _ in range(passes):
            for name in names:
                with watch:
                    device.use(name)
    return Figure("scenario swap on a running device", "ms", watch.samples, "<= 2 ms",
                  note=f"cycling all {len(names)} scenarios by name")


def first_requests(runs: int) -> list[Figure]:
    ca = default_ca()
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    connect, request, total = Stopwatch(), Stopwatch(), Stopwatch()
    for _ in range(runs):
        with mockfgt.FortiGate(ca=ca) as device:
            started = time.perf_counter()
            conn = http.client.HTTPSConnection("127.0.0.1", device.port, context=client_context, timeout=5)
            with connect:
                conn.connect()
            with request:
                conn.request("GET", STATUS, headers={"Authorization": f"Bearer {device.token}"})
                answer = conn.getresponse()
                answer.read()
            total.samples.append((time.perf_counter() - started) * 1000)
            conn.close()
            if answer.status != 200:
                raise RuntimeError(f"status call answered {answer.status}")
    return [
        Figure("first request on a fresh device", "ms", total.samples, "<= 10 ms",
               note="TCP + TLS 1.3 handshake + authenticated status call"),
        Figure("  of which TCP + TLS handshake", "ms", connect.samples),
        Figure("  of which the status call", "ms", request.samples),
    ]


def _port_is_free(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def journal_entries(runs: int, per_run: int = 2000) -> Figure:
    """What a status call's journal entry costs the device: ``request_event`` + ``Journal.record``.

    The entry is made from a real status call's answer and the environ of such a request, as the
    device makes it after answering; the figure is the mean per entry over ``per_run`` entries.
    """
    from werkzeug.test import EnvironBuilder

    from mockfgt.journal import Journal, request_event

    ca = default_ca()
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    with mockfgt.FortiGate(ca=ca) as device:
        headers = {"Authorization": f"Bearer {device.token}", "Host": f"127.0.0.1:{device.port}"}
        conn = http.client.HTTPSConnection("127.0.0.1", device.port, context=client_context, timeout=5)
        conn.request("GET", STATUS, headers=headers)
        body = conn.getresponse().read()
        conn.close()
    environ = EnvironBuilder(path=STATUS, headers=headers).get_environ()
    journal = Journal()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(per_run):
            journal.record(request_event(environ, b"", 200, body, time.perf_counter()))
        samples.append((time.perf_counter() - started) / per_run * 1000)
    return Figure("journal entry of a status call", "ms", samples,
                  note=f"request_event + Journal.record, mean of {per_run} per run; {len(body)}-byte answer")
