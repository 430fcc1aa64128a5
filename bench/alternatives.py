"""What users would pick instead, side by side in the same run: pytest-httpserver's HTTPS server.

pytest-httpserver (the ``bench`` extra) is the usual way to fake an HTTPS API in a pytest suite. Here
it serves the device's status answer (the same JSON bytes) with the same certificate shape and server
context settings as a device, ``threaded=True`` so that it can keep connections alive. Both are
measured in this process, alternately, run for run:

- start: ``HTTPServer(ssl_context=...).start()`` next to ``FortiGate(ca=ca).start()``;
- first request: TCP connect, TLS handshake and one ``GET`` of the status call on the server just
  started (the device's with its token), with a client context made once;
- stop: ``.stop()`` on each (pytest-httpserver's ``serve_forever`` notices a shutdown at its next poll);

then keep-alive throughput of the same JSON answer, each server in its own process, with the clients
of :mod:`bench.throughput` (rounds alternate between the two). Ratios are per run or per round.

    python -m bench.alternatives httpserver CERTS_DIR BODY_FILE   the throughput server (a child process)
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import sys
from contextlib import ExitStack
from pathlib import Path

from .measure import Figure, Stopwatch, scratch

STATUS = "/api/v2/monitor/system/status"


def _httpserver(context: ssl.SSLContext, body: bytes):
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context, threaded=True)
    server.expect_request(STATUS).respond_with_data(body, content_type="application/json")
    return server


def _device_like_context(ca, folder: Path) -> ssl.SSLContext:
    """The certificate shape and server context settings of a healthy device, from ``ca``."""
    from mockfgt.tls import server_tls

    return server_tls(ca, folder, shape="valid", versions=["TLSv1.2", "TLSv1.3"], client_certificate=False,
                      hostname="fgt-mock", serial="FGVM02TM24000001", kind="fortigate").context


def life_cycles(runs: int) -> list[Figure]:
    import mockfgt
    from mockfgt.device import default_ca

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request would be measured too
    ca = default_ca()
    server_context = _device_like_context(ca, scratch("alternatives"))
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    with mockfgt.FortiGate(ca=ca) as device:  # the answer both serve
        body = _status_body(device.port, client, {"Authorization": f"Bearer {device.token}"})
    watches = {name: (Stopwatch(), Stopwatch(), Stopwatch()) for name in ("mockfgt", "httpserver")}
    for i in range(runs + 2):  # two warm-up runs each: imports, lazily built apps and caches
        for name in ("mockfgt", "httpserver"):
            start, first, stop = watches[name] if i >= 2 else (Stopwatch(), Stopwatch(), Stopwatch())
            if name == "mockfgt":
                with start:
                    device = mockfgt.FortiGate(ca=ca).start()
                with first:
                    _status_body(device.port, client, {"Authorization": f"Bearer {device.token}"})
                with stop:
                    device.stop()
            else:
                server = _httpserver(server_context, body)
                with start:
                    server.start()
                with first:
                    _status_body(server.port, client, {})
                with stop:
                    server.stop()
    ours, theirs = watches["mockfgt"], watches["httpserver"]
    note = "pytest-httpserver's time / mockfgt's, run for run"
    return [
        Figure("pytest-httpserver HTTPS: start", "ms", theirs[0].samples, note="threaded, device-like TLS context"),
        Figure("  mockfgt device: start", "ms", ours[0].samples),
        Figure("  ratio: mockfgt faster by", "x", _ratios(theirs[0].samples, ours[0].samples), note=note),
        Figure("pytest-httpserver HTTPS: first request", "ms", theirs[1].samples,
               note="TCP + TLS handshake + GET of the same JSON"),
        Figure("  mockfgt device: first request", "ms", ours[1].samples, note="the authenticated status call"),
        Figure("  ratio: mockfgt faster by", "x", _ratios(theirs[1].samples, ours[1].samples), note=note),
        Figure("pytest-httpserver HTTPS: stop", "ms", theirs[2].samples, note="its serve_forever polls every 0.5 s"),
        Figure("  mockfgt device: stop", "ms", ours[2].samples),
        Figure("  ratio: mockfgt faster by", "x", _ratios(theirs[2].samples, ours[2].samples), note=note),
    ]


def throughputs(rounds: int, seconds: float) -> list[Figure]:
    from .throughput import CLIENT_THREADS, Server, run_round

    work = scratch("alternatives-throughput")
    with ExitStack() as stack:
        device = Server(stack, ["mockfgt", str(work / "device")])
        body_file = work / "status.json"
        conn = device.connection()
        conn.request("GET", STATUS, headers=device.headers)
        body_file.write_bytes(conn.getresponse().read())
        conn.close()
        theirs = Server(stack, ["httpserver", str(work / "httpserver"), str(body_file)], module="bench.alternatives")
        stats: dict[str, tuple[list[float], list[float], int, int]] = {"mockfgt": ([], [], 0, 0), "httpserver": ([], [], 0, 0)}
        for _ in range(rounds):
            for name, server in (("mockfgt", device), ("httpserver", theirs)):
                done, connects, latencies = run_round(server, seconds)
                rates, lats, total, conns = stats[name]
                stats[name] = ([*rates, done / seconds], [*lats, *latencies], total + done, conns + connects)
    ours, other = stats["mockfgt"], stats["httpserver"]
    return [
        Figure("pytest-httpserver HTTPS: keep-alive throughput", "req/s", other[0],
               note=f"{CLIENT_THREADS} client threads; {other[3]} connections for {other[2]} requests"),
        Figure("  latency per request", "ms", other[1]),
        Figure("  mockfgt device, same clients", "req/s", ours[0],
               note=f"{ours[3]} connections for {ours[2]} requests (status call, authenticated)"),
        Figure("  ratio: mockfgt / pytest-httpserver", "x", _ratios(ours[0], other[0]), note="per round"),
    ]


def _status_body(port: int, context: ssl.SSLContext, headers: dict) -> bytes:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("GET", STATUS, headers=headers)
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    if answer.status != 200:
        raise RuntimeError(f"status call answered {answer.status}")
    return body


def _ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerators, denominators) if b > 0]


def serve_httpserver(certs_dir: Path, body_file: Path) -> None:
    """The throughput server: pytest-httpserver with a device-like context, until stdin closes."""
    from mockfgt.tls import HarnessCA

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    ca = HarnessCA(certs_dir)
    server = _httpserver(_device_like_context(ca, certs_dir / "server"), body_file.read_bytes())
    server.start()
    print(json.dumps({"port": server.port, "ca": str(ca.cert_path)}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] != ["httpserver"]:
        raise SystemExit(__doc__)
    serve_httpserver(Path(sys.argv[2]), Path(sys.argv[3]))
