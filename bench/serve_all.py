"""`mockfgt serve --all` as CI runs it: from the command to the manifest on disk, then SIGTERM.

Every run starts the installed ``mockfgt`` command with a fresh certificate folder (as a fresh CI
checkout has), polls for the manifest (written atomically once every device is ready), checks it
lists the whole catalogue, sends SIGTERM and times the stop.
"""

from __future__ import annotations

import json
import signal
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


def one_run(profile_to: Path | None) -> tuple[float, float, int]:
    """(seconds to manifest, seconds to exit after SIGTERM, devices in the manifest)."""
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
        devices = len(json.loads(manifest.read_text())["devices"])
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        stop = time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return ready, stop, devices


def serve_all(runs: int, profile: bool = False) -> list[Figure]:
    ready, stop, counts = [], [], set()
    for i in range(runs):
        profile_to = scratch("profile") / "serve.txt" if profile and i == 0 else None
        r, s, n = one_run(profile_to)
        if profile_to is not None:
            print_child_profile(profile_to, "mockfgt serve --all (this run is not in the figures)")
            continue
        ready.append(r)
        stop.append(s)
        counts.add(n)
    expected = len(mockfgt.catalogue())
    return [
        Figure("`mockfgt serve --all` to manifest", "s", ready, "<= 0.3 s",
               note=f"{'/'.join(map(str, sorted(counts)))} of {expected} scenarios in the manifest; "
                    "fresh certs folder, new process"),
        Figure("  SIGTERM to exit", "s", stop),
    ]
