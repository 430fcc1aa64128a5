"""``make stress``: every abuse at full size, then the figures.

    PYTHONPATH=tests python -m stress [--quick]

Prints requests tried, faults injected, broken files tried, unhandled exceptions (must be 0),
lost writes (must be 0), threads and descriptors before and after, and what each phase saw.
Exits 1 if any invariant broke. ``--quick`` runs the sizes of ``make test`` (a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import mockfgt
from mockfgt import Harness

from . import control, drops, fuzz, handshakes, journal_flood, partial, sigterm, swaps, writers
from .corpus import CORPUS, broken_files, rejection_problem
from .watch import ErrorLog, Resources, settle
from deadlines import seconds

FULL = dict(profile="stress", handshakes=300, drops=50, clients=50, writes=200, batch=20, swap_clients=10, swaps=200,
            sigterm_runs=10, sigterm_clients=20, cut=30, slow=300, slow_interval=2.0, resets=3000,
            request_timeout=10.0, control_rounds=50, flood="stress")
QUICK = dict(profile="test", handshakes=40, drops=5, clients=10, writes=20, batch=10, swap_clients=6, swaps=25,
             sigterm_runs=2, sigterm_clients=6, cut=3, slow=20, slow_interval=0.1, resets=200,
             request_timeout=0.5, control_rounds=5, flood="test")


class Run:
    def __init__(self, sizes: dict) -> None:
        self.sizes = sizes
        self.figures: dict[str, int] = {"requests tried": 0, "faults injected": 0, "broken files tried": 0,
                                        "lost writes": 0}
        self.lines: list[str] = []
        self.failures: list[str] = []

    def phase(self, title: str, work) -> None:
        started = time.perf_counter()
        print(f"-- {title} ...", flush=True)
        try:
            for line in work() or []:
                self.lines.append(f"{title}: {line}")
        except Exception:  # an invariant broke (AssertionError from hypothesis, with its example) or worse
            self.failures.append(f"{title}:\n{traceback.format_exc()}")
        print(f"   {time.perf_counter() - started:.1f} s", flush=True)

    # -- phases -----------------------------------------------------------------------------------
    def hostile_input(self, ca) -> list[str]:
        out = []
        # Random bodies reach 2 MB: on a busy machine one may take longer than 2 s to arrive, and the
        # device rightly drops it unanswered at its deadline (seen at load 8). The deadline scales.
        patience = seconds(2.0)
        with mockfgt.FortiGate(fuzz.FORTIGATE_SCENARIO, ca=ca, request_timeout=patience) as fgt, \
                mockfgt.FortiManager(fuzz.FORTIMANAGER_SCENARIO, ca=ca, request_timeout=patience) as fmg:
            for device, surface in ((fgt, fuzz.FORTIOS), (fmg, fuzz.FORTIMANAGER)):
                for run in (fuzz.fuzz, fuzz.throw_garbage):
                    result = run(device, surface, self.sizes["profile"], errors=self.errors)
                    self.figures["requests tried"] += result.requests
                    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items(), key=str))
                    out.append(f"{result.surface}: {result.requests} requests, {result.refused} refused, "
                               f"{result.accepted} accepted; statuses {statuses}")
        return out

    def broken_files(self) -> list[str]:
        files = broken_files()
        problems = [f"{b.path.name}: {p}" for b in files if (p := rejection_problem(b))]
        self.figures["broken files tried"] += len(files)
        assert not problems, "\n".join(problems)
        return [f"{len(files)} files in {CORPUS}, each rejected naming file, key and reason"]

    def handshakes(self, ca) -> list[str]:
        healthy = mockfgt.FortiGate(ca=ca).start()
        faulty = {name: mockfgt.Device(name, ca=ca).start() for name in handshakes.TLS_SCENARIOS}
        try:
            result = handshakes.storm(healthy, faulty, self.sizes["handshakes"])
        finally:
            for device in (healthy, *faulty.values()):
                device.stop()
        self.figures["faults injected"] += result.attempts
        assert not result.unexpected_successes, result.unexpected_successes
        return [f"{result.attempts} failed handshakes ({len(faulty)} TLS scenarios, "
                f"{len(handshakes.CLIENT_FAULTS)} client faults), {result.refused_on_the_device} refused "
                f"on the devices; a healthy GET (new connection) took {result.healthy_before_ms} ms before, "
                f"{result.healthy_after_ms} ms after (median of 20)"]

    def misbehaving_clients(self, ca) -> list[str]:
        with mockfgt.FortiGate(ca=ca, request_timeout=0.5) as device:
            result = drops.misbehave(device, self.sizes["drops"])
        self.figures["faults injected"] += result.connections
        assert result.served_meanwhile and result.still_open == 0, result
        return [f"{result.connections} misbehaving connections held at once ({dict(result.dropped)} dropped), "
                f"a healthy client served meanwhile"]

    def writers(self, ca) -> list[str]:
        out = []
        with mockfgt.FortiGate(ca=ca, journal_capacity=1_000_000) as fgt:
            result = writers.fortios_writers(fgt, self.sizes["clients"], self.sizes["writes"])
        out.append(self._writes("FortiOS", result) + f", {len(result.revision_problems)} revision problems")
        assert not result.revision_problems, result.revision_problems
        with mockfgt.FortiManager(writers_workspace(), ca=ca, journal_capacity=1_000_000) as fmg:
            result = writers.fortimanager_writers(fmg, self.sizes["clients"], self.sizes["writes"],
                                                  self.sizes["batch"])
        out.append(self._writes("FortiManager", result) + f", {result.lock_retries} lock retries")
        return out

    def _writes(self, kind: str, result) -> str:
        self.figures["requests tried"] += result.writes
        self.figures["lost writes"] += result.lost_writes
        return (f"{kind}: {result.clients} clients, {result.writes} writes in {result.seconds} s, "
                f"{len(result.failed)} refused, {len(result.lost)} lost, {len(result.unexpected)} unexpected, "
                f"{len(result.duplicated)} duplicated, {result.journal_missing} missing from the journal")

    def swaps(self, ca) -> list[str]:
        with Harness(ca=ca) as harness:
            harness.add("fgt-healthy")
            harness.start()
            harness.device("fgt-healthy")._listener.request_timeout = 2.0
            result = swaps.swap_under_traffic(harness, "fgt-healthy", self.sizes["swap_clients"], self.sizes["swaps"])
        self.figures["requests tried"] += result.requests
        self.figures["faults injected"] += result.swaps
        assert result.hung_clients == 0 and result.served_afterwards, result
        outcomes = ", ".join(f"{k}: {v}" for k, v in result.outcomes.most_common())
        return [f"{result.swaps} swaps under {result.requests} requests ({outcomes}); no client hung; "
                f"served correctly afterwards"]

    def partial_requests(self, ca) -> list[str]:
        s = self.sizes
        with mockfgt.FortiGate(ca=ca, request_timeout=s["request_timeout"]) as fgt:
            result = partial.abuse(fgt, cut=s["cut"], slow=s["slow"], interval=s["slow_interval"],
                                   resets_count=s["resets"])
        self.figures["faults injected"] += sum(result.cut.values()) + result.slow + result.resets
        assert not result.problems(), result.problems()
        return result.lines()

    def control_api(self, ca) -> list[str]:
        result = control.run(rounds=self.sizes["control_rounds"], ca=ca)
        self.figures["requests tried"] += result.requests
        assert result.ok, result.lines()
        return result.lines()

    def journal_flood(self, ca) -> list[str]:
        with Harness(ca=ca) as harness:
            device = harness.add("fgt-healthy")
            harness.start()
            result = journal_flood.flood(harness, device, **journal_flood.SIZES[self.sizes["flood"]])
        self.figures["requests tried"] += result.requests
        assert result.journal_bytes <= result.journal_cap, result.lines()
        return result.lines()

    def sigterm(self) -> list[str]:
        result = sigterm.stop_under_load(self.sizes["sigterm_runs"], self.sizes["sigterm_clients"])
        self.figures["requests tried"] += result.requests
        self.figures["faults injected"] += result.runs
        assert result.missed == 0 and result.tracebacks == 0, result.line()
        return [result.line()]

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> int:
        ca = mockfgt.device.default_ca()
        with ErrorLog() as self.errors:
            with mockfgt.FortiGate(ca=ca):  # warm up: what the first device opens stays open for the run
                pass
            before = Resources.now()
            self.phase("hostile input", lambda: self.hostile_input(ca))
            self.phase("broken scenario files", self.broken_files)
            self.phase("failed handshakes", lambda: self.handshakes(ca))
            self.phase("misbehaving clients", lambda: self.misbehaving_clients(ca))
            self.phase("concurrent writers", lambda: self.writers(ca))
            self.phase("scenario swaps under traffic", lambda: self.swaps(ca))
            self.phase("half-sent requests, slowloris, resets", lambda: self.partial_requests(ca))
            self.phase("hostile control API requests", lambda: self.control_api(ca))
            self.phase("journal flood", lambda: self.journal_flood(ca))
            self.phase("SIGTERM to serve under load", self.sigterm)
            after = settle(before)
        self.report(before, after)
        broken = self.failures or len(self.errors) or self.figures["lost writes"] or \
            after.threads > before.threads or after.descriptors > before.descriptors
        return 1 if broken else 0

    def report(self, before: Resources, after: Resources) -> None:
        print("\nmockfgt stress figures")
        for name, value in self.figures.items():
            print(f"  {name:<26} {value}")
        print(f"  {'unhandled exceptions':<26} {len(self.errors)}")
        print(f"  {'threads before / after':<26} {before.threads} / {after.threads}")
        print(f"  {'descriptors before / after':<26} {before.descriptors} / {after.descriptors}")
        print("\nphases")
        for line in self.lines:
            print(f"  {line}")
        if len(self.errors):
            print("\nunhandled exceptions\n" + self.errors.describe())
        for failure in self.failures:
            print(f"\nFAILED {failure}")
        print("\nresult:", "FAILED" if self.failures or len(self.errors) or self.figures["lost writes"] else "ok")


def writers_workspace() -> str:
    return str(fuzz.SCENARIOS / "fmg-workspace.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the sizes of make test: a smoke run of the runner")
    args = parser.parse_args(argv)
    return Run(QUICK if args.quick else FULL).run()


if __name__ == "__main__":
    sys.exit(main())
