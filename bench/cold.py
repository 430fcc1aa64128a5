"""What the first device of a process costs: a CI job or a pytest session pays it once.

Each run is a new interpreter (``python -m bench.cold``) that times ``import mockfgt``, then the
first ``FortiGate().start()``, which also makes the harness CA, imports the device kind (Flask),
builds its app and mints the first certificate, then a second device for comparison.
"""

from __future__ import annotations

import json
import subprocess
import time

from .measure import Figure, child_command


def child() -> None:
    started = time.perf_counter()
    import mockfgt

    imported = time.perf_counter()
    first = mockfgt.FortiGate().start()
    first_ready = time.perf_counter()
    second = mockfgt.FortiGate().start()
    second_ready = time.perf_counter()
    first.stop()
    second.stop()
    print(json.dumps({"import_ms": (imported - started) * 1000, "first_ms": (first_ready - imported) * 1000,
                      "second_ms": (second_ready - first_ready) * 1000}))


def cold_start(runs: int) -> list[Figure]:
    results = [json.loads(subprocess.run(child_command("bench.cold"), capture_output=True, text=True,
                                         check=True).stdout) for _ in range(runs)]
    return [
        Figure("new process: import mockfgt", "ms", [r["import_ms"] for r in results]),
        Figure("new process: first device start", "ms", [r["first_ms"] for r in results],
               note="makes the harness CA, imports Flask, builds the app, mints"),
        Figure("new process: second device start", "ms", [r["second_ms"] for r in results]),
    ]


if __name__ == "__main__":
    child()
