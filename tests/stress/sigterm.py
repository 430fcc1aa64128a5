"""SIGTERM to ``mockfgt serve --all`` while clients keep its devices busy: it must stop every time.

A signal handler can miss a signal that the kernel gives to a busy device thread while the main
thread sleeps; serve takes its stop signals with sigwait, every other thread blocking them. Each run
starts the real command, hammers devices from client threads, sends one SIGTERM and times the exit.
"""

from __future__ import annotations

import json
import signal
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deadlines import seconds
from run_cli import cli_env, mockfgt_command

STATUS = "/api/v2/monitor/system/status"


@dataclass
class StopFigures:
    runs: int = 0
    stop_seconds: list[float] = field(default_factory=list)
    missed: int = 0  # runs still serving long after the one SIGTERM
    tracebacks: int = 0
    requests: int = 0
    stderr: str = ""  # what runs with a traceback printed, for the report

    def line(self) -> str:
        median = f"{statistics.median(self.stop_seconds) * 1000:.0f} ms" if self.stop_seconds else "-"
        slowest = f"{max(self.stop_seconds) * 1000:.0f} ms" if self.stop_seconds else "-"
        return (f"{self.runs} runs of serve --all under {self.requests} requests: {self.missed} missed the "
                f"SIGTERM, stop median {median}, slowest {slowest}, {self.tracebacks} tracebacks")


def stop_under_load(runs: int, clients: int) -> StopFigures:
    figures = StopFigures()
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mockfgt-sigterm-") as work:
            _one_run(Path(work), clients, figures)
    return figures


def _one_run(work: Path, clients: int, figures: StopFigures) -> None:
    manifest = work / "mockfgt.json"
    process = subprocess.Popen([*mockfgt_command(), "serve", "--all", "--manifest", str(manifest),
                                "--certs-dir", str(work / "certs")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=cli_env())
    stop = threading.Event()
    try:
        subprocess.run([*mockfgt_command(), "wait", str(manifest), "--pid", str(process.pid),
                        "--timeout", str(seconds(30))], check=True, env=cli_env(), capture_output=True)
        device = next(d for d in json.loads(manifest.read_text())["devices"] if d["name"] == "fgt-healthy")
        counts = [0] * clients
        threads = [threading.Thread(target=_hammer, args=(device, stop, counts, i), daemon=True)
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the devices are busy now
        sent = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=seconds(10))
            figures.stop_seconds.append(time.perf_counter() - sent)
        except subprocess.TimeoutExpired:
            figures.missed += 1
        stop.set()
        for thread in threads:
            thread.join(timeout=seconds(10))
        figures.requests += sum(counts)
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
        err = process.communicate(timeout=seconds(30))[1]
        figures.tracebacks += err.count("Traceback")
        figures.stderr += err if "Traceback" in err else ""
        figures.runs += 1


def _hammer(device: dict, stop: threading.Event, counts: list[int], i: int) -> None:
    context = ssl.create_default_context(cafile=device["ca_bundle"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(device["url"] + STATUS, headers={"Authorization": f"Bearer {device['token']}"})
    while not stop.is_set():
        try:
            with opener.open(request, timeout=seconds(5)) as answer:
                answer.read()
            counts[i] += 1
        except OSError:  # the server is stopping: expected
            if stop.wait(0.01):
                return
