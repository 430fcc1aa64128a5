"""What installing mockfgt costs a pytest run that never uses it, and what `import mockfgt` costs.

Every figure comes from new interpreters:

- the plugin: ``python -X importtime -c "import pytest; import mockfgt.pytest_plugin"``, the cumulative
  time of ``mockfgt.pytest_plugin``. pytest is imported first because pytest is what loads the plugin
  (entry point ``pytest11``): the plugin's own cost is what it adds to a pytest that is already there.
  The target is on the best of the runs, as ``-X importtime`` figures are;
- ``import mockfgt`` alone, the same way;
- a pytest session: ``pytest`` collecting and running one trivial test, with the plugin loaded as
  installed and with ``-p no:mockfgt``, run for run: the difference is what an unused mockfgt costs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .measure import Figure, scratch


def _import_ms(code: str, module: str) -> float:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True, env=_env())
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    raise RuntimeError(f"no import time for {module} in: {done.stderr[-500:]}")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def _session_seconds(folder: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_plain.py"],
                   cwd=folder, check=True, capture_output=True, env=_env())
    return time.perf_counter() - started


def startup(runs: int) -> list[Figure]:
    plugin = [_import_ms("import pytest; import mockfgt.pytest_plugin", "mockfgt.pytest_plugin") for _ in range(runs)]
    bare = [_import_ms("import mockfgt", "mockfgt") for _ in range(runs)]
    pytest_itself = [_import_ms("import pytest", "pytest") for _ in range(runs)]
    folder = scratch("startup")
    (folder / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    _session_seconds(folder)  # warm-up: the file system cache
    with_plugin, without = [], []
    for _ in range(runs):
        with_plugin.append(_session_seconds(folder) * 1000)
        without.append(_session_seconds(folder, "-p", "no:mockfgt") * 1000)
    return [
        Figure("import mockfgt.pytest_plugin (pytest loaded)", "ms", plugin, "<= 25 ms (best run)",
               note=f"best of {runs}: {min(plugin):.1f} ms; what every pytest start pays once mockfgt is installed"),
        Figure("  import mockfgt", "ms", bare, note=f"best of {runs}: {min(bare):.1f} ms"),
        Figure("  import pytest itself, for scale", "ms", pytest_itself),
        Figure("pytest session, one plain test, plugin installed", "ms", with_plugin,
               note="new process: start, collect, run, exit"),
        Figure("  the same with -p no:mockfgt", "ms", without),
        Figure("  difference, run for run", "ms", [a - b for a, b in zip(with_plugin, without)],
               "within noise", note="what an unused mockfgt costs a pytest run"),
    ]
