"""A journal flood: requests carrying megabytes of headers and body, then the journal read and cleared.

Before the journal was bounded in bytes, 150 requests with 5.9 MB of headers each took a process
from 52 MB to 960 MB RSS, reading the journal over the control API peaked at 2.67 GB, and it stayed
at 929 MB after a DELETE. This prints the same figures (VmRSS and VmHWM of this process, which
holds the device, the control API and the clients) so a regression shows as a number:

    PYTHONPATH=tests python -m stress.journal_flood [--quick]

or from code: ``flood(harness, device, **SIZES["stress"])`` -> :class:`FloodFigures`.
It decides nothing by itself; ``tests/test_journal_bounds.py`` checks the bytes held at the test size.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import sys
from collections import Counter
from dataclasses import dataclass, field

import requests

from deadlines import seconds
from run_cli import control_auth

STATUS = "/api/v2/monitor/system/status"
#: One header line stays under http.server's 64 KiB line limit, so the request is read whole.
HEADER_VALUE = 63_000
SIZES = {
    # as the review measured: ~5.9 MB of headers a request (93 lines; with the 6 that requests adds,
    # under the 100 http.server reads), plus a 1 MB body
    "stress": dict(count=150, headers=93, body_bytes=1_000_000),
    "test": dict(count=20, headers=16, body_bytes=200_000),
}


@dataclass
class FloodFigures:
    requests: int = 0
    sent_bytes: int = 0
    statuses: Counter = field(default_factory=Counter)
    journal_cap: int = 0  # the device's journal_bytes
    journal_bytes: int = 0  # what the journal weighed after the flood
    journal_entries: int = 0
    evicted: int = 0
    read_bytes: int = 0  # what reading the whole journal over the control API transferred
    read_pages: int = 0
    largest_page: int = 0
    rss_kib: dict[str, int] = field(default_factory=dict)  # VmRSS at each step
    peak_kib: dict[str, int] = field(default_factory=dict)  # VmHWM (the process's peak so far) at each step

    def lines(self) -> list[str]:
        mib = lambda kib: f"{kib / 1024:.0f} MiB"  # noqa: E731
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return [
            f"{self.requests} requests, {self.sent_bytes / 1e6:.0f} MB sent (statuses {statuses})",
            f"journal after the flood: {self.journal_bytes / 1024:.0f} KiB in {self.journal_entries} entries "
            f"(cap {self.journal_cap / 1024:.0f} KiB), {self.evicted} evicted",
            f"read over the control API: {self.read_bytes / 1024:.0f} KiB in {self.read_pages} pages "
            f"(largest {self.largest_page / 1024:.0f} KiB)",
            "RSS " + ", ".join(f"{step} {mib(kib)}" for step, kib in self.rss_kib.items()),
            "peak RSS " + ", ".join(f"{step} {mib(kib)}" for step, kib in self.peak_kib.items()),
        ]


def memory() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc/self/status; (0, 0) where there is none."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0])
    except OSError:
        pass
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


def _trim() -> bool:
    """Hand freed heap back to the system (glibc keeps it otherwise): shows what a clear really freed."""
    name = ctypes.util.find_library("c")
    try:
        return bool(name and ctypes.CDLL(name).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def flood(harness, device, *, count: int, headers: int, body_bytes: int) -> FloodFigures:
    """Send ``count`` requests of ``headers`` header lines of 63 kB and a ``body_bytes`` body to
    ``device`` (a device of ``harness``, started), read its journal through the control API, clear it."""
    figures = FloodFigures(journal_cap=device.journal.max_bytes)

    def mark(step: str) -> None:
        gc.collect()
        figures.rss_kib[step], figures.peak_kib[step] = memory()

    mark("before")
    big = {f"X-Flood-{i}": "f" * HEADER_VALUE for i in range(headers)}
    body = b"b" * body_bytes
    with _session(device) as session:
        for _ in range(count):
            answer = session.post(device.url + STATUS, headers=big, data=body, timeout=seconds(60))
            figures.statuses[answer.status_code] += 1
            figures.requests += 1
            figures.sent_bytes += sum(len(k) + len(v) + 4 for k, v in big.items()) + body_bytes
    del big, body
    figures.journal_bytes, figures.journal_entries = device.journal.bytes, len(device.journal)
    figures.evicted = device.journal.evicted
    mark("after flood")
    _read_all(harness, device, figures)
    mark("after read")
    requests.delete(f"{harness.control_url}/devices/{device.name}/journal", headers=control_auth(harness),
                    timeout=seconds(10)).raise_for_status()
    mark("after clear")
    if _trim():
        mark("after clear+trim")
    return figures


def _read_all(harness, device, figures: FloodFigures) -> None:
    url, since = f"{harness.control_url}/devices/{device.name}/journal", 0
    while True:
        answer = requests.get(url, params={"since": since}, headers=control_auth(harness), timeout=seconds(30))
        answer.raise_for_status()
        page = answer.json()
        figures.read_pages += 1
        figures.read_bytes += len(answer.content)
        figures.largest_page = max(figures.largest_page, len(answer.content))
        if answer.headers.get("X-Mockfgt-Journal-More") != "true" or not page:
            return
        since = page[-1]["seq"]


def _session(device) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = device.ca_bundle
    return session


def main(argv: list[str] | None = None) -> int:
    from mockfgt import Harness

    parser = argparse.ArgumentParser(prog="python -m stress.journal_flood", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the sizes of make test")
    args = parser.parse_args(argv)
    with Harness() as harness:
        device = harness.add("fgt-healthy")
        harness.start()
        figures = flood(harness, device, **SIZES["test" if args.quick else "stress"])
    print("journal flood")
    for line in figures.lines():
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
