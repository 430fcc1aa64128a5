"""``mockfgt serve``: run devices until Ctrl+C or SIGTERM, with a ready banner a user can act on.

The banner of one device shows its URL, credentials, CA bundle and one curl command: the agent's
call that shows the scenario's fault, as the scenario configures the agent.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal
import socket  # noqa: F401 - before ssl: a Ctrl+C while _ssl imports _socket becomes an ImportError
import ssl
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import codes
from .device import Device
from .harness import Harness
from .kinds import PasswordLogins
from .scenario import Scenario, catalogue, expand, kinds
from .tls import prepare_rsa_keys

if TYPE_CHECKING:
    from .flows import Call, Conversation

#: Seconds the banner's curl waits, as an agent with a timeout would: a stall shows as a timeout.
AGENT_TIMEOUT = 10


def stop_signals() -> set[int]:
    """The signals that stop serve: SIGTERM, and SIGINT unless this process was started ignoring it.

    Every thread blocks them and the main thread takes them with sigwait: a handler could miss a
    signal that the kernel handed to a busy device thread while the main thread slept (seen under
    load: SIGTERM ignored until sent again). A shell starts background jobs with SIGINT ignored
    (`mockfgt serve &` in a script, nohup): that stays so, as for any other program, rather than
    SIGINT being lost before the mask is set and obeyed after.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    return {signal.SIGTERM} if ignored else {signal.SIGINT, signal.SIGTERM}


def cmd_serve(args) -> int:
    if args.manifest:  # a reader must never take a previous run's file for this one's, even if we fail
        Path(args.manifest).unlink(missing_ok=True)
    refs = _scenario_refs(args)
    if len(refs) > 1 and args.port not in (None, 0):
        print("mockfgt: --port is for a single device; with several use --base-port or leave ports free",
              file=sys.stderr)
        return 2
    if args.base_port and args.base_port + len(refs) - 1 > 65535:
        print(f"mockfgt: --base-port {args.base_port} leaves no room for {len(refs)} devices (ports end at 65535)",
              file=sys.stderr)
        return 2
    prepare_rsa_keys(r.tls["certificate"] for r in refs if isinstance(r, Scenario))  # in threads, meanwhile
    stopping = stop_signals()
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # threads started from here on inherit it
    try:
        try:
            harness = _build(args, refs)
        except ValueError as exc:  # a scenario that cannot be served, a control API off loopback
            print(f"mockfgt: {exc}", file=sys.stderr)
            return 2
        if harness is None:
            return 1
        with harness:
            harness.start(manifest=args.manifest)
            print(ready_text(harness), flush=True)
            # Every device answers from here on; what its first request would build is built now,
            # while the agent reads the manifest and starts (the cold start: docs/performance.md).
            threading.Thread(target=harness.warm_up, name="mockfgt-warm-up", daemon=True).start()
            signal.sigwait(stopping)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
    print("mockfgt: stopped", flush=True)
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown: everything is stopped and flushed, and
    collecting dozens of devices' objects on a busy machine took longer (0.3 to 0.9 s) than the stop."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _build(args, refs: list) -> Harness | None:
    """The harness with every device bound; None after printing why a port could not be had."""
    single_port = 8443 if args.port is None else args.port
    harness = Harness(certs_dir=Path(args.certs_dir), host=args.host, base_port=args.base_port,
                      control_host=args.control_host, control_port=args.control_port,
                      allow_remote_control=args.allow_remote_control,
                      build_apps=False)  # built once the manifest is out (harness.warm_up)
    for i, ref in enumerate(refs):
        port = single_port if len(refs) == 1 else (args.base_port + i if args.base_port else 0)
        try:
            harness.add(ref, port=port)
        except (OSError, ValueError) as exc:
            harness.stop()
            if not isinstance(exc, OSError) or exc.filename or isinstance(exc, ssl.SSLError):
                raise  # not the socket: a scenario, a file or certificate material the caller reports
            if exc.errno == errno.EADDRINUSE:
                print(f"mockfgt: port {port} on {args.host} is already in use; choose another with "
                      f"--port / --base-port (make serve PORT=...), or --port 0 for a free one", file=sys.stderr)
            else:
                print(f"mockfgt: cannot listen on {args.host} port {port}: {exc.strerror or exc}", file=sys.stderr)
            return None
    return harness


def _scenario_refs(args) -> list:
    """Scenario names/files to serve: --all, directories expanded, fgt-healthy when none given."""
    refs: list = list(catalogue()) if args.all else []
    return [*refs, *expand(args.scenario)] or ["fgt-healthy"]


def ready_text(harness: Harness) -> str:
    from .cli import command_prefix

    devices = list(harness.devices.values())
    lines = [describe(devices[0])] if len(devices) == 1 else [_device_table(devices)]
    lines.append("")
    if harness.control_url:
        # The token is shown here, to whoever started serve, and in the 0600 manifest: nowhere else.
        # The suggested command passes it in the environment, not in argv, which `ps` shows to all.
        if harness.manifest_path:
            command = f"{command_prefix()} ctl --manifest {shlex.quote(str(harness.manifest_path))} devices"
        else:
            command = (f"MOCKFGT_CONTROL_TOKEN={harness.control_token} "
                       f"{command_prefix()} ctl --control {harness.control_url} devices")
        lines.append(f"  Control API  {harness.control_url}   ({command})")
        if harness.manifest_path:  # else the hint above holds it: once either way
            lines.append(f"               token {harness.control_token}   (Authorization: Bearer; also in the manifest)")
    if harness.manifest_path:
        lines.append(f"  Manifest     {harness.manifest_path}")
    lines.append("\nPress Ctrl+C to stop.")
    return "\n".join(lines)


def _device_table(devices: list[Device]) -> str:
    width = max(len(d.name) for d in devices)
    lines = [f"mockfgt: {len(devices)} devices ready (CA bundle {devices[0].ca_bundle})",
             f"  {'device':<{width}}  {'url':<28}  {'expect':<7}  insecure"]
    lines += [f"  {d.name:<{width}}  {d.url:<28}  {d.expect:<7}  {d.expect_insecure}"
              + (f"  (also acceptable: {d.also_acceptable})" if d.also_acceptable else "") for d in devices]
    return "\n".join(lines)


def curl_line(device: Device) -> str:
    """One curl command for the agent's call that shows this scenario's fault (``shown_by``).

    A cookie-session agent's ``/logincheck`` login goes first in the same command: curl keeps its
    cookies across ``--next``, so the call after it carries the session as the agent's would.
    """
    requests = agent_requests(device)
    parts = ["curl"]
    for i, (method, url, headers, body) in enumerate(requests):
        parts += ["--next"] if i else []
        parts += ["--max-time", str(AGENT_TIMEOUT), *device.client.curl_trust()]
        parts += ["--cookie", ""] if len(requests) > 1 else []  # an empty jar: the cookie engine, in memory
        if method not in ("GET", "POST") or (method == "POST" and body is None):
            parts += ["-X", method]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        parts += ["--data", body.decode()] if body is not None else []
        parts.append(url)
    return " ".join(shlex.quote(p) for p in parts)


def agent_requests(device: Device) -> list[tuple[str, str, dict, bytes | None]]:
    """(method, url, headers, body) of the call that shows the fault, after a cookie login it needs."""
    talk, calls = _shown_calls(device)
    return [(method, device.client.url + path, headers, body)
            for method, path, headers, body in (talk.request(call) for call in calls)]


def _shown_calls(device: Device) -> tuple[Conversation, list[Call]]:
    """The agent's call named by ``shown_by``, after the /logincheck login it needs for cookies."""
    from .flows import Conversation

    agent = device.client
    talk = Conversation(agent, send=None)
    calls = [c for c in agent.calls() if (c.when in ("", "logincheck") and talk.wants(c))
             or c.role == device.scenario.shown_by]  # a conditional call named by shown_by (a lock) too
    shown = next((c for c in calls if c.role == device.scenario.shown_by), calls[0])
    logins = [c for c in calls if c.role == "login" and c.form is not None and shown.role != "login"]
    return talk, [*logins, shown]


def shown_by_label(device: Device) -> str:
    """'POST /api/v2/cmdb/firewall/address' or 'add /pm/config/...': the call whose answer shows the fault."""
    return _shown_calls(device)[1][-1].label


def describe(device: Device) -> str:
    sc = device.scenario
    kind = kinds()[sc.kind].display_name
    healthy = sc.expect == codes.OK and sc.expect_insecure == codes.OK
    expected = device.expect
    lines = [
        f"mockfgt: {kind} '{sc.name}' ready: {sc.summary}",
        f"  URL        {device.url}",
        *credential_lines(device),
        f"  CA bundle  {device.ca_bundle}",
        "",
        "  Try:" if healthy else f"  The agent, as configured in this scenario ({shown_by_label(device)} shows the fault):",
        f"    {curl_line(device)}",
        "",
        (f"  A correct client reports: {codes.titled(sc.expect)}; with Insecure: {codes.titled(sc.expect_insecure)}"
         if not expected.insecure else
         f"  A correct client (this agent: Insecure) reports: {codes.titled(expected)}"),
    ]
    if sc.also_acceptable is not None:
        lines.append(f"  Also acceptable: {codes.titled(sc.also_acceptable)}, where {sc.also_acceptable_reason}")
    if not healthy:
        lines.append(f"  Remedy: {sc.remedy['summary']}")
    return "\n".join(lines)


def credential_lines(device: Device) -> list[str]:
    """The device's credentials: its API key, or for an agent that logs in, the admin's login."""
    client = device.client
    kind = kinds()[device.scenario.kind]
    lines = kind.banner_lines(device.url)
    if client.auth == "token":
        return lines + [f"  API token  {device.token}"]
    assert isinstance(kind, PasswordLogins) and client.user, "scenario validation refuses a password agent otherwise"
    password = kind.password_for(device.state, client.user)
    return lines + [f"  Login      {client.user} / {password}"]


