"""Figures, percentiles, the result table and the machine description.

A :class:`Figure` is one row of the table: a name, the samples of repeated runs, their unit and the
target the project set for it. The table shows median and p95 next to the target; reading them is
left to whoever runs the benchmark (``make bench`` always exits 0 once it has measured).
"""

from __future__ import annotations

import atexit
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One measured quantity: every sample, in ``unit`` (``ms``, ``s``, ``MB``, ``req/s``, ``x``...)."""

    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    target: str = ""
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float | None:
        return percentile(self.samples, 95) if self.samples else None

    def as_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "runs": len(self.samples), "median": self.median,
                "p95": self.p95, "target": self.target, "note": self.note, "samples": self.samples}


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``pct`` % of samples at or below it."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class Stopwatch:
    """Collects durations in milliseconds: ``with watch: ...`` adds one sample."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.samples.append((time.perf_counter() - self._started) * 1000)


@contextmanager
def profiled(enabled: bool, label: str):
    """Run the block under pyinstrument (the ``bench`` extra) and print its report to stderr."""
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(f"\n===== profile: {label} =====", file=sys.stderr)
        print(profiler.output_text(unicode=True, color=False, show_all=False), file=sys.stderr)


_SCRATCH: list[Path] = []


def scratch(prefix: str) -> Path:
    """A fresh folder for one run's certificates and files; all are removed when the benchmark ends."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="mockfgt-bench-")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=_SCRATCH[0]))


def child_command(module: str, *args: str, profile_to: Path | None = None) -> list[str]:
    """The command that runs ``python -m module args``, under pyinstrument when ``profile_to`` is given."""
    if profile_to is None:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile_to), "-m", module, *args]


def print_child_profile(path: Path, label: str) -> None:
    print(f"\n===== profile: {label} =====", file=sys.stderr)
    print(path.read_text() if path.exists() else "(no profile written)", file=sys.stderr)


@contextmanager
def sampled(pid: int, enabled: bool, label: str):
    """Sample every thread of process ``pid`` with py-spy (the ``bench`` extra) while the block runs.

    pyinstrument sees only the thread it starts in; a server's work happens in its connection
    threads, so servers are sampled from outside. Only samples holding the GIL count: that is the
    Python work the threads compete for. The report lists functions by share of those samples.
    """
    if not enabled:
        yield
        return
    raw = scratch("py-spy") / "samples.txt"
    spy_path = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy_path is None:
        print("py-spy is not installed (pip install -e '.[bench]')", file=sys.stderr)
        yield
        return
    spy = subprocess.Popen([spy_path, "record", "-p", str(pid), "-f", "raw", "-o", str(raw), "-r", "250",
                            "--gil", "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        _, errors = spy.communicate(timeout=30)
        print(f"\n===== py-spy: {label} =====", file=sys.stderr)
        print(summarize_samples(raw) if raw.exists() else errors.decode(errors="replace"), file=sys.stderr)


def summarize_samples(raw: Path, top: int = 30) -> str:
    """py-spy's raw output (``frame;frame;... count``) as the functions with the largest inclusive share."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples holding the GIL; inclusive share, own share, function"]
    for frame, n in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}% {100 * own.get(frame, 0) / total:5.1f}%  {frame}")
    return "\n".join(lines)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def machine() -> dict:
    """What the figures depend on: CPUs, CPU model, Python, OS."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "load": load_average()}


def load_average() -> str:
    """The 1-minute load average: other work on the machine shows in every figure."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "s", "MB", "x", "req/s", "conn/req"):
        digits = 0 if abs(value) >= 1000 else 1 if abs(value) >= 100 else 2 if abs(value) >= 1 else 3
        return f"{value:.{digits}f} {unit}"
    return f"{value:g} {unit}"


def table(figures: list[Figure]) -> str:
    """The figures as a plain-text table (median, p95, target, note)."""
    rows = [("figure", "runs", "median", "p95", "target", "note")]
    rows += [(f.name, str(len(f.samples)), _number(f.median, f.unit), _number(f.p95, f.unit), f.target, f.note)
             for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                 row[3].rjust(widths[3]), row[4].ljust(widths[4]), row[5]]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(lines)
