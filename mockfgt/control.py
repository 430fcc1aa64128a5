"""The control API: plain HTTP JSON on loopback to list, steer and inspect a harness's devices.

    GET    /devices                          every device as the manifest shows it
    GET    /devices/NAME                     one device
    POST   /devices/NAME/scenario            {"scenario": "expired-cert"}: switch in place
    POST   /devices/NAME/remedy              apply the scenario's documented remedy
    POST   /devices/NAME/reset               back to the scenario's initial state
    POST   /devices/NAME/regenerate-key      {"user": "agent"} (default: the agent's user)
    POST   /devices/NAME/trusthosts          {"user": "agent", "trusthosts": ["10.0.0.0/8"]}
    POST   /devices/NAME/expire-sessions     end every login session (FortiManager, FortiOS admins)
    POST   /devices/NAME/op                  any scenario operation: {"op": "set-access", ...}
    POST   /devices/NAME/advance             a phased scenario's next phase, now
    POST   /devices/NAME/clock               {"advance": SECONDS}: move the device's clock forward
    GET    /devices/NAME/journal?since=SEQ   what happened on the device's port (one page: &limit=N)
    DELETE /devices/NAME/journal             forget it
    GET    /manifest                         the manifest document

NAME is percent-escaped as one path segment (``customer%204711``, ``kund%C3%A9``, ``cust%231``).
Every change answers the device as it is afterwards (new token included) and rewrites the manifest.
A journal is read in pages of at most ``limit`` events and about ``JOURNAL_PAGE_BYTES``: when more
follow, the answer says so in ``X-Mockfgt-Journal-More: true``, and ``X-Mockfgt-Journal-Next`` is the
``since`` of the next page (``mockfgt ctl journal`` reads every page). ``X-Mockfgt-Journal-Evicted``
counts the events dropped, oldest first, to keep the journal within its bounds.

Who may call it: whoever holds the run's secret (``Harness.control_token``; the manifest's
``control_token``, a 0600 file; the ready banner of ``mockfgt serve``), sent on every request as
``Authorization: Bearer TOKEN``. Loopback is not a boundary: every local user reaches the port, and
so does any web page the user opens (cross-origin "simple" requests, DNS rebinding). So, before a
route runs, and in this order:

- ``Host`` must name the loopback address and port the API listens on (``127.0.0.1:P``,
  ``[::1]:P``, ``localhost:P``), else 403: a rebound name (``rebind.evil.example:P``) is refused.
  With ``allow_remote_control`` any Host is accepted and the token is the only barrier.
- An ``Origin`` header other than the API's own (``http://`` + Host) is refused, 403; no CORS header
  is ever sent, so a browser never lets a page read an answer.
- No or wrong token: 401 (compared in constant time).
- A body over ``MAX_CONTROL_BODY`` (1 MiB): 413, by its declared length, unread.
- A body, or a declared Content-Type, that is not ``application/json``: 415 (forms and text/plain are
  what a page may send without a preflight).
- Bodies nested deeper than ``mockfgt.bodies.MAX_DEPTH`` or with strings over ``MAX_STRING``
  characters: 400.

Scenarios are asked for by name only (``scenario.NAME``), never by path: nothing a caller sends opens
a file on this side. Errors are JSON, ``{"error": "what was wrong"}`` with 400, 401, 403, 404, 405,
413 or 415, and repeat at most about 100 characters of anything the caller sent.
"""

from __future__ import annotations

import hmac
import json
import threading
from typing import TYPE_CHECKING

from . import bodies
from .hosts import is_loopback, url_host
from .scenario import ScenarioError, load
from .schema import shown

if TYPE_CHECKING:
    from flask import Flask

#: Larger bodies are refused (413) unread: no control request needs more than a few hundred bytes.
MAX_CONTROL_BODY = 1024 * 1024
#: Longest string (key or value) a control body may hold: device names, users, passwords and
#: prefixes are far shorter, and an error that repeats one stays short.
MAX_STRING = 255

#: The most a journal page weighs (events as compact JSON; a page holds at least one event): a
#: journal is answered in pieces, never built into one string as large as itself.
JOURNAL_PAGE_BYTES = 1024 * 1024


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ControlApp:
    """The control API as a WSGI app whose Flask app is built on its first request (or :meth:`build`).

    ``mockfgt serve`` writes its manifest before it imports Flask: a cold start pays for the web
    framework once the devices are listening, not before (docs/performance.md).
    """

    def __init__(self, harness) -> None:
        self._harness = harness
        self._app: Flask | None = None
        self._lock = threading.Lock()

    def build(self) -> Flask:
        with self._lock:
            if self._app is None:
                self._app = _flask_app(self._harness)
            return self._app

    def __call__(self, environ, start_response):
        return (self._app or self.build())(environ, start_response)


def create_control_app(harness) -> ControlApp:
    """The control app of ``harness``: its ``control_token``, and its ``control_address`` once bound."""
    return ControlApp(harness)


def _flask_app(harness) -> Flask:
    from flask import Flask, Response, jsonify, request
    from werkzeug.exceptions import HTTPException

    app = Flask("mockfgt.control")
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTROL_BODY  # a second bound, should the WSGI server be another

    def allowed_hosts() -> set[str] | None:
        """Host header values naming this API; None when any is accepted (a remote control API)."""
        host, port = harness.control_address
        if not is_loopback(host):
            return None
        names = {"127.0.0.1", "[::1]", "localhost", url_host(host)}
        return {f"{name}:{port}".lower() for name in names}

    @app.before_request
    def guard():
        # Host first: a page that rebound its own name to 127.0.0.1 must learn nothing, not even 401.
        host = request.headers.get("Host", "").lower()
        allowed = allowed_hosts()
        if allowed is not None and host not in allowed:
            raise ControlError(f"Host {shown(host)!r} is not this control API (use {sorted(allowed)[0]})", 403)
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            raise ControlError("cross-origin requests are refused", 403)
        if not _token_matches(request.headers.get("Authorization", ""), harness.control_token):
            raise ControlError("this control API needs its token: Authorization: Bearer TOKEN, TOKEN being "
                               "the manifest's control_token (mockfgt ctl --manifest FILE reads it)", 401)
        # The listener has buffered the body (at most bodies.MAX_BODY) and set its length, chunked
        # or not; Werkzeug's content_length would be None for a chunked one.
        try:
            length = int(request.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = MAX_CONTROL_BODY + 1
        if length > MAX_CONTROL_BODY:
            raise ControlError(f"the body is {length} bytes; the control API takes at most {MAX_CONTROL_BODY}", 413)
        declared = request.headers.get("Content-Type")
        if (declared is not None or length) and request.mimetype != "application/json":
            raise ControlError("the body must be JSON, sent as Content-Type: application/json", 415)

    def device(name):
        try:
            return harness.device(name)
        except KeyError as exc:
            raise ControlError(exc.args[0], 404) from None

    def changed(dev):
        harness.write_manifest()
        return jsonify(harness.describe(dev))

    def body() -> dict:
        raw = request.get_data()
        if not raw:
            return {}
        try:
            data = bodies.loads(raw)  # 100k-deep JSON was a RecursionError, so a 500
        except bodies.BodyError as exc:
            raise ControlError(f"the body is {exc}") from None
        if not isinstance(data, dict):
            raise ControlError("the body must be a JSON object")
        _check_strings(data)
        return data

    @app.get("/")
    @app.get("/manifest")
    def manifest():
        return jsonify(harness.manifest())

    @app.get("/devices")
    def devices():
        return jsonify([harness.describe(d) for d in harness.devices.values()])

    @app.get("/devices/<name>")
    def show(name):
        return jsonify(harness.describe(device(name)))

    @app.post("/devices/<name>/scenario")
    def use(name):
        scenario = body().get("scenario")
        if not isinstance(scenario, str) or not scenario:
            raise ControlError('give the scenario to switch to: {"scenario": "expired-cert"}')
        dev = device(name)
        # By name only: a caller's '/etc/shadow' or 'x.toml' must never be opened as a file here.
        loaded = load(scenario, search=harness.scenario_dirs, names_only=True)
        try:
            dev.use(loaded)
        except OSError as exc:  # the port could not be listened on again; the device keeps refusing
            raise ControlError(f"{dev.name} switched to {loaded.name} but cannot listen on port {dev.port} "
                               f"again ({exc.strerror or exc}); it refuses connections", 409) from None
        return changed(dev)

    @app.post("/devices/<name>/regenerate-key")
    def regenerate_key(name):
        dev = device(name)
        dev.apply({"op": "regenerate-key", "user": body().get("user") or dev.client_user})
        return changed(dev)

    @app.post("/devices/<name>/trusthosts")
    def trusthosts(name):
        data, dev = body(), device(name)
        hosts = data.get("trusthosts")
        if not isinstance(hosts, list):
            raise ControlError('give the list of trusted hosts: {"trusthosts": ["10.0.0.0/8"]} ([] = any)')
        dev.apply({"op": "set-trusthosts", "user": data.get("user") or dev.client_user, "trusthosts": hosts})
        return changed(dev)

    @app.post("/devices/<name>/op")
    def operation(name):
        dev = device(name)
        dev.apply(body())
        return changed(dev)

    def acting(run):
        def view(name):
            dev = device(name)
            run(dev)
            return changed(dev)
        return view

    # The calls that take no arguments: each does one thing to the device and answers its entry.
    for action, run in (("remedy", lambda dev: dev.remedy()), ("reset", lambda dev: dev.reset()),
                        ("expire-sessions", lambda dev: dev.apply({"op": "expire-sessions"})),
                        ("advance", lambda dev: dev.advance())):
        app.add_url_rule(f"/devices/<name>/{action}", endpoint=action, view_func=acting(run), methods=["POST"])

    @app.post("/devices/<name>/clock")
    def clock(name):
        dev, step = device(name), body().get("advance")
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            raise ControlError('give the seconds to move the clock forward: {"advance": 7200}')
        dev.clock.advance(step)
        harness.write_manifest()
        return jsonify({**harness.describe(dev), "clock": {"offset": dev.clock.offset,
                                                           "now": dev.clock.now().isoformat()}})

    @app.get("/devices/<name>/journal")
    def journal(name):
        since = _number("since", 0, "a sequence number")
        limit = _number("limit", None, "a number of events, 1 or more")
        if limit is not None and limit < 1:
            raise ControlError("limit must be a number of events, 1 or more")
        journal = device(name).journal
        events, more = journal.page(since, limit=limit, max_bytes=JOURNAL_PAGE_BYTES)
        answer = Response("[" + ",".join(json.dumps(e, default=str, separators=(",", ":"), sort_keys=True)
                                        for e in events) + "]",
                          mimetype="application/json")
        answer.headers["X-Mockfgt-Journal-More"] = "true" if more else "false"
        answer.headers["X-Mockfgt-Journal-Next"] = str(events[-1]["seq"] if events else since)
        answer.headers["X-Mockfgt-Journal-Evicted"] = str(journal.evicted)
        return answer

    def _number(name, default, what):
        try:
            return int(request.args[name]) if name in request.args else default
        except ValueError:
            raise ControlError(f"{name} must be {what} (an integer)") from None

    @app.delete("/devices/<name>/journal")
    def clear_journal(name):
        device(name).journal.clear()
        return jsonify({"cleared": name})

    @app.errorhandler(ControlError)
    def control_error(exc):
        return jsonify({"error": str(exc)}), exc.status

    @app.errorhandler(ScenarioError)
    @app.errorhandler(ValueError)
    def bad_value(exc):
        return jsonify({"error": str(exc)}), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify({"error": f"{exc.name}: {request.method} {shown(request.path)}" if exc.code in (404, 405)
                        else exc.description}), exc.code

    @app.after_request
    def no_sniffing(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"  # answers carry keys and passwords
        return response

    return app


def _token_matches(header: str, token: str | None) -> bool:
    scheme, _, given = header.partition(" ")
    if token is None or scheme.lower() != "bearer":
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a header may carry any latin-1 character.
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())


def _check_strings(data) -> None:
    """Refuse over-long strings anywhere in a body without repeating them (bodies.loads bounds depth)."""
    stack = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise ControlError(f"{shown(where) or 'a value'}: a string of {len(value)} characters; "
                               f"the control API takes at most {MAX_STRING}")
        if isinstance(value, dict):
            for key, item in value.items():
                if len(key) > MAX_STRING:
                    raise ControlError(f"a key of {len(key)} characters; the control API takes at most {MAX_STRING}")
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
