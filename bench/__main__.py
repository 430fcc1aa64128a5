"""Run the benchmarks and print one table: ``python -m bench`` (``make bench``).

    python -m bench                      every section, the numbers docs/performance.md records
    python -m bench --quick              fewer repetitions (a smoke run, figures are noisier)
    python -m bench --only walk,scale    some sections (startup, lifecycle, alternatives, walk, throughput,
                                         scale, serve-all)
    python -m bench --profile walk       also print a pyinstrument profile of a section to stderr
    python -m bench --json out.json      also write every sample as JSON

The targets are printed next to the figures; the script never judges them. It exits non-zero only
when a section could not be measured at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

from .measure import Figure, load_average, machine, profiled, table

SECTIONS = ("startup", "lifecycle", "alternatives", "walk", "throughput", "scale", "serve-all")

# Repetitions: (full run, --quick run).
RUNS = {
    "lifecycle": (100, 20),
    "cold": (5, 2),
    "swap_passes": (4, 1),
    "first_request": (60, 15),
    "walk": (5, 2),
    "throughput_rounds": (3, 1),
    "throughput_seconds": (2.0, 1.0),
    "scale": (3, 1),
    "serve_all": (7, 2),
    "startup": (5, 3),
    "alternatives": (20, 5),
}
SCALE_DEVICES = 1000


def run_section(name: str, quick: bool, profile: bool) -> tuple[list[Figure], list[str]]:
    n = {key: value[1] if quick else value[0] for key, value in RUNS.items()}
    if name == "startup":
        from .startup import startup

        return startup(n["startup"]), []
    if name == "alternatives":
        from .alternatives import life_cycles, throughputs

        return [*life_cycles(n["alternatives"]),
                *throughputs(n["throughput_rounds"], n["throughput_seconds"])], []
    if name == "lifecycle":
        from . import lifecycle
        from .cold import cold_start

        with profiled(profile, "device life cycle and first requests"):
            figures = [lifecycle.harness_ca_figure(), *lifecycle.life_cycle(n["lifecycle"]),
                       lifecycle.scenario_swaps(n["swap_passes"]), *lifecycle.first_requests(n["first_request"]),
                       lifecycle.journal_entries(n["walk"])]
        return [*figures, *cold_start(n["cold"])], []
    if name == "walk":
        from .walk import catalogue_walk

        with profiled(profile, "catalogue walk"):
            return catalogue_walk(n["walk"])
    if name == "throughput":
        from .throughput import throughput

        return throughput(n["throughput_rounds"], n["throughput_seconds"], profile), []
    if name == "scale":
        from .scale import scale

        return scale(SCALE_DEVICES, n["scale"], profile), []
    if name == "serve-all":
        from .serve_all import serve_all

        return serve_all(n["serve_all"], profile), []
    raise ValueError(name)


def compile_bytecode() -> None:
    """Byte-compile mockfgt first, as pip does when it installs the wheel.

    A checkout installed in editable mode on a machine that sets PYTHONDONTWRITEBYTECODE would
    otherwise compile every module in every new process, and the start-up figures would measure the
    compiler rather than what users run.
    """
    import compileall
    from pathlib import Path

    import mockfgt

    compileall.compile_dir(Path(mockfgt.__file__).parent, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--profile", default="", help="sections to profile with pyinstrument (comma-separated)")
    parser.add_argument("--json", metavar="FILE", help="write the figures and every sample as JSON")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s]
    unknown = set(chosen + [s for s in args.profile.split(",") if s]) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")

    compile_bytecode()
    host = machine()
    print(f"mockfgt benchmark: {host['nproc']} CPUs, {host['cpu']}, Python {host['python']}, {host['system']}, "
          f"load average {host['load']}{' (--quick)' if args.quick else ''}", flush=True)
    figures: list[Figure] = []
    notes: list[str] = []
    failed = []
    started = time.perf_counter()
    for section in chosen:
        section_started = time.perf_counter()
        try:
            rows, problems = run_section(section, args.quick, section in args.profile.split(","))
        except Exception:
            traceback.print_exc()
            failed.append(section)
            continue
        figures += rows
        notes += problems
        print(f"  measured {section} in {time.perf_counter() - section_started:.1f} s", file=sys.stderr, flush=True)

    print()
    print(table(figures))
    for note in notes:
        print(f"  ! {note}")
    if failed:
        print(f"  ! could not measure: {', '.join(failed)} (traceback above)")
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s; load average at the end {load_average()})")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": host, "quick": args.quick, "figures": [f.as_dict() for f in figures],
                       "notes": notes, "failed": failed}, out, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
