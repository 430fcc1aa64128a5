"""`mockfgt serve --all` as CI runs it: from the command to the manifest on disk, then SIGTERM.

Every run starts the installed ``mockfgt`` command with a fresh certificate folder (as a fresh CI
checkout has), polls for the manifest (written atomically once every device is ready), checks it
lists the whole catalogue, sends SIGTERM and times the stop.
"""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import mockfgt

from .measure import Figure, child_command, print_child_profile, scratch

POLL = 0.002


def mockfgt_command() -> list[str]:
    script = Path(sys.executable).parent / "mockfgt"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mockfgt.cli"]


def first_answer(document: dict) -> None:
    """One authenticated status call to the manifest's fgt-healthy, on a new TLS connection."""
    entry = next(d for d in document["devices"] if d["scenario"] == "fgt-healthy")
    context = ssl.create_default_context(cafile=entry["ca_bundle"])
    connection = http.client.HTTPSConnection(entry["host"], entry["port"], context=context, timeout=30)
    try:
        connection.request("GET", "/api/v2/monitor/system/status",
                           headers={"Authorization": f"Bearer {entry['device']['token']}"})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"fgt-healthy answered {answer.status} right after the manifest")
    finally:
        connection.close()


def one_run(profile_to: Path | None) -> tuple[float, float, float, int]:
    """(seconds to manifest, to the first answer after it, to exit after SIGTERM; devices in the manifest)."""
    work = scratch("serve-all")
    manifest = work / "run" / "mockfgt.json"
    args = ["serve", "--all", "--manifest", str(manifest), "--certs-dir", str(work / "certs")]
    command = child_command("mockfgt.cli", *args, profile_to=profile_to) if profile_to else [*mockfgt_command(), *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not manifest.exists():
            if process.poll() is not None:
                raise RuntimeError(f"mockfgt serve --all exited: {process.stderr.read().decode()}")
            time.sleep(POLL)
        ready = time.perf_counter() - started
        document = json.loads(manifest.read_text())
        first_answer(document)  # what the server still builds after the manifest, a first request waits for
        answered = time.perf_counter() - started
        devices = len(document["devices"])
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        stop = time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return ready, answered, stop, devices


def serve_all(runs: int, profile: bool = False) -> list[Figure]:
    ready, answered, stop, counts = [], [], [], set()
    for i in range(runs):
        profile_to = scratch("profile") / "serve.txt" if profile and i == 0 else None
        r, a, s, n = one_run(profile_to)
        if profile_to is not None:
            print_child_profile(profile_to, "mockfgt serve --all (this run is not in the figures)")
            continue
        ready.append(r)
        answered.append(a)
        stop.append(s)
        counts.add(n)
    expected = len(mockfgt.catalogue())
    return [
        Figure("`mockfgt serve --all` to manifest", "s", ready, "<= 0.3 s",
               note=f"{'/'.join(map(str, sorted(counts)))} of {expected} scenarios in the manifest; "
                    "fresh certs folder, new process"),
        Figure("  to the first answer", "s", answered,
               note="from the command until fgt-healthy answered a status call sent once the manifest existed"),
        Figure("  SIGTERM to exit", "s", stop),
    ]
