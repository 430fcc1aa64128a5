"""The FortiOS REST API v2 on the wire: parse a request, call the state, answer the device's envelope.

Nothing here decides policy; :mod:`mockfgt.fortios.models` does. This module knows URLs, query
parameters, JSON envelopes and the Apache-style HTML pages that httpsd sends for refused credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qs, unquote

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .. import bodies
from ..http11 import ANSWER_AFTER
from ..httpsd import HTML_TYPE
from ..phases import notice
from . import WRITE_METHODS, logins, system
from .models import AuthFailure, FortiOSError, FortiOSState
from .tables import SUBTABLES, TABLES


def apache_page(status: str, title: str, message: str, *, recursive: bool = True) -> str:
    """An error page laid out as Apache writes it: a line break after each element (ref H.11).

    ``recursive``: the "Additionally, ... ErrorDocument" paragraph httpsd adds on 7.x (its own
    ErrorDocument fails too).
    """
    page = ('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>' + status
            + "</title>\n</head><body>\n<h1>" + title + "</h1>\n" + message)
    if recursive:
        page += ("<p>Additionally, a " + status
                 + "\nerror was encountered while trying to use an ErrorDocument to handle the request.</p>\n")
    return page + "</body></html>\n"


_UNAUTHORIZED_TEXT = (
    "<p>This server could not verify that you\nare authorized to access the document\nrequested.  Either you "
    "supplied the wrong\ncredentials (e.g., bad password), or your\nbrowser doesn't understand how to supply\n"
    "the credentials required.</p>\n"
)
# The 7.4.x page, byte for byte as captured (ref A.1.4, H.11: 503 bytes).
UNAUTHORIZED_HTML = apache_page("401 Unauthorized", "Unauthorized", _UNAUTHORIZED_TEXT)
# Builds before 7.x used Apache's older title and no ErrorDocument paragraph; rebuilt from the quoted text.
UNAUTHORIZED_HTML_6X = apache_page("401 Authorization Required", "Authorization Required", _UNAUTHORIZED_TEXT,
                                   recursive=False)
# Apache's stock 429 page (ref H.11: a browser render of the device's answer).
LOCKOUT_HTML = apache_page("429 Too Many Requests", "Too Many Requests",
                           "<p>The user has sent too many requests\nin a given amount of time.</p>\n")
NOT_FOUND_PAGE = apache_page("404 Not Found", "Not Found", "<p>The requested URL was not found on this server.</p>\n")
FORBIDDEN_PAGE = apache_page("403 Forbidden", "Forbidden", "<p>You don't have permission to access this resource.</p>\n")


def create_app(get_state: Callable[[], FortiOSState]) -> Flask:
    """A Flask app answering the FortiOS REST API from whatever state ``get_state()`` returns now.

    The state is looked up per request, so a device can swap scenarios without a new app.
    """
    app = Flask("mockfgt.fortios")
    app.config["MAX_CONTENT_LENGTH"] = bodies.MAX_BODY  # larger: 413, as the vendor table lists
    app.url_map.merge_slashes = False  # '//' is normalised by us, never redirected

    @app.route("/", defaults={"_path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    @app.route("/<path:_path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    def dispatch(_path):
        return handle(get_state(), request)

    @app.errorhandler(HTTPException)
    def refused_by_http_layer(exc):
        # 413 for an oversize body, 405 for a method no route knows (PROPFIND...): the device's envelope.
        return _bare_error(get_state(), exc.code or 400)

    @app.errorhandler(Exception)
    def unexpected(exc):
        # Never a traceback on the wire: the device's own internal-error envelope instead.
        app.logger.exception("unhandled error for %s %s", request.method, request.path)
        return _bare_error(get_state(), 500, error=-1)

    return app


# -- request parsing ----------------------------------------------------------------------------
def path_segments(environ) -> list[str]:
    """Split the raw URI so %2F inside a name stays inside it; '//' and a trailing '/' vanish."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    raw = raw.split("?", 1)[0]
    if "://" in raw:  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    return [unquote(s) for s in raw.split("/") if s]


def query_params(environ) -> dict[str, list[str]]:
    return parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)


def bearer_token(req, query: dict[str, list[str]], state: FortiOSState) -> str | None:
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if "access_token" in query and state.query_token_allowed():
        return query["access_token"][0]
    return None


def json_body(req) -> dict | list | None:
    """The JSON body whatever the Content-Type says (clients send none, 'json' or the real one)."""
    data = req.get_data(cache=True)
    if not data.strip():
        return None
    try:
        return bodies.loads(data)
    except bodies.BodyError:  # bad syntax, bad UTF-8 or nested too deeply: "cannot be processed"
        raise FortiOSError(400) from None


# -- responses --------------------------------------------------------------------------------
def _json(payload, status: int) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json")


def _html(body: str, status: int) -> Response:
    return Response(body, status=status, content_type=HTML_TYPE)


def _identity(state: FortiOSState) -> dict:
    return {"serial": state.serial, "version": state.version_string, "build": state.build}


def _bare_error(state: FortiOSState, status: int, error: int | None = None) -> Response:
    """An error raised before the request was parsed: still status, http_status and identity."""
    env = {"http_method": request.method, "status": "error", "http_status": status}
    if error is not None:
        env["error"] = error
    return _json({**env, **_identity(state)}, status)


class Call:
    """One parsed API call: what every envelope repeats about the request.

    ``child`` names a member sub-table call (``.../addrgrp/<mkey>/member[/<name>]``): (field, name or None).
    """

    def __init__(self, method: str, tree: str, path: str, name: str, mkey: str | None, action: str = "",
                 child: tuple[str, str | None] | None = None):
        self.method, self.tree, self.path, self.name, self.mkey, self.action = method, tree, path, name, mkey, action
        self.child = child

    def where(self, vdom: str) -> dict:
        return {"vdom": vdom, "path": self.path, "name": self.name}


def _tracks_revision_changes(state: FortiOSState) -> bool:
    """old_revision and revision_changed appear on CMDB writes from 6.2.3 (ref H.3; the 6.0.4 capture lacks them)."""
    return state.version >= (6, 2, 3)


def error_envelope(state: FortiOSState, call: Call, vdom: str, exc: FortiOSError) -> dict:
    env: dict = {"http_method": call.method}
    if call.tree == "cmdb":
        env["revision"] = state.revision
        if call.method in WRITE_METHODS and _tracks_revision_changes(state):
            env["revision_changed"] = False
    mkey = exc.mkey if exc.mkey is not None else call.mkey
    if mkey is not None and not (call.tree == "cmdb" and call.method == "POST"):  # none on CMDB POST errors (ref H.10)
        env["mkey"] = mkey
    env.update(status="error", http_status=exc.http_status)
    if exc.error is not None:
        env["error"] = exc.error
    if exc.cli_error:
        env["cli_error"] = exc.cli_error
    env.update(call.where(vdom))
    env.update(_identity(state))
    return env


class UnknownPath(FortiOSError):
    """A handler found the path is no endpoint of the device (a monitor action it does not have)."""

    def __init__(self) -> None:
        super().__init__(404)


def unknown_path(state: FortiOSState, call: Call) -> Response:
    """404 for an ``/api/v2`` path the device does not have: no vdom, no revision (ref H.9, a 7.4.4 capture)."""
    return _json({"http_method": call.method, "status": "error", "http_status": 404, "path": call.path,
                  "name": call.name, **_identity(state)}, 404)


def vdom_forbidden(call: Call, vdom: str) -> Response:
    # Captured shape (KB ta-p/344460): no identity fields on this one.
    return _json({"http_method": call.method, "status": "error", "http_status": 403, **call.where(vdom),
                  "action": call.action}, 403)


# -- dispatch ---------------------------------------------------------------------------------
def auth_refused(state: FortiOSState, exc: AuthFailure) -> Response:
    """httpsd's own pages: 429 for a locked-out source, the version's 401 page otherwise."""
    if exc.http_status == 429:
        return _html(LOCKOUT_HTML, 429)
    return _html(UNAUTHORIZED_HTML if state.version >= (7, 0, 0) else UNAUTHORIZED_HTML_6X, 401)


def handle(state: FortiOSState, req) -> Response:
    segments = path_segments(req.environ)
    try:
        login_answer = logins.answer(state, req, segments)  # /logincheck, /api/v2/authentication, ...
    except AuthFailure as exc:
        return auth_refused(state, exc)
    if login_answer is not None:
        return login_answer
    if segments[:2] != ["api", "v2"] or len(segments) < 3:
        # /error/403/ is where a bare GET /logincheck is sent from 7.2.4 (ref H.12).
        return _html(FORBIDDEN_PAGE, 403) if segments == ["error", "403"] else _html(NOT_FOUND_PAGE, 404)
    query = query_params(req.environ)
    try:
        user, session = logins.authenticate(state, req, bearer_token(req, query, state))
    except AuthFailure as exc:
        return auth_refused(state, exc)
    slow = state.slowness("/" + "/".join(segments))
    if slow:  # an authenticated call to a slow endpoint: answered, late (the connection layer holds it)
        req.environ[ANSWER_AFTER] = slow

    call, handler = route(req.method, segments[2], segments[3:])
    if handler is _cmdb_system and not system.CMDB[f"{call.path}/{call.name}"].exists(state):
        handler = None
    # An empty ?vdom= means the default VDOM, as if it were absent.
    requested = "*" if query.get("global", ["0"])[0] in ("1", "true") else (query.get("vdom", [""])[0] or None)
    scope = query.get("scope", [""])[0] or None
    try:
        vdoms = state.vdoms_for(user, requested, scope)
    except FortiOSError:
        # UNCONFIRMED for scope=global: the captured VDOM refusal's body (ref A.2, KB ta-p/344460),
        # naming the VDOM the call addressed (the user's own when it named none); see docs/fortios.md.
        return vdom_forbidden(call, requested or getattr(user, "vdoms", [""])[0])
    if logins.csrf_refused(session, req):  # httpsd: "no valid CSRF token found", API error 403
        return _json(error_envelope(state, call, vdoms[0], FortiOSError(403)), 403)
    if handler is None:
        return unknown_path(state, call)

    answers = []
    for vdom in vdoms:
        try:
            payload, status = handler(state, user, call, vdom, req, query)
        except UnknownPath:
            return unknown_path(state, call)
        except FortiOSError as exc:
            payload, status = error_envelope(state, call, vdom, exc), exc.http_status
        answers.append((payload, status))
    if req.method in WRITE_METHODS and all(status == 200 for _, status in answers):
        notice("write")  # a phase may wait for it (mockfgt.phases)
    if requested is not None and (requested == "*" or "," in requested):
        return _json([a[0] for a in answers], answers[0][1] if answers else 200)
    return _json(*answers[0])


def route(method: str, tree: str, rest: list[str]) -> tuple[Call, Callable | None]:
    """The parsed call and the handler that answers it (None: the device has no such endpoint)."""
    if tree == "cmdb" and len(rest) >= 2:
        table = f"{rest[0]}/{rest[1]}"
        if len(rest) >= 4 and rest[3] in SUBTABLES.get(table, ()):  # .../addrgrp/<grp>/member[/<name>] (ref H.15)
            return Call(method, "cmdb", rest[0], rest[1], rest[2], child=(rest[3], "/".join(rest[4:]) or None)), _member
        # A client that does not encode '/' in a name ('10.0.0.0/8') sends it as extra segments.
        call = Call(method, "cmdb", rest[0], rest[1], "/".join(rest[2:]) or None)
        return call, _cmdb if table in TABLES else _cmdb_system if table in system.CMDB else None
    if tree == "monitor" and len(rest) >= 2:
        return Call(method, "monitor", rest[0], rest[1], None, "/".join(rest[2:])), _monitor
    return Call(method, tree, "/".join(rest[:-1]), rest[-1] if rest else "", None), None


def _require(state: FortiOSState, user, group: str, method: str) -> None:
    level = state.access(user, group)
    if level == "none" or (method in WRITE_METHODS and level != "read-write"):
        raise FortiOSError(403)


def _cmdb(state: FortiOSState, user, call: Call, vdom: str, req, query) -> tuple[dict, int]:
    table = f"{call.path}/{call.name}"
    spec = TABLES[table]
    _require(state, user, spec.group, call.method)
    action = query.get("action", [""])[0]
    if call.method == "GET" and action in ("schema", "default"):
        results = spec.schema() if action == "schema" else spec.default_row()
        return _success(state, call, vdom, results, revision=True), 200
    if action:  # clone, move, ...: not emulated; FortiOS answers an unsupported action as an invalid request
        raise FortiOSError(400)
    if call.method == "GET":
        return _cmdb_get(state, call, vdom, table, query)
    if call.method not in WRITE_METHODS:
        raise FortiOSError(405)
    body: dict = {}  # what POST and PUT write; DELETE reads no body
    if call.method != "DELETE":
        parsed = json_body(req)
        if not isinstance(parsed, dict):
            raise FortiOSError(400 if parsed is not None else 500, None if parsed is not None else -651)
        body = parsed
    with state.lock:
        changed = True
        if call.method == "POST":
            if call.mkey is not None:
                raise FortiOSError(405)
            mkey = state.create(vdom, table, body)
        elif call.mkey is None and call.method == "DELETE":
            state.purge(vdom, table)
            mkey = None
        elif call.mkey is None:
            raise FortiOSError(405)
        elif call.method == "PUT":
            mkey, changed = state.update(vdom, table, call.mkey, body)
        else:
            state.delete(vdom, table, call.mkey)
            mkey = call.mkey
        return _written(state, call, vdom, mkey, changed), 200


def _written(state: FortiOSState, call: Call, vdom: str, mkey: str | None, changed: bool) -> dict:
    """The success envelope of a CMDB write; one that changed nothing keeps the revision (ref H.3)."""
    with state.lock:
        old, new = state.bump_revision() if changed else (state.revision, state.revision)
    env: dict[str, object] = {"http_method": call.method, "revision": new}
    if _tracks_revision_changes(state):
        env.update(old_revision=old, revision_changed=changed)
    if mkey is not None:
        env["mkey"] = mkey
    env.update(status="success", http_status=200, **call.where(vdom), **_identity(state))
    return env


def _member(state: FortiOSState, user, call: Call, vdom: str, req, query) -> tuple[dict, int]:
    """A group's member sub-table (ref H.15): GET lists or reads one, POST appends, DELETE removes one.

    Writes go through the same checks as a whole-group PUT: the member must exist (-3), and before
    7.2 a group may not lose its last member (-56).
    """
    table = f"{call.path}/{call.name}"
    _require(state, user, TABLES[table].group, call.method)
    assert call.child is not None and call.mkey is not None, "route() gives a member call its group and field"
    field, member = call.child
    if query.get("action", [""])[0]:
        raise FortiOSError(400)
    if call.method == "GET":
        rows = state.members(vdom, table, call.mkey, field)
        if member is None:
            return _cmdb_results(state, call, vdom, rows, query), 200
        rows = [row for row in rows if row["name"] == member]
        if not rows:
            raise FortiOSError(404, mkey=member)
        return _cmdb_results(state, call, vdom, rows, query, mkey=member), 200
    if call.method == "POST" and member is None:
        body = json_body(req)
        if not isinstance(body, dict):
            raise FortiOSError(400 if body is not None else 500, None if body is not None else -651)
        with state.lock:  # the write and its revision as one step, as for whole-table writes
            name, changed = state.add_member(vdom, table, call.mkey, field, body.get("name"))
            return _written(state, call, vdom, name, changed), 200
    if call.method == "DELETE" and member is not None:
        with state.lock:
            changed = state.remove_member(vdom, table, call.mkey, field, member)
            return _written(state, call, vdom, member, changed), 200
    raise FortiOSError(405)


def _cmdb_get(state: FortiOSState, call: Call, vdom: str, table: str, query) -> tuple[dict, int]:
    if call.mkey is not None:
        return _cmdb_results(state, call, vdom, [state.get_row(vdom, table, call.mkey)], query, mkey=call.mkey), 200
    rows = [r for r in state.list_rows(vdom, table) if _matches(r, query.get("filter", []))]
    return _cmdb_results(state, call, vdom, rows, query), 200


def _cmdb_results(state: FortiOSState, call: Call, vdom: str, rows: list[dict], query, mkey: str | None = None) -> dict:
    """A CMDB read: a list carries size, matched_count and next_idx; a GET by name carries mkey instead (ref H.8)."""
    start = _int(query, "start", 0)
    count = _int(query, "count", len(rows))
    page = rows[start:start + count]
    fields = [f for f in query.get("format", [""])[0].split("|") if f]
    if fields:
        page = [{k: r[k] for k in ["q_origin_key", *fields] if k in r} for r in page]
    env: dict[str, object] = {"http_method": "GET"}
    if mkey is None:
        env.update(size=len(page), matched_count=len(rows), next_idx=start + len(page) - 1)
    env.update(revision=state.revision, results=page)
    if mkey is not None:
        env["mkey"] = mkey
    env.update(**call.where(vdom), status="success", http_status=200, **_identity(state))
    return env


def _int(query, name: str, default: int) -> int:
    try:
        return max(0, int(query[name][0]))
    except (KeyError, ValueError):
        return default


FILTER_OPERATORS = ("==", "!=", "=@", "!@", "<=", ">=", "<", ">")


def _matches(row: dict, filters: list[str]) -> bool:
    """FortiOS filters: repeated ``filter`` params are ANDed, comma-separated terms inside one are ORed."""
    return all(any(_term(row, term) for term in f.split(",")) for f in filters if f)


def _term(row: dict, term: str) -> bool:
    for op in FILTER_OPERATORS:
        field, found, wanted = term.partition(op)
        if found:
            break
    else:
        return False
    value = row.get(field)
    if isinstance(value, list):
        value = " ".join(v.get("name", "") if isinstance(v, dict) else str(v) for v in value)
    text = "" if value is None else str(value)
    if op == "==":
        return text == wanted
    if op == "!=":
        return text != wanted
    if op == "=@":
        return wanted in text
    if op == "!@":
        return wanted not in text
    try:
        numbers = float(text), float(wanted)
    except ValueError:
        return _ordered(op, text, wanted)
    return _ordered(op, *numbers)


_Comparable = TypeVar("_Comparable", str, float)


def _ordered(op: str, left: _Comparable, right: _Comparable) -> bool:
    """``<=``, ``>=``, ``<``, ``>``: numbers as numbers when both sides are, else as text."""
    return {"<=": left <= right, ">=": left >= right, "<": left < right, ">": left > right}[op]


def _success(state: FortiOSState, call: Call, vdom: str, results, *, revision: bool = False) -> dict:
    """A success envelope for a GET: CMDB answers carry revision and http_status, monitor answers do not."""
    env: dict = {"http_method": call.method}
    if revision:
        env["revision"] = state.revision
    env["results"] = results
    env.update(call.where(vdom))
    if call.tree == "monitor" and (call.action or state.version >= (7, 0, 0)):
        env["action"] = call.action  # 7.x monitor answers always name it ("" for a plain GET)
    env["status"] = "success"
    if call.tree == "cmdb":
        env["http_status"] = 200
    env.update(_identity(state))
    return env


def _cmdb_system(state: FortiOSState, user, call: Call, vdom: str, req, query) -> tuple[dict, int]:
    """The read-only device-wide CMDB endpoints of :mod:`mockfgt.fortios.system`."""
    path = f"{call.path}/{call.name}"
    view = system.CMDB[path]
    if view.group != "any":
        _require(state, user, view.group, call.method)
    if call.method != "GET":
        raise FortiOSError(405)
    action = query.get("action", [""])[0]
    if action == "schema":
        return _success(state, call, vdom, system.schema(path, state), revision=True), 200
    if action:
        raise FortiOSError(400)
    results = view.read(state)
    if call.mkey is not None:
        if view.singleton:
            raise FortiOSError(404)
        results = [row for row in results if row["name"] == call.mkey]
        if not results:
            raise FortiOSError(404, mkey=call.mkey)
        env = _success(state, call, vdom, results, revision=True)
        return {**env, "mkey": call.mkey}, 200  # mkey on a GET by name, system/vdom/<name> too (ref H.8)
    return _success(state, call, vdom, results, revision=True), 200


def _monitor(state: FortiOSState, user, call: Call, vdom: str, req, query) -> tuple[dict, int]:
    view = system.MONITOR.get((call.path, call.name))
    if view is not None and call.action in ("", "select"):
        if call.method != "GET":
            raise FortiOSError(405)
        if view.group != "any":
            _require(state, user, view.group, "GET")
        return _success(state, call, vdom, view.read(state)), 200
    endpoint = (call.path, call.name, call.action)
    if endpoint == ("system", "api-user", "generate-key"):
        if call.method != "POST":
            raise FortiOSError(405)
        _require(state, user, "sysgrp", "POST")
        body = json_body(req)
        name = body.get("api-user") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise FortiOSError(500, -651, "api-user: Input value is invalid")
        key = state.regenerate_key(name)
        # Field name unconfirmed (reference A.1.1): both spellings carry the one-time key.
        results: dict | list = {"access_token": key, "api_key": key}
    elif endpoint == ("system", "external-resource", "dynamic"):
        if call.method != "POST":
            raise FortiOSError(405)
        _require(state, user, "sysgrp", "POST")
        body = json_body(req)
        results = state.push_external_resource(body.get("commands") if isinstance(body, dict) else None)
    else:
        raise UnknownPath()
    return _success(state, call, vdom, results), 200
