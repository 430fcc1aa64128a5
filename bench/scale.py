"""Many devices in one process: time to start them all, resident memory, one request to each.

Each run is a fresh process (``python -m bench.scale COUNT CERTS_DIR``) so its memory is the devices'
and nothing else's. The child creates its harness CA, starts ``COUNT`` healthy FortiGates, prints
their ports and waits; this process then sends one authenticated status call to every device (a new
connection each, as a fleet of agents would), reads the child's resident memory and tells it to stop.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

from .measure import Figure, child_command, print_child_profile, rss_mb, scratch

STATUS = "/api/v2/monitor/system/status"


def child(count: int, certs_dir: Path) -> None:
    from mockfgt import FortiGate
    from mockfgt.tls import HarnessCA

    ca = HarnessCA(certs_dir)
    before = rss_mb()
    started = time.perf_counter()
    devices = [FortiGate(ca=ca).start() for _ in range(count)]
    start_s = time.perf_counter() - started
    print(json.dumps({"start_s": start_s, "rss_before_mb": before, "ca": str(ca.cert_path),
                      "devices": [{"port": d.port, "token": d.token} for d in devices]}), flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for device in devices:
        device.stop()
    print(json.dumps({"stop_s": time.perf_counter() - started}), flush=True)


def one_run(count: int, profile_to: Path | None) -> dict:
    work = scratch("scale")
    process = subprocess.Popen(child_command("bench.scale", str(count), str(work), profile_to=profile_to),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        context = ssl.create_default_context(cafile=ready["ca"])
        latencies = []
        started = time.perf_counter()
        for device in ready["devices"]:
            latencies.append(_status_call(device, context))
        requests_s = time.perf_counter() - started
        rss = rss_mb(process.pid)
        process.stdin.write("stop\n")
        process.stdin.flush()
        stopped = json.loads(process.stdout.readline())
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    return {**ready, **stopped, "rss_mb": rss, "requests_s": requests_s, "latencies": latencies}


def _status_call(device: dict, context: ssl.SSLContext) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPSConnection("127.0.0.1", device["port"], context=context, timeout=10)
    conn.request("GET", STATUS, headers={"Authorization": f"Bearer {device['token']}"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    if answer.status != 200:
        raise RuntimeError(f"device on port {device['port']} answered {answer.status}")
    return (time.perf_counter() - started) * 1000


def scale(count: int, runs: int, profile: bool = False) -> list[Figure]:
    results = []
    for i in range(runs):
        profile_to = scratch("profile") / "scale.txt" if profile and i == 0 else None
        results.append(one_run(count, profile_to))
        if profile_to is not None:
            print_child_profile(profile_to, f"{count} devices in one process")
    return [
        Figure(f"{count} devices: start all", "s", [r["start_s"] for r in results], "<= 2 s",
               note="healthy FortiGates in a new process; the first pays the Flask import"),
        Figure(f"{count} devices: resident memory", "MB", [r["rss_mb"] for r in results], "<= 300 MB",
               note=f"whole process after a request to each; before the devices: "
                    f"{results[0]['rss_before_mb']:.0f} MB"),
        Figure(f"{count} devices: one request to each", "s", [r["requests_s"] for r in results],
               note="sequential, a new TLS connection each"),
        Figure("  latency of one such request", "ms", [x for r in results for x in r["latencies"]]),
        Figure(f"{count} devices: stop all", "s", [r["stop_s"] for r in results]),
    ]


if __name__ == "__main__":
    child(int(sys.argv[1]), Path(sys.argv[2]))
