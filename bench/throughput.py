"""Keep-alive HTTPS throughput of the status call: a mock FortiGate next to bare Werkzeug.

Both servers run in their own processes (:mod:`bench.servers`); this process runs the clients:
``CLIENT_THREADS`` threads, each with one ``http.client.HTTPSConnection`` that it keeps as long as
the server does, sending ``GET /api/v2/monitor/system/status`` for ``seconds`` per round. Rounds
alternate between the servers so drift on the machine hits both alike.

The two servers behave differently on the wire, and the table says so: the device keeps connections
alive (one TLS handshake per client thread), Werkzeug's server answers ``Connection: close`` to
every request, so its clients pay a TCP connect and a TLS handshake per request. Two more runs make
like-for-like comparisons: the device with clients that ask for ``Connection: close`` (a handshake
per request, as with Werkzeug) next to Werkzeug with TCP_NODELAY set (Werkzeug writes headers and
body separately, so without it the body waits for the client's delayed ACK), and the trivial WSGI
function on the device's own listener (the ceiling of the device's socket layer, keep-alive).
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import threading
import time
from contextlib import ExitStack

from .measure import Figure, child_command, sampled, scratch

STATUS = "/api/v2/monitor/system/status"
CLIENT_THREADS = 4


class CountingConnection(http.client.HTTPSConnection):
    """An HTTPS connection that counts how often it had to connect (once per server-side close)."""

    connects = 0

    def connect(self) -> None:
        self.connects += 1
        super().connect()


class Server:
    """A benchmark server process; ``info`` is the JSON line it printed when ready."""

    def __init__(self, stack: ExitStack, args: list[str], module: str = "bench.servers") -> None:
        self.process = subprocess.Popen(child_command(module, *args),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        stack.callback(self.close)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark server {args[0]} did not start")
        self.info = json.loads(line)
        self.context = ssl.create_default_context(cafile=self.info["ca"])
        self.headers = {"Authorization": f"Bearer {self.info['token']}"} if "token" in self.info else {}

    def connection(self) -> CountingConnection:
        return CountingConnection("127.0.0.1", self.info["port"], context=self.context, timeout=10)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def run_round(server: Server, seconds: float, close_each: bool = False) -> tuple[int, int, list[float]]:
    """Every client thread sends requests for ``seconds``: (requests, connections, latencies in ms).

    ``close_each`` makes the client ask for ``Connection: close``, as Werkzeug's server imposes.
    """
    headers = {**server.headers, "Connection": "close"} if close_each else server.headers
    results: list[tuple[int, int, list[float]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENT_THREADS)

    def client() -> None:
        conn, latencies = server.connection(), []
        barrier.wait()
        deadline = time.perf_counter() + seconds
        while (started := time.perf_counter()) < deadline:
            conn.request("GET", STATUS, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"status call answered {answer.status}")
            latencies.append((time.perf_counter() - started) * 1000)
        conn.close()
        with lock:
            results.append((len(latencies), conn.connects, latencies))

    threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(results) != CLIENT_THREADS:
        raise RuntimeError("a client thread failed")
    return (sum(r[0] for r in results), sum(r[1] for r in results), [x for r in results for x in r[2]])


def status_body(server: Server) -> bytes:
    conn = server.connection()
    conn.request("GET", STATUS, headers=server.headers)
    body = conn.getresponse().read()
    conn.close()
    return body


def throughput(rounds: int, seconds: float, profile: bool = False) -> list[Figure]:
    work = scratch("throughput")
    with ExitStack() as stack:
        device = Server(stack, ["mockfgt", str(work / "device")])
        body_file = work / "status.json"
        body_file.write_bytes(status_body(device))
        bare = Server(stack, ["werkzeug", str(work / "bare"), str(body_file)])
        nodelay = Server(stack, ["werkzeug-nodelay", str(work / "nodelay"), str(body_file)])
        trivial = Server(stack, ["listener", str(work / "listener"), str(body_file)])
        runs = {"mockfgt": (device, False), "bare": (bare, False), "mockfgt-close": (device, True),
                "nodelay": (nodelay, False), "listener": (trivial, False)}
        stats = {name: ([], [], 0, 0) for name in runs}
        with sampled(device.process.pid, profile, "mockfgt device process during the throughput rounds"):
            for _ in range(rounds):
                for name, (server, close_each) in runs.items():
                    done, connects, latencies = run_round(server, seconds, close_each)
                    rates, lats, total, conns = stats[name]
                    rates.append(done / seconds)
                    lats.extend(latencies)
                    stats[name] = (rates, lats, total + done, conns + connects)
    return _figures(stats)


def _figures(stats: dict) -> list[Figure]:
    ours, closing, bare, trivial = stats["mockfgt"], stats["mockfgt-close"], stats["bare"], stats["listener"]
    nodelay = stats["nodelay"]
    threads = f"{CLIENT_THREADS} client threads"

    def connections(run) -> str:
        return f"{run[3]} connections for {run[2]} requests"

    return [
        Figure("keep-alive throughput, mockfgt device", "req/s", ours[0],
               note=f"{threads}; {connections(ours)}: kept alive"),
        Figure("  latency per request", "ms", ours[1]),
        Figure("throughput, bare Werkzeug threaded TLS", "req/s", bare[0],
               note=f"{threads}; {connections(bare)}: it answers Connection: close"),
        Figure("  latency per request", "ms", bare[1]),
        Figure("throughput ratio mockfgt / bare", "x", _ratios(ours[0], bare[0]), ">= 0.7",
               note="per round: what a client sees from each server"),
        Figure("mockfgt, client sends Connection: close", "req/s", closing[0],
               note=f"{threads}; {connections(closing)}: like for like with Werkzeug"),
        Figure("  latency per request", "ms", closing[1]),
        Figure("  ratio to bare Werkzeug", "x", _ratios(closing[0], bare[0]), note="per round, a handshake per request each"),
        Figure("bare Werkzeug with TCP_NODELAY", "req/s", nodelay[0],
               note=f"{threads}; {connections(nodelay)}: without the delayed-ACK wait on the body"),
        Figure("  latency per request", "ms", nodelay[1]),
        Figure("  ratio mockfgt (Connection: close) / this", "x", _ratios(closing[0], nodelay[0]),
               note="per round, a handshake per request each"),
        Figure("trivial WSGI on mockfgt's listener", "req/s", trivial[0],
               note=f"{threads}; {connections(trivial)}: the device's ceiling"),
        Figure("  latency per request", "ms", trivial[1]),
        Figure("  ratio mockfgt device / this", "x", _ratios(ours[0], trivial[0]),
               note="what Flask, the emulation and the journal leave"),
    ]


def _ratios(ours: list[float], theirs: list[float]) -> list[float]:
    return [a / b for a, b in zip(ours, theirs)]
