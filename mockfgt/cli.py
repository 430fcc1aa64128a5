"""The ``mockfgt`` command: serve scenarios, steer a running harness, list and check scenario files.

    mockfgt serve [--scenario NAME|FILE|DIR]... [--all] [--port P | --base-port P] [--manifest FILE]
    mockfgt ctl [--control URL | --manifest FILE] VERB ...
    mockfgt scenarios [--json]
    mockfgt scenarios show NAME
    mockfgt scenarios check FILE|DIR...
    mockfgt diagnose https://HOST[:PORT] --token T [...]   (see mockfgt.diagnose)
    mockfgt conformance [--write docs/conformance.md]     (see mockfgt.conformance)
    mockfgt ca [--certs-dir DIR] [--install-hint | --renew] (see mockfgt.ca_cli)
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

from . import ca_cli, codes, conformance, diagnose
from .ctl import add_ctl_parser
from .device import Device
from .harness import Harness
from .probe import first_call
from .scenario import Scenario, ScenarioError, catalogue, kinds, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mockfgt", description="Mock FortiGate / FortiManager over real HTTPS.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run mock devices until Ctrl+C or SIGTERM")
    serve.add_argument("--scenario", action="append", default=[], metavar="NAME|FILE|DIR",
                       help="scenario to serve (repeatable; a directory serves every file in it); default fgt-healthy")
    serve.add_argument("--all", action="store_true", help="serve the whole catalogue, one device per scenario")
    serve.add_argument("--host", default="127.0.0.1", help="address the devices listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None,
                       help="port of a single device (default 8443; 0 picks a free one)")
    serve.add_argument("--base-port", type=int, default=None,
                       help="with several devices: ports BASE, BASE+1, ... (default: free ports)")
    serve.add_argument("--manifest", metavar="FILE", help="write a JSON manifest of the devices once all are ready")
    serve.add_argument("--control-host", default="127.0.0.1", help="address of the control API (default 127.0.0.1)")
    serve.add_argument("--control-port", type=int, default=0, help="port of the control API (default: a free one)")
    serve.add_argument("--allow-remote-control", action="store_true",
                       help="let the control API listen on a non-loopback address")
    serve.add_argument("--certs-dir", default="certs", help="where the CA and device certificates are written")
    serve.set_defaults(run=cmd_serve)

    add_ctl_parser(sub)

    scen = sub.add_parser("scenarios", help="list, explain or check scenario files")
    scen.add_argument("--json", action="store_true", help="machine-readable list")
    scen_sub = scen.add_subparsers(dest="action")
    show = scen_sub.add_parser("show", help="explain one scenario")
    show.add_argument("name")
    check = scen_sub.add_parser("check", help="validate scenario files (a directory: every *.toml in it)")
    check.add_argument("files", nargs="+")
    scen.set_defaults(run=cmd_scenarios)

    diagnose.add_parser(sub)
    conformance.add_parser(sub)
    ca_cli.add_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ScenarioError as exc:
        print(f"mockfgt: {exc}", file=sys.stderr)
        return 2


# -- serve ------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    refs = _scenario_refs(args)
    if len(refs) > 1 and args.port not in (None, 0):
        print("mockfgt: --port is for a single device; with several use --base-port or leave ports free",
              file=sys.stderr)
        return 2
    single_port = 8443 if args.port is None else args.port
    try:
        harness = Harness(certs_dir=Path(args.certs_dir), host=args.host, base_port=args.base_port,
                          control_host=args.control_host, control_port=args.control_port,
                          allow_remote_control=args.allow_remote_control)
        for i, ref in enumerate(refs):
            port = single_port if len(refs) == 1 else (args.base_port + i if args.base_port else 0)
            try:
                harness.add(ref, port=port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    print(f"mockfgt: port {port} on {args.host} is already in use; choose another with "
                          f"--port / --base-port (make serve PORT=...), or --port 0 for a free one", file=sys.stderr)
                    return 1
                raise
    except OSError as exc:
        print(f"mockfgt: cannot listen on {args.host}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"mockfgt: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with harness:
        harness.start(manifest=args.manifest)
        print(ready_text(harness), flush=True)
        stop.wait()
    print("mockfgt: stopped", flush=True)
    return 0


def _scenario_refs(args) -> list:
    """Scenario names/files to serve: --all, directories expanded, fgt-healthy when none given."""
    refs: list = [sc for sc in catalogue()] if args.all else []
    for ref in args.scenario:
        path = Path(ref)
        refs += sorted(path.glob("*.toml")) if path.is_dir() else [ref]
    return refs or ["fgt-healthy"]


def ready_text(harness: Harness) -> str:
    devices = list(harness.devices.values())
    lines = [describe(devices[0])] if len(devices) == 1 else [_device_table(devices)]
    lines.append("")
    if harness.control_url:
        lines.append(f"  Control API  {harness.control_url}   (mockfgt ctl --control {harness.control_url} devices)")
    if harness.manifest_path:
        lines.append(f"  Manifest     {harness.manifest_path}")
    lines.append("\nPress Ctrl+C to stop.")
    return "\n".join(lines)


def _device_table(devices: list[Device]) -> str:
    width = max(len(d.name) for d in devices)
    lines = [f"mockfgt: {len(devices)} devices ready (CA bundle {devices[0].ca_bundle})",
             f"  {'device':<{width}}  {'url':<28}  {'expect':<7}  insecure"]
    lines += [f"  {d.name:<{width}}  {d.url:<28}  {d.expect:<7}  {d.expect_insecure}" for d in devices]
    return "\n".join(lines)


def curl_line(device: Device) -> str:
    client = device.client
    parts = ["curl", *conformance.curl_trust(client)]
    for name, value in client.headers().items():
        parts += ["-H", f"{name}: {value}"]
    if device.scenario.kind == "fortimanager":  # JSON-RPC: the agent's first call as a POST body
        parts += ["-H", "Content-Type: application/json", "--data", json.dumps(first_call(client))]
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
        *credential_lines(device),
        f"  CA bundle  {device.ca_bundle}",
        "",
        "  The agent, as configured in this scenario:" if sc.name not in ("fgt-healthy", "fmg-healthy") else "  Try:",
        f"    {curl_line(device)}",
        "",
        f"  A correct client reports: {_code(sc.expect)}; with Insecure: {_code(sc.expect_insecure)}",
    ]
    if sc.expect != codes.OK or sc.expect_insecure != codes.OK:
        lines.append(f"  Remedy: {sc.remedy['summary']}")
    return "\n".join(lines)


def credential_lines(device: Device) -> list[str]:
    """The device's credentials: a FortiGate's token; a FortiManager's endpoint and key or login."""
    if device.scenario.kind != "fortimanager":
        return [f"  API token  {device.token}"]
    client = device.client
    lines = [f"  JSON-RPC   {device.url}/jsonrpc"]
    if client.auth == "token":
        return lines + [f"  API key    {device.token}  (admin {client.user}; Authorization: Bearer)"]
    password = kinds()["fortimanager"].password_for(device.state, client.user, "current")
    return lines + [f"  Login      {client.user} / {password}  (exec /sys/login/user)"]


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
    """Validate each file (a directory: every ``*.toml`` in it); 1 if any fails."""
    failed = 0
    for file in _expand(files):
        try:
            sc = load(file)
        except ScenarioError as exc:
            failed += 1
            print(f"FAIL {exc}")
        else:
            print(f"ok   {file}: {sc.name} ({sc.kind}, expect {sc.expect})")
    return 1 if failed else 0


def _expand(refs: list[str]) -> list[str]:
    out: list[str] = []
    for ref in refs:
        path = Path(ref)
        out += [str(p) for p in sorted(path.glob("*.toml"))] if path.is_dir() else [ref]
    return out


if __name__ == "__main__":
    sys.exit(main())
