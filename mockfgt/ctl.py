"""``mockfgt ctl``: the control API from a shell script, JSON out.

    mockfgt ctl --manifest run/mockfgt.json devices
    mockfgt ctl show expired-cert url              # one field as plain text, for shell variables
    mockfgt ctl use fgt-healthy expired-cert
    mockfgt ctl remedy expired-cert
    mockfgt ctl regenerate-key fgt-healthy [--user agent]
    mockfgt ctl set-trusthosts fgt-healthy [--user agent] 10.0.0.0/8 2001:db8::/32
    mockfgt ctl journal fgt-healthy [--since SEQ] [--limit N] [--clear]

The control URL comes from ``--control URL``, ``--manifest FILE`` (its ``control_url``), or the
environment variables ``MOCKFGT_CONTROL`` / ``MOCKFGT_MANIFEST``, in that order.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

from . import manifest


def add_ctl_parser(sub) -> None:
    ctl = sub.add_parser("ctl", help="steer a running `mockfgt serve` through its control API (JSON out)")
    ctl.add_argument("--control", metavar="URL", help="control API URL (printed by serve, in the manifest)")
    ctl.add_argument("--manifest", metavar="FILE", help="read the control API URL from this manifest")
    verbs = ctl.add_subparsers(dest="verb", required=True)
    verbs.add_parser("devices", help="list the devices")
    show = verbs.add_parser("show", help="one device; with FIELD (e.g. url, token, client.url) just that value")
    show.add_argument("device")
    show.add_argument("field", nargs="?")
    use = verbs.add_parser("use", help="switch a device to another scenario")
    use.add_argument("device")
    use.add_argument("scenario")
    for verb, text in (("remedy", "apply the scenario's remedy"), ("reset", "back to the scenario's start"),
                       ("expire-sessions", "end every login session")):
        verbs.add_parser(verb, help=text).add_argument("device")
    regen = verbs.add_parser("regenerate-key", help="give an API user a new key (the old one stops working)")
    regen.add_argument("device")
    regen.add_argument("--user", help="API user (default: the one the agent uses)")
    hosts = verbs.add_parser("set-trusthosts", help="set an API user's trusted hosts (none: any source)")
    hosts.add_argument("device")
    hosts.add_argument("trusthosts", nargs="*", metavar="PREFIX")
    hosts.add_argument("--user", help="API user (default: the one the agent uses)")
    op = verbs.add_parser("op", help='run any scenario operation: op DEVICE \'{"op": "set-access", ...}\'')
    op.add_argument("device")
    op.add_argument("operation", help="the operation as a JSON object")
    journal = verbs.add_parser("journal", help="what happened on the device's port")
    journal.add_argument("device")
    journal.add_argument("--since", type=int, default=0, help="only events after this sequence number")
    journal.add_argument("--limit", type=int, default=None, help="at most this many events (default: all)")
    journal.add_argument("--clear", action="store_true", help="forget the journal instead")
    ctl.set_defaults(run=cmd_ctl)


def cmd_ctl(args) -> int:
    try:
        base = control_url(args)
        method, path, body = _request_for(args)
        if args.verb == "journal" and not args.clear:
            result = read_journal(base, args.device, args.since, args.limit)
        else:
            result = call(base, method, path, body)
        if args.verb == "show" and args.field:
            value = _field(result, args.field)
            print(value if isinstance(value, str) else json.dumps(value))
        else:
            print(json.dumps(result, indent=2))
    except CtlError as exc:
        print(f"mockfgt ctl: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


class CtlError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def control_url(args) -> str:
    if args.control:
        return args.control.rstrip("/")
    path = args.manifest or os.environ.get("MOCKFGT_MANIFEST")
    if not path and os.environ.get("MOCKFGT_CONTROL"):
        return os.environ["MOCKFGT_CONTROL"].rstrip("/")
    if not path:
        raise CtlError("no control API given: use --control URL or --manifest FILE "
                       "(or set MOCKFGT_CONTROL / MOCKFGT_MANIFEST)", 2)
    try:
        url = manifest.read(path).get("control_url")
    except manifest.ManifestError as exc:
        raise CtlError(str(exc), 2) from None
    if not url:
        raise CtlError(f"the manifest {path} has no control_url (was serve started without one?)", 2)
    return url.rstrip("/")


def _request_for(args) -> tuple[str, str, dict | None]:
    device = f"/devices/{getattr(args, 'device', '')}"
    verb = args.verb
    if verb == "devices":
        return "GET", "/devices", None
    if verb == "show":
        return "GET", device, None
    if verb == "use":
        return "POST", f"{device}/scenario", {"scenario": args.scenario}
    if verb in ("remedy", "reset", "expire-sessions"):
        return "POST", f"{device}/{verb}", {}
    if verb == "regenerate-key":
        return "POST", f"{device}/regenerate-key", {"user": args.user}
    if verb == "set-trusthosts":
        return "POST", f"{device}/trusthosts", {"user": args.user, "trusthosts": args.trusthosts}
    if verb == "op":
        try:
            return "POST", f"{device}/op", json.loads(args.operation)
        except ValueError as exc:
            raise CtlError(f"the operation must be a JSON object: {exc}", 2) from None
    if verb == "journal":
        if args.clear:
            return "DELETE", f"{device}/journal", None
        return "GET", f"{device}/journal?since={args.since}", None
    raise CtlError(f"unknown verb {verb}", 2)


def read_journal(base: str, device: str, since: int, limit: int | None) -> list:
    """A device's journal after ``since``, page after page (the API answers about 1 MiB at a time)."""
    if limit is not None and limit < 1:
        raise CtlError("--limit must be 1 or more", 2)
    events: list = []
    while limit is None or len(events) < limit:
        query = f"since={since}" + (f"&limit={limit - len(events)}" if limit is not None else "")
        page, headers = call(base, "GET", f"/devices/{device}/journal?{query}", None, with_headers=True)
        events += page
        if headers.get("X-Mockfgt-Journal-More") != "true" or not page:
            break
        since = page[-1]["seq"]
    return events


def call(base: str, method: str, path: str, body: dict | None, *, with_headers: bool = False):
    """One control API call; its JSON answer (and headers), or CtlError with the API's own message."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(request, timeout=30) as response:
            result = json.load(response)
            return (result, response.headers) if with_headers else result
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error")
        except ValueError:
            message = None
        raise CtlError(message or f"HTTP {exc.code} from {base}{path}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CtlError(f"cannot reach the control API at {base} ({reason}); is `mockfgt serve` running?", 3) from None


def _field(document: dict, dotted: str):
    try:
        return manifest.get(document, dotted)
    except manifest.ManifestError as exc:
        raise CtlError(str(exc)) from None
