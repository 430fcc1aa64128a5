"""Many devices in one process: time to start them all, resident memory, one request to each, stop.

Each run is a fresh process (``python -m bench.scale COUNT CERTS_DIR``) so its memory is the devices'
and nothing else's. The child creates its harness CA, starts ``COUNT`` healthy FortiGates, prints
their ports and waits; this process then sends one authenticated status call to every device (a new
connection each, as a fleet of agents would), reads the child's resident memory and threads and
tells it to stop them all. The child then starts a FortiManager that manages ``COUNT`` FortiGates;
this process lists them (``/dvmdb/adom/root/device``) and proxies a status call to every one of them
(``/sys/proxy/json`` to the group ``All_FortiGate``).

Every device of the child shares one accept loop (mockfgt.acceptloop): the thread count printed
stays a handful however many devices run.
"""

from __future__ import annotations

import http.client
import json
import resource
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from .measure import Figure, child_command, print_child_profile, rss_mb, scratch

STATUS = "/api/v2/monitor/system/status"
BY_NAME = 100  # devices started by scenario name, for the per-device cost of loading it each time


def child(count: int, certs_dir: Path) -> None:
    # A descriptor per device and per connection: lift the soft limit to the hard one.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from mockfgt import FortiGate, FortiManager, load_scenario
    from mockfgt.tls import HarnessCA

    ca = HarnessCA(certs_dir)
    FortiGate(ca=ca).start().stop()  # the imports and the first start's one-off costs (CA, Flask app)
    before = rss_mb()
    started = time.perf_counter()
    healthy = load_scenario("fgt-healthy")  # once, as Harness.add_catalogue does for its devices
    devices = [FortiGate(healthy, ca=ca).start() for _ in range(count)]
    start_s = time.perf_counter() - started
    # By name, each device loads the scenario again (file read, validation, a dry run of its setup).
    started = time.perf_counter()
    by_name = [FortiGate(ca=ca).start() for _ in range(BY_NAME)]
    by_name_ms = (time.perf_counter() - started) * 1000 / BY_NAME
    for device in by_name:
        device.stop()
    print(json.dumps({"start_s": start_s, "by_name_ms": by_name_ms, "rss_before_mb": before, "ca": str(ca.cert_path),
                      "devices": [{"port": d.port, "token": d.token} for d in devices]}), flush=True)
    sys.stdin.readline()
    threads = threading.active_count()
    started = time.perf_counter()
    for device in devices:  # as Harness.stop does: every listener lets go, then each closes
        device.begin_stop()
    for device in devices:
        device.stop()
    stop_s = time.perf_counter() - started
    fleet = _fleet_scenario(certs_dir, [f"fgt-{i:04d}" for i in range(count)])
    started = time.perf_counter()
    fmg = FortiManager(fleet, ca=ca).start()
    fmg_start_s = time.perf_counter() - started
    print(json.dumps({"stop_s": stop_s, "threads": threads, "fmg_start_s": fmg_start_s,
                      "fmg": {"port": fmg.port, "token": fmg.token}}), flush=True)
    sys.stdin.readline()
    fmg.stop()


def _fleet_scenario(folder: Path, names: list[str]) -> Path:
    path = folder / "fmg-fleet.toml"
    rows = "".join(f'[[device.devices]]\nname = "{name}"\nip = "127.0.0.1"\n' for name in names)
    path.write_text(f'extends = "fmg-healthy"\nsummary = "a FortiManager with {len(names)} managed FortiGates"\n'
                    f'expect = "ok"\n\n{rows}')
    return path


def one_run(count: int, profile_to: Path | None) -> dict:
    work = scratch("scale")
    process = subprocess.Popen(child_command("bench.scale", str(count), str(work), profile_to=profile_to),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
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
        fmg = _fortimanager_calls(stopped["fmg"], context, count)
        process.stdin.write("stop\n")
        process.stdin.flush()
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    return {**ready, **stopped, **fmg, "rss_mb": rss, "requests_s": requests_s, "latencies": latencies}


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


def _fortimanager_calls(fmg: dict, context: ssl.SSLContext, count: int) -> dict:
    """List the managed devices, then proxy a status call to all of them; check both answers whole."""
    conn = http.client.HTTPSConnection("127.0.0.1", fmg["port"], context=context, timeout=60)
    headers = {"Authorization": f"Bearer {fmg['token']}", "Content-Type": "application/json"}

    def rpc(method: str, url: str, data=None) -> tuple[dict, float]:
        params = {"url": url, **({"data": data} if data is not None else {})}
        started = time.perf_counter()
        conn.request("POST", "/jsonrpc", body=json.dumps({"id": 1, "method": method, "params": [params]}),
                     headers=headers)
        answer = conn.getresponse()
        body = json.loads(answer.read())
        took = time.perf_counter() - started
        result = body["result"][0]
        if result["status"]["code"] != 0:
            raise RuntimeError(f"{url} answered {result['status']}")
        return result, took

    listed, list_s = rpc("get", "/dvmdb/adom/root/device")
    proxied, proxy_s = rpc("exec", "/sys/proxy/json", {
        "action": "get", "resource": f"{STATUS}?vdom=root", "target": ["adom/root/group/All_FortiGate"]})
    conn.close()
    answered = [e for e in proxied["data"] if e["status"]["code"] == 0 and e["response"]["status"] == "success"]
    if len(listed["data"]) != count or len(answered) != count:
        raise RuntimeError(f"FortiManager listed {len(listed['data'])} and proxied to {len(answered)} of {count}")
    return {"fmg_list_s": list_s, "fmg_proxy_s": proxy_s}


def scale(count: int, runs: int, profile: bool = False) -> list[Figure]:
    results = []
    for i in range(runs):
        profile_to = scratch("profile") / "scale.txt" if profile and i == 0 else None
        results.append(one_run(count, profile_to))
        if profile_to is not None:
            print_child_profile(profile_to, f"{count} devices in one process")
    return [
        Figure(f"{count} devices: start all", "s", [r["start_s"] for r in results], "<= 2 s",
               note="healthy FortiGates from one loaded scenario, in a process past its first device"),
        Figure("  start one by scenario name", "ms", [r["by_name_ms"] for r in results],
               note=f"{BY_NAME} more, each loading fgt-healthy again: x{count} for a fleet started by name"),
        Figure(f"{count} devices: resident memory", "MB", [r["rss_mb"] for r in results], "<= 250 MB",
               note=f"whole process after a request to each; before the devices: "
                    f"{results[0]['rss_before_mb']:.0f} MB"),
        Figure(f"{count} devices: threads", "threads", [r["threads"] for r in results],
               note="whole process after a request to each: one accept loop, idle workers not yet ended"),
        Figure(f"{count} devices: one request to each", "s", [r["requests_s"] for r in results],
               note="sequential, a new TLS connection each; every one answered 200"),
        Figure("  latency of one such request", "ms", [x for r in results for x in r["latencies"]]),
        Figure(f"{count} devices: stop all", "s", [r["stop_s"] for r in results], "<= 0.5 s"),
        Figure(f"FortiManager managing {count}: start", "s", [r["fmg_start_s"] for r in results]),
        Figure(f"FortiManager managing {count}: list them", "s", [r["fmg_list_s"] for r in results],
               note="/dvmdb/adom/root/device, every device listed"),
        Figure(f"FortiManager managing {count}: proxy to all", "s", [r["fmg_proxy_s"] for r in results],
               note="/sys/proxy/json to All_FortiGate, every device answered"),
    ]


if __name__ == "__main__":
    child(int(sys.argv[1]), Path(sys.argv[2]))
