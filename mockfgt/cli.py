"""The ``mockfgt`` command: serve a scenario, list and check scenario files.

    mockfgt serve [--scenario NAME|FILE] [--host H] [--port P] [--certs-dir DIR]
    mockfgt scenarios [--json]
    mockfgt scenarios show NAME
    mockfgt scenarios check FILE...
    mockfgt diagnose https://HOST[:PORT] --token T [...]   (see mockfgt.diagnose)
    mockfgt conformance [--write docs/conformance.md]     (see mockfgt.conformance)
"""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from . import codes, conformance, diagnose
from .device import Device
from .scenario import Scenario, ScenarioError, catalogue, load
from .tls import HarnessCA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mockfgt", description="Mock FortiGate / FortiManager over real HTTPS.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a mock device until Ctrl+C")
    serve.add_argument("--scenario", default="fgt-healthy", help="catalogue name or TOML file (default: fgt-healthy)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443, help="0 picks a free port (default: 8443)")
    serve.add_argument("--certs-dir", default="certs", help="where the CA and device certificates are written")
    serve.set_defaults(run=cmd_serve)

    scen = sub.add_parser("scenarios", help="list, explain or check scenario files")
    scen.add_argument("--json", action="store_true", help="machine-readable list")
    scen_sub = scen.add_subparsers(dest="action")
    show = scen_sub.add_parser("show", help="explain one scenario")
    show.add_argument("name")
    check = scen_sub.add_parser("check", help="validate scenario files")
    check.add_argument("files", nargs="+")
    scen.set_defaults(run=cmd_scenarios)

    diagnose.add_parser(sub)
    conformance.add_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ScenarioError as exc:
        print(f"mockfgt: {exc}", file=sys.stderr)
        return 2


# -- serve ------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    ca = HarnessCA(Path(args.certs_dir))
    try:
        device = Device(args.scenario, host=args.host, port=args.port, ca=ca)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"mockfgt: port {args.port} on {args.host} is already in use; choose another with "
                  f"--port (make serve PORT=...) or --port 0 for a free one", file=sys.stderr)
            return 1
        raise
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with device:
        print(describe(device), flush=True)
        stop.wait()
    print("mockfgt: stopped", flush=True)
    return 0


def curl_line(device: Device) -> str:
    client = device.client
    parts = ["curl"]
    if client.verify is False:
        parts.append("--insecure")
    elif isinstance(client.verify, str):
        parts += ["--cacert", client.verify]
    if client.cert:
        parts += ["--cert", client.cert[0], "--key", client.cert[1]]
    for name, value in client.headers().items():
        parts += ["-H", f"{name}: {value}"]
    url = client.url + status_path(device.scenario)
    if client.params():
        url += "?" + "&".join(f"{k}={v}" for k, v in client.params().items())
    parts.append(url)
    return " ".join(shlex.quote(p) for p in parts)


def status_path(scenario: Scenario) -> str:
    return "/api/v2/monitor/system/status" if scenario.kind == "fortigate" else "/jsonrpc"


def describe(device: Device) -> str:
    sc = device.scenario
    kind = "FortiGate" if sc.kind == "fortigate" else "FortiManager"
    lines = [
        f"mockfgt: {kind} '{sc.name}' ready: {sc.summary}",
        f"  URL        {device.url}",
        f"  API token  {device.token}",
        f"  CA bundle  {device.ca_bundle}",
        "",
        "  The agent, as configured in this scenario:" if sc.name != "fgt-healthy" else "  Try:",
        f"    {curl_line(device)}",
        "",
        f"  A correct client reports: {_code(sc.expect)}; with Insecure: {_code(sc.expect_insecure)}",
    ]
    if sc.expect != codes.OK or sc.expect_insecure != codes.OK:
        lines.append(f"  Remedy: {sc.remedy['summary']}")
    lines.append("\nPress Ctrl+C to stop.")
    return "\n".join(lines)


def _code(code: str) -> str:
    return code if code == codes.OK else f"{code} ({codes.TITLES[code]})"


# -- scenarios --------------------------------------------------------------------------------
def cmd_scenarios(args) -> int:
    if args.action == "show":
        print(explain(load(args.name)))
        return 0
    if args.action == "check":
        return check_files(args.files)
    rows = catalogue()
    if args.json:
        print(json.dumps([
            {"name": sc.name, "kind": sc.kind, "expect": sc.expect, "expect_insecure": sc.expect_insecure,
             "summary": sc.summary, "source": sc.source}
            for sc in rows
        ], indent=2))
        return 0
    width = max(len(sc.name) for sc in rows)
    print(f"{'scenario':<{width}}  {'kind':<12}  {'expect':<7}  {'insecure':<8}  summary")
    for sc in rows:
        print(f"{sc.name:<{width}}  {sc.kind:<12}  {sc.expect:<7}  {sc.expect_insecure:<8}  {sc.summary}")
    return 0


def explain(sc: Scenario) -> str:
    lines = [f"{sc.name} ({sc.kind})", f"  {sc.summary}"]
    if sc.symptom:
        lines.append(f"  Symptom: {sc.symptom}")
    lines += [
        f"  Expect: {_code(sc.expect)}; with Insecure: {_code(sc.expect_insecure)}",
        f"  TLS: certificate {sc.tls['certificate']}, versions {', '.join(sc.tls['versions'])}, "
        f"client certificate {sc.tls['client_certificate']}",
        f"  Connection: {sc.connection['fault']}",
    ]
    if sc.setup:
        lines.append("  Setup: " + "; ".join(_op(op) for op in sc.setup))
    lines.append(f"  Remedy: {sc.remedy['summary'] or '-'}")
    for op in sc.remedy["device"]:
        lines.append(f"    device: {_op(op)}")
    changes = {k: v for k, v in sc.remedy["client"].items() if v is not None}
    if changes:
        lines.append("    client: " + ", ".join(f"{k} = {v}" for k, v in changes.items()))
    if sc.expect != codes.OK:
        lines.append(f"  What to tell the user ({codes.TITLES[sc.expect]}):")
        lines += [f"    - {tip}" for tip in codes.GUIDANCE[sc.expect]]
    lines.append(f"  File: {sc.source}")
    return "\n".join(lines)


def _op(op: dict) -> str:
    args = ", ".join(f"{k}={v}" for k, v in op.items() if k != "op" and v is not None)
    return f"{op['op']}({args})"


def check_files(files: list[str]) -> int:
    failed = 0
    for file in files:
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
