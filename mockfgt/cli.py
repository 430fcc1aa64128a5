"""The ``mockfgt`` command: serve scenarios, steer a running harness, list and check scenario files.

    mockfgt serve [--scenario NAME|FILE|DIR]... [--all] [--port P | --base-port P] [--manifest FILE]
    mockfgt wait FILE [--timeout S] [--pid PID]           (see mockfgt.manifest)
    mockfgt manifest FILE get [DEVICE] KEY
    mockfgt ctl [--manifest FILE | --control URL [--token T]] VERB ...
    mockfgt scenarios [--json]
    mockfgt scenarios show NAME
    mockfgt scenarios check FILE|DIR...
    mockfgt check [--scenario NAME]... [--junit F] [--json] -- COMMAND {url} {token} {ca}  (see mockfgt.check)
    mockfgt diagnose https://HOST[:PORT] --token T [...]   (see mockfgt.diagnose)
    mockfgt conformance [--write docs/conformance.md]     (see mockfgt.conformance)
    mockfgt ca [--certs-dir DIR] [--install-hint | --renew] (see mockfgt.ca_cli)

Also ``python -m mockfgt``. A user's mistake, Ctrl+C at any moment or a closed pipe (``| head``)
ends the command with a message and an exit code, never a traceback.
"""

from __future__ import annotations

# Only what main needs before its try: everything else is imported where it is used.
import os
import sys


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(argv)
    except SystemExit as exc:  # argparse's usage errors and --help: the same code, returned to a caller
        return exc.code if isinstance(exc.code, int) else 1 if exc.code else 0
    except KeyboardInterrupt:  # Ctrl+C before serve installed its handler (imports, parsing)
        return 130
    except BrokenPipeError:  # stdout closed early: `mockfgt scenarios | head -1`
        _discard_stdout()
        return 141


def _dispatch(argv: list[str] | None) -> int:
    # Imported here, inside main's try: a Ctrl+C during these imports is still a quiet exit.
    import argparse

    parser = argparse.ArgumentParser(prog="mockfgt", description="Mock FortiGate / FortiManager over real HTTPS.")
    sub = parser.add_subparsers(dest="command", required=True)
    words = sys.argv[1:] if argv is None else argv
    # The command is the first word (the top level has no options but --help). Only its module is
    # imported, so `serve` does not load diagnose's client stack nor `wait` the device machinery;
    # anything else (--help, no command, a typo) registers every command, for the full usage.
    chosen = [words[0]] if words and words[0] in COMMANDS else list(COMMANDS)
    for register in dict.fromkeys(COMMANDS[name] for name in chosen):
        register(sub)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as exc:
        scenario = sys.modules.get(f"{__package__}.scenario")  # a ScenarioError only once scenarios loaded
        if scenario is None or not isinstance(exc, scenario.ScenarioError):
            raise
        print(f"mockfgt: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except OSError as exc:  # a folder or file the user named: unwritable, missing, a directory...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mockfgt: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def _add_serve(sub) -> None:
    from . import argtypes

    serve = sub.add_parser("serve", help="run mock devices until Ctrl+C or SIGTERM")
    serve.add_argument("--scenario", action="append", default=[], metavar="NAME|FILE|DIR",
                       help="scenario to serve (repeatable; a directory serves every file in it); default fgt-healthy")
    serve.add_argument("--all", action="store_true", help="serve the whole catalogue, one device per scenario")
    serve.add_argument("--host", default="127.0.0.1", help="address the devices listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=argtypes.port, default=None,
                       help="port of a single device (default 8443; 0 picks a free one)")
    serve.add_argument("--base-port", type=argtypes.port, default=None,
                       help="with several devices: ports BASE, BASE+1, ... (default: free ports)")
    serve.add_argument("--manifest", metavar="FILE",
                       help="write a JSON manifest of the devices once all are ready (removed at start and stop)")
    serve.add_argument("--control-host", default="127.0.0.1", help="address of the control API (default 127.0.0.1)")
    serve.add_argument("--control-port", type=argtypes.port, default=0, help="port of the control API (default: a free one)")
    serve.add_argument("--allow-remote-control", action="store_true",
                       help="let the control API listen on a non-loopback address")
    serve.add_argument("--certs-dir", default="certs", help="where the CA and device certificates are written")
    serve.set_defaults(run=_cmd_serve)


def _cmd_serve(args) -> int:
    from .serve import cmd_serve

    return cmd_serve(args)


def _add_manifest(sub) -> None:
    from . import manifest

    manifest.add_parsers(sub)


def _add_ctl(sub) -> None:
    from .ctl import add_ctl_parser

    add_ctl_parser(sub)


def _add_scenarios(sub) -> None:
    scen = sub.add_parser("scenarios", help="list, explain or check scenario files")
    scen.add_argument("--json", action="store_true", help="machine-readable list")
    scen_sub = scen.add_subparsers(dest="action")
    show = scen_sub.add_parser("show", help="explain one scenario")
    show.add_argument("name")
    check = scen_sub.add_parser("check", help="validate scenario files (a directory: every *.toml in it)")
    check.add_argument("files", nargs="+")
    scen.set_defaults(run=cmd_scenarios)


def _add_check(sub) -> None:
    from . import check

    check.add_parser(sub)


def _add_diagnose(sub) -> None:
    from . import diagnose

    diagnose.add_parser(sub)


def _add_conformance(sub) -> None:
    from . import conformance

    conformance.add_parser(sub)


def _add_ca(sub) -> None:
    from . import ca_cli

    ca_cli.add_parser(sub)


#: Each command and what registers it, in the order --help lists them (manifest.py registers two).
COMMANDS = {
    "serve": _add_serve, "wait": _add_manifest, "manifest": _add_manifest, "ctl": _add_ctl,
    "scenarios": _add_scenarios, "check": _add_check, "diagnose": _add_diagnose,
    "conformance": _add_conformance, "ca": _add_ca,
}


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def command_prefix() -> str:
    """How the user can run mockfgt again as typed: 'mockfgt' if that is on PATH, else the script or python -m."""
    import shlex
    import shutil
    from pathlib import Path

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "mockfgt":
        on_path = shutil.which("mockfgt")
        if on_path and Path(on_path).resolve() == script.resolve():
            return "mockfgt"
        if script.exists():
            return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m mockfgt"


# -- scenarios --------------------------------------------------------------------------------
def cmd_scenarios(args) -> int:
    import json

    from .phases import listing
    from .scenario import catalogue, load

    if args.action == "show":
        print(explain(load(args.name)))
        return 0
    if args.action == "check":
        return check_files(args.files)
    rows = catalogue()
    if args.json:
        print(json.dumps([
            {"name": sc.name, "kind": sc.kind, "expect": sc.expect, "expect_insecure": sc.expect_insecure,
             **sc.also_acceptable_fields(), "shown_by": sc.shown_by, "summary": sc.summary, "source": sc.source,
             **({"phases": listing(sc)} if sc.phases else {})}
            for sc in rows
        ], indent=2))
        return 0
    width = max(len(sc.name) for sc in rows)
    print(f"{'scenario':<{width}}  {'kind':<12}  {'expect':<7}  {'insecure':<8}  {'also':<6}  summary")
    for sc in rows:
        also = sc.also_acceptable or "-"
        print(f"{sc.name:<{width}}  {sc.kind:<12}  {sc.expect:<7}  {sc.expect_insecure:<8}  {also:<6}  {sc.summary}")
    return 0


def explain(sc) -> str:
    from . import codes
    from .phases import listing

    lines = [f"{sc.name} ({sc.kind})", f"  {sc.summary}"]
    if sc.symptom:
        lines.append(f"  Symptom: {sc.symptom}")
    lines += [
        f"  Expect: {codes.titled(sc.expect)}; with Insecure: {codes.titled(sc.expect_insecure)}",
    ]
    if sc.also_acceptable is not None:
        lines.append(f"  Also acceptable: {codes.titled(sc.also_acceptable)}, where {sc.also_acceptable_reason}")
    ciphers = "" if sc.tls["ciphers"] == "default" else f", ciphers {sc.tls['ciphers']}"
    lines += [
        f"  TLS: certificate {sc.tls['certificate']}, versions {', '.join(sc.tls['versions'])}{ciphers}, "
        f"client certificate {sc.tls['client_certificate']}",
        f"  Connection: {sc.connection['fault']}",
    ]
    if sc.setup:
        lines.append("  Setup: " + "; ".join(_op(op) for op in sc.setup))
    if sc.phases:
        lines.append("  Phases (the top level is the first, 'start'):")
        for phase, declared in zip(listing(sc)[1:], sc.phases, strict=True):
            lines.append(f"    {phase['name']}, {phase['trigger']}: expect {phase['expect']}"
                         f"{'' if phase['expect_insecure'] == phase['expect'] else ', insecure ' + phase['expect_insecure']}"
                         f"{'' if phase['expect_pinned'] == phase['expect'] else ', pinned ' + phase['expect_pinned']}"
                         f"{': ' + phase['summary'] if phase['summary'] else ''}")
            if "also_acceptable" in phase:
                lines.append(f"      also acceptable: {codes.titled(phase['also_acceptable'])}, where "
                             f"{phase['also_acceptable_reason']}")
            entering = [_op(op) for op in declared["setup"]]
            entering += [f"client {k} = {v}" for k, v in declared["client"].items() if v is not None]
            entering += ["a new leaf certificate from the same CA"] if declared["reissue_certificate"] else []
            if entering:
                used = f"the fault of {declared['use']}: " if declared["use"] else ""
                lines.append("      on entry: " + used + "; ".join(entering))
    lines.append(f"  Remedy: {sc.remedy['summary'] or '-'}")
    for op in sc.remedy["device"]:
        lines.append(f"    device: {_op(op)}")
    changes = {k: v for k, v in sc.remedy["client"].items() if v is not None}
    if changes:
        lines.append("    client: " + ", ".join(f"{k} = {v}" for k, v in changes.items()))
    if sc.expect != codes.OK:
        lines.append(f"  What to tell the user ({codes.TITLES[sc.expect]}):")
        lines += [f"    - {tip}" for tip in codes.guidance(sc.expect)]
    lines.append(f"  File: {sc.source}")
    return "\n".join(lines)


def _op(op: dict) -> str:
    args = ", ".join(f"{k}={v}" for k, v in op.items() if k != "op" and v is not None)
    return f"{op['op']}({args})"


def check_files(files: list[str]) -> int:
    """Validate each file (a directory: every ``*.toml`` in it); 1 if any fails."""
    from .scenario import ScenarioError, expand, load

    try:
        expanded = expand(files)
    except ScenarioError as exc:
        print(f"FAIL {exc}")
        return 1
    failed = 0
    for file in expanded:
        try:
            sc = load(file)
        except ScenarioError as exc:
            failed += 1
            print(f"FAIL {exc}")
        else:
            print(f"ok   {file}: {sc.name} ({sc.kind}, expect {sc.expect})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
