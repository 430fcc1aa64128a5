"""``mockfgt ctl``: the control API from a shell script, JSON out.

    mockfgt ctl --manifest run/mockfgt.json devices
    mockfgt ctl show expired-cert url              # one field as plain text, for shell variables
    mockfgt ctl use fgt-healthy expired-cert
    mockfgt ctl remedy expired-cert
    mockfgt ctl regenerate-key fgt-healthy [--user agent]
    mockfgt ctl advance session-expires-mid-run    # a phased scenario's next phase
    mockfgt ctl clock session-expires-mid-run 300  # the device's clock, 300 s on
    mockfgt ctl set-trusthosts fgt-healthy [--user agent] 10.0.0.0/8 2001:db8::/32
    mockfgt ctl journal fgt-healthy [--since SEQ] [--limit N] [--clear]

The control URL comes from ``--control URL``, ``--manifest FILE`` (its ``control_url``), or the
environment variables ``MOCKFGT_CONTROL`` / ``MOCKFGT_MANIFEST``, in that order.

Every call carries the run's control token (``Authorization: Bearer``): ``--token TOKEN``, else
``$MOCKFGT_CONTROL_TOKEN``, else the manifest's ``control_token`` (the manifest is 0600: only the user
who started serve can read it). ``--token`` is visible to other users in ``ps``; prefer the
manifest or the environment variable. Device names are sent percent-escaped, so ``customer 4711``,
``kundé`` or ``cust#1`` work as given.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import manifest


def add_ctl_parser(sub) -> None:
    ctl = sub.add_parser("ctl", help="steer a running `mockfgt serve` through its control API (JSON out)")
    ctl.add_argument("--control", metavar="URL", help="control API URL (printed by serve, in the manifest)")
    ctl.add_argument("--manifest", metavar="FILE", help="read the control API URL and token from this manifest")
    ctl.add_argument("--token", help="the control API token, with --control (default: $MOCKFGT_CONTROL_TOKEN, "
                                     "else the manifest's control_token); visible in ps, prefer the variable")
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
    verbs.add_parser("advance", help="enter a phased scenario's next phase now").add_argument("device")
    clock = verbs.add_parser("clock", help="move a device's clock forward (sessions, lockouts, phases)")
    clock.add_argument("device")
    clock.add_argument("seconds", type=float, help="how far, in seconds")
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
        base, token = control_target(args)
        method, path, body = _request_for(args)
        result: Any  # JSON: a journal's events, or the API's answer
        if args.verb == "journal" and not args.clear:
            result = read_journal(base, path.split("?")[0], args.since, args.limit, token)
        else:
            result = call(base, method, path, body, token=token)
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


def control_target(args) -> tuple[str, str | None]:
    """The control API's base URL and the token to send (None: none known; the API will say 401)."""
    token = args.token or os.environ.get("MOCKFGT_CONTROL_TOKEN") or None
    path = args.manifest or os.environ.get("MOCKFGT_MANIFEST")
    url = args.control or (None if path else os.environ.get("MOCKFGT_CONTROL"))
    if url:
        url = _checked_url(url)
        if token is None and path:  # --control and a manifest: its token, if it is that run's
            try:
                document = manifest.read(path)
            except manifest.ManifestError:
                document = {}
            if (document.get("control_url") or "").rstrip("/") == url:
                token = document.get("control_token")
        return url, token
    if not path:
        raise CtlError("no control API given: use --control URL or --manifest FILE "
                       "(or set MOCKFGT_CONTROL / MOCKFGT_MANIFEST)", 2)
    try:
        document = manifest.read(path)
    except manifest.ManifestError as exc:
        raise CtlError(str(exc), 2) from None
    if not document.get("control_url"):
        raise CtlError(f"the manifest {path} has no control_url (was serve started without one?)", 2)
    return _checked_url(document["control_url"]), token or document.get("control_token")


def _checked_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host; else a usage error."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise CtlError(f"{url!r} is not a control API URL ({exc}); expected e.g. http://127.0.0.1:8080", 2) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CtlError(f"{url!r} is not a control API URL; expected e.g. http://127.0.0.1:8080 "
                       "(the control_url of the manifest, or the one serve printed)", 2)
    return url.strip().rstrip("/")


def _request_for(args) -> tuple[str, str, dict | None]:
    # One escaped path segment: 'customer 4711', 'kundé' and 'cust#1' are names, not URL syntax.
    device = f"/devices/{urllib.parse.quote(getattr(args, 'device', ''), safe='')}"
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
    if verb == "advance":
        return "POST", f"{device}/advance", {}
    if verb == "clock":
        return "POST", f"{device}/clock", {"advance": args.seconds}
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


def read_journal(base: str, journal: str, since: int, limit: int | None, token: str | None) -> list:
    """A device's journal after ``since``, page after page (the API answers about 1 MiB at a time)."""
    if limit is not None and limit < 1:
        raise CtlError("--limit must be 1 or more", 2)
    events: list = []
    while limit is None or len(events) < limit:
        query = f"since={since}" + (f"&limit={limit - len(events)}" if limit is not None else "")
        page, headers = call(base, "GET", f"{journal}?{query}", None, token=token, with_headers=True)
        events += page
        if headers.get("X-Mockfgt-Journal-More") != "true" or not page:
            break
        since = page[-1]["seq"]
    return events


def call(base: str, method: str, path: str, body: dict | None, *, token: str | None = None,
         with_headers: bool = False):
    """One control API call; its JSON answer (and headers), or CtlError with the API's own message."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    except ValueError as exc:  # "unknown url type": caught here, not as a traceback
        raise CtlError(f"{base} is not a control API URL ({exc})", 2) from None
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
