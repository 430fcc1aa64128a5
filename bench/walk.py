"""The whole catalogue walked the way CI walks it: start, probe, check, stop, for every scenario.

Each scenario gets its own device (``Device(scenario).start()``), the reference client
(:func:`mockfgt.probe.probe`) runs against the device's client settings with a 0.2 s timeout, its
code is compared with the scenario's ``expect``, and the device stops. Kinds come from the catalogue,
so every kind the catalogue holds is walked and reported on its own row.
"""

from __future__ import annotations

import time
from collections import defaultdict

import mockfgt
from mockfgt.device import default_ca
from mockfgt.probe import probe

from .measure import Figure

CLIENT_TIMEOUT = 0.2


def walk_once(scenarios, ca) -> tuple[dict[str, float], list[str], dict[str, float]]:
    """One walk: seconds per kind, mismatches as text, seconds per scenario."""
    per_kind: dict[str, float] = defaultdict(float)
    per_scenario: dict[str, float] = {}
    mismatches = []
    for sc in scenarios:
        started = time.perf_counter()
        device = mockfgt.Device(sc, ca=ca).start()
        try:
            result = probe(device.client, kind=sc.kind, timeout=CLIENT_TIMEOUT)
        finally:
            device.stop()
        took = time.perf_counter() - started
        per_kind[sc.kind] += took
        per_scenario[sc.name] = took
        if result.code not in sc.acceptable():
            mismatches.append(f"{sc.name}: expected {sc.expect}, probe reported {result.code} "
                              f"at {result.step} ({result.detail})")
    return per_kind, mismatches, per_scenario


def catalogue_walk(runs: int) -> tuple[list[Figure], list[str]]:
    """Walk ``runs`` times; rows for the whole walk and per kind, plus the slowest scenarios."""
    ca = default_ca()
    scenarios = mockfgt.catalogue()
    kinds = sorted({sc.kind for sc in scenarios})
    whole = Figure("catalogue walk, every kind", "s", target="<= 3 s",
                   note=f"{len(scenarios)} scenarios, client timeout {CLIENT_TIMEOUT} s")
    by_kind = {k: Figure(f"  of which {k}", "s", note=f"{sum(sc.kind == k for sc in scenarios)} scenarios")
               for k in kinds}
    slowest: dict[str, list[float]] = defaultdict(list)
    problems: set[str] = set()
    for _ in range(runs):
        started = time.perf_counter()
        per_kind, mismatches, per_scenario = walk_once(scenarios, ca)
        whole.samples.append(time.perf_counter() - started)
        for kind in kinds:
            by_kind[kind].samples.append(per_kind[kind])
        for name, took in per_scenario.items():
            slowest[name].append(took)
        problems.update(mismatches)
    whole.note += f"; expectation mismatches: {len(problems)}"
    top = sorted(slowest.items(), key=lambda item: -sorted(item[1])[len(item[1]) // 2])[:3]
    rows = [whole, *by_kind.values()]
    rows += [Figure(f"  slowest: {name}", "ms", [t * 1000 for t in took]) for name, took in top]
    return rows, sorted(problems)
