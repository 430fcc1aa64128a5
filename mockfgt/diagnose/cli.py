"""``mockfgt diagnose`` on the command line (also ``python -m mockfgt.diagnose``)."""

from __future__ import annotations

import argparse
import json
import sys

from .. import argtypes, kinds
from ..agent import DEFAULT_TIMEOUT, Agent
from ..codes import OK
from .target import WRITE_PREFIX, checked


def add_parser(sub) -> None:
    """Register ``diagnose`` on the ``mockfgt`` command's subparsers."""
    p = sub.add_parser("diagnose", help="probe a device (real or mock) layer by layer and say what to fix",
                       description="Probe a FortiGate or FortiManager (real or mock) one layer at a time and say what to fix.")
    p.add_argument("url", nargs="?", help="https://HOST[:PORT] of the device")
    p.add_argument("--from-manifest", nargs=2, metavar=("FILE", "DEVICE"),
                   help="diagnose as the agent a running mockfgt's manifest describes for DEVICE "
                        "(its URL, trust, credential, scope and writes); --timeout still applies")
    p.add_argument("--token", help="API token (use - to read it from standard input)")
    p.add_argument("--kind", default=kinds.DEFAULT_KIND,
                   help="the device's kind: fortigate (default), fortimanager, or one an installed plugin adds")
    p.add_argument("--ca", help="CA bundle the agent trusts (default: the system store)")
    p.add_argument("--insecure", action="store_true", help="as the agent's Insecure option: do not verify the certificate")
    p.add_argument("--cert", help="client certificate (PEM), for devices that require one")
    p.add_argument("--key", help="the client certificate's key (PEM)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--vdom", help="FortiGate VDOM the agent works in")
    scope.add_argument("--adom", help="FortiManager ADOM the agent works in (default: root)")
    p.add_argument("--token-in", choices=("header", "query"), default="header",
                   help="where the agent sends the token (query: ?access_token=)")
    p.add_argument("--user", help="log in as this admin instead of using an API key (FortiOS: /api/v2/authentication, "
                                  "falling back to /logincheck; FortiManager: exec /sys/login/user)")
    p.add_argument("--password", help="the admin's password (use - to read it from standard input)")
    p.add_argument("--login", choices=("authentication", "logincheck"), default="authentication",
                   help="FortiOS: how to log in (logincheck: the /logincheck form and its cookies only)")
    p.add_argument("--accept-banner", action="store_true",
                   help="FortiOS: accept the post-login disclaimer, as the agent is configured to")
    p.add_argument("--session", help="a session the agent kept from an earlier login (FortiOS session key, "
                                     "FortiManager session id), used instead of logging in")
    p.add_argument("--trusthost-user", metavar="ADMIN",
                   help="FortiManager trusted-hosts mode: read ADMIN's trusted hosts and write them back unchanged")
    p.add_argument("--write-check", action="store_true",
                   help=f"also create and delete one address ({WRITE_PREFIX}<random>)")
    p.add_argument("--timeout", type=argtypes.seconds, default=None,
                   help=f"seconds per network step (default: {DEFAULT_TIMEOUT:g}, or the manifest's)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(run=command)


def command(args) -> int:
    try:
        target = checked(_from_manifest(args) if args.from_manifest else _from_options(args))
    except ValueError as exc:
        print(f"mockfgt diagnose: {exc}", file=sys.stderr)
        return 2
    from . import diagnose  # the package's entry

    report = diagnose(target)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    return 0 if report.verdict == OK else 1


def _from_manifest(args) -> Agent:
    """The agent a manifest entry describes; the manifest's errors and a wrong name are ValueErrors."""
    import dataclasses

    from .. import manifest

    if args.url:
        raise ValueError("give either a URL or --from-manifest, not both")
    path, name = args.from_manifest
    try:
        document = manifest.read(path)
    except manifest.ManifestError as exc:
        raise ValueError(str(exc)) from None
    entry = next((d for d in document["devices"] if d.get("name") == name), None)
    if entry is None or "agent" not in entry:
        names = ", ".join(d.get("name", "?") for d in document["devices"])
        raise ValueError(f"{path}: no device {name!r} with agent settings (devices: {names})")
    agent = Agent.from_document(entry["agent"])
    return dataclasses.replace(agent, timeout=args.timeout) if args.timeout else agent


def _from_options(args) -> Agent:
    if not args.url:
        raise ValueError("give the device's URL (https://HOST[:PORT]) or --from-manifest FILE DEVICE")
    session, user = _secret(args.session), args.user
    return Agent(
            url=args.url, kind=args.kind, auth="session" if session else "password" if user else "token",
            token=_secret(args.token), session=session, user=user, password=_secret(args.password),
            verify=False if args.insecure else args.ca or True, token_in=args.token_in,
            cert=(args.cert, args.key or args.cert) if args.cert else None, vdom=args.vdom, adom=args.adom,
            login=args.login, accept_banner=args.accept_banner, trusthost_user=args.trusthost_user,
            timeout=args.timeout or DEFAULT_TIMEOUT, write=args.write_check,
        )


def _secret(value: str | None) -> str | None:
    return sys.stdin.readline().strip() if value == "-" else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mockfgt")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diagnose", *(argv or sys.argv[1:])])
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
