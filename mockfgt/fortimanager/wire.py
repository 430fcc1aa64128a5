"""FortiManager JSON-RPC on the wire: ``POST /jsonrpc``, one envelope in, one envelope out, HTTP 200.

A request is ``{"id", "method", "params": [{"url", "data", ...}, ...], "session", "verbose"}``; the
answer is ``{"id", "result": [{"data", "status": {"code", "message"}, "url"}, ...]}`` with one entry
per ``params`` item, errors included, and a top-level ``session``: the new session's id after a
successful login, the session's number in every answer to a request made with a live session.
This module parses, finds the handler for each URL and calls the state; it decides nothing itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .. import bodies
from ..httpsd import HTML_TYPE, NOT_FOUND_HTML
from ..phases import notice
from .access import Principal
from .enums import render
from .errors import INTERNAL_ERROR, INVALID_DATA, INVALID_URL, MESSAGES, NO_PERMISSION, OK, FMGError
from .models import FortiManagerState
from .objects import ADDRGRP, OBJECT_TABLES
from .workspace import GLOBAL

METHOD_NOT_ALLOWED_HTML = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>405 Method Not Allowed</title></head>'
    "<body><h1>Method Not Allowed</h1><p>The requested method is not allowed for this URL.</p></body></html>"
)
TOO_LARGE_HTML = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>413 Request Entity Too Large</title>'
    "</head><body><h1>Request Entity Too Large</h1><p>The requested resource does not allow request data "
    "with POST requests, or the amount of data provided in the request exceeds the capacity limit.</p></body></html>"
)
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
#: JSON-RPC methods FortiManager knows; anything else is refused per params item.
METHODS = ("get", "set", "add", "update", "delete", "exec", "clone", "move", "replace", "unset")
WRITES = ("set", "add", "update", "delete", "clone", "move", "replace", "unset")  # a phase's on = "write"


def create_app(get_state: Callable[[], FortiManagerState]) -> Flask:
    """A Flask app answering FortiManager's JSON-RPC from whatever state ``get_state()`` returns now."""
    app = Flask("mockfgt.fortimanager")
    app.config["MAX_CONTENT_LENGTH"] = bodies.MAX_BODY  # larger: 413, as the vendor table lists

    @app.route("/", defaults={"_path": ""}, methods=ALL_METHODS)
    @app.route("/<path:_path>", methods=ALL_METHODS)
    def dispatch(_path):
        return handle(get_state(), request)

    @app.errorhandler(HTTPException)
    def refused_by_http_layer(exc):
        # 413 for an oversize body, 405 for a method no route knows (PROPFIND...): httpsd's own pages.
        return http_error(exc.code or 400)

    @app.errorhandler(Exception)
    def unexpected(exc):
        # Never a traceback on the wire: a JSON-RPC failure the client can read.
        app.logger.exception("unhandled error for %s %s", request.method, request.path)
        return _json(envelope_error(None, INTERNAL_ERROR))

    return app


def http_error(code: int) -> Response:
    """An Apache-style page for a request refused before JSON-RPC (wrong URL, method or size)."""
    if code == 405:
        return Response(METHOD_NOT_ALLOWED_HTML, status=405, content_type=HTML_TYPE, headers={"Allow": "POST"})
    page = {404: NOT_FOUND_HTML, 413: TOO_LARGE_HTML}.get(code)
    if page is None:
        title = f"{code} {HTTP_STATUS_CODES.get(code, 'Error')}"
        page = (f'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>{title}</title></head>'
                f"<body><h1>{HTTP_STATUS_CODES.get(code, 'Error')}</h1></body></html>")
    return Response(page, status=code, content_type=HTML_TYPE)


# -- envelopes ------------------------------------------------------------------------------------
def _json(payload: dict) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status=200, mimetype="application/json")


def status(code: int, message: str | None = None) -> dict:
    return {"code": code, "message": message or MESSAGES.get(code, "Error")}


def envelope_error(request_id, code: int) -> dict:
    """An envelope that could not be read as a request at all: one result, no url to echo."""
    return {"id": request_id, "result": [{"status": status(code), "url": ""}]}


# -- URLs -----------------------------------------------------------------------------------------
_UNESCAPED_SLASH = re.compile(r"(?<!\\)/")


def url_segments(url: str) -> list[str]:
    """'sys/login/user', '/sys/login/user/' and '/a//b' alike; a name may hold '\\/' for a slash."""
    return [s.replace("\\/", "/") for s in _UNESCAPED_SLASH.split(url) if s]


@dataclass
class Call:
    """One ``params`` item being answered, with what every handler needs."""

    state: FortiManagerState
    method: str
    url: str
    item: dict
    verbose: bool
    peer: str
    authenticate: Callable[[], Principal]
    captures: list[str] = field(default_factory=list)

    @property
    def data(self):
        return self.item.get("data")

    @property
    def principal(self) -> Principal:
        return self.authenticate()


@dataclass
class Answer:
    data: object = None
    session: str | None = None


Handler = Callable[[Call], object]


# -- dispatch -----------------------------------------------------------------------------------
def handle(state: FortiManagerState, req) -> Response:
    if req.path.rstrip("/") != "/jsonrpc":
        return Response(NOT_FOUND_HTML, status=404, content_type=HTML_TYPE)
    if req.method != "POST":
        return http_error(405)
    try:
        body = bodies.loads(req.get_data(cache=True) or b"null")
    except bodies.BodyError:  # bad syntax, bad UTF-8 or nested too deeply
        return _json(envelope_error(None, INVALID_DATA))
    params = body.get("params") if isinstance(body, dict) else None
    if isinstance(params, dict):
        params = [params]
    if not isinstance(params, list) or not params or body.get("method") not in METHODS:
        return _json(envelope_error(body.get("id") if isinstance(body, dict) else None, INVALID_DATA))

    key = key_of(state, req)
    if key is None:
        return _json(answer_all(state, req, body, params, _authenticator(state, req, body)))
    with state.keyed_call(key) as refused:  # FortiManager 7.4.x: -11 for a key already in flight
        authenticate = _refused if refused else _authenticator(state, req, body)
        return _json(answer_all(state, req, body, params, authenticate))


def _refused() -> Principal:
    raise FMGError(NO_PERMISSION)


def answer_all(state: FortiManagerState, req, body: dict, params: list, authenticate) -> dict:
    """The envelope answering a parsed request, one ``result`` entry per ``params`` item."""
    results, new_session = [], None
    for item in params:
        entry, session = answer_item(state, req, body, item, authenticate)
        results.append(entry)
        new_session = session or new_session
    payload: dict = {"id": body.get("id"), "result": results}
    number = None if new_session else session_number(authenticate)
    if new_session or number is not None:
        payload["session"] = new_session or number
    return payload


def session_number(authenticate: Callable[[], Principal]) -> int | None:
    """The internal number of the session the request was made with (reference H.2), error answers
    included: what ``workspace/lockinfo`` reports as ``lock_sid``. None for an API key (a guess) and
    for a session the device does not know (there is no number to tell)."""
    try:
        principal = authenticate()
    except FMGError:
        return None
    return principal.owner if principal.session is not None else None


def _authenticator(state: FortiManagerState, req, body: dict) -> Callable[[], Principal]:
    """Who is asking, worked out at most once per HTTP request, when a handler or the answer needs it."""
    cache: dict = {}

    def authenticate() -> Principal:
        if "principal" not in cache:
            try:
                cache["principal"] = principal_for(state, req, body)
            except FMGError as exc:
                cache["principal"] = exc
        if isinstance(cache["principal"], FMGError):
            raise cache["principal"]
        return cache["principal"]

    return authenticate


def key_of(state: FortiManagerState, req) -> str | None:
    """The API key a request authenticates with: Bearer (7.2.2+), then ``?access_token=`` where the
    version still takes it; None for a session request."""
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip() and state.api_keys_supported():
        return value.strip()
    query = parse_qs(req.environ.get("QUERY_STRING", ""))
    if query.get("access_token") and state.query_token_allowed():
        return query["access_token"][0]
    return None


def principal_for(state: FortiManagerState, req, body: dict) -> Principal:
    """The request's API key (:func:`key_of`), else the session in the body."""
    peer = req.remote_addr or ""
    key = key_of(state, req)
    if key is not None:
        return state.authenticate_key(key, peer)
    return state.authenticate_session(body.get("session"), peer)


def answer_item(state, req, body, item, authenticate) -> tuple[dict, str | None]:
    url = item.get("url") if isinstance(item, dict) else None
    if not isinstance(url, str):
        return {"status": status(INVALID_URL), "url": url if isinstance(url, (str, type(None))) else ""}, None
    call = Call(state, body["method"], url, item, bool(body.get("verbose")), req.remote_addr or "", authenticate)
    try:
        handler, table, call.captures = route(url_segments(url), call.method)
        if handler is not _login:
            call.principal  # noqa: B018 - every URL but the login needs a credential, even unknown ones
        if handler is None:
            raise FMGError(INVALID_URL)
        result = handler(call)
    except FMGError as exc:
        return {"status": status(exc.code, exc.message), "url": url}, None
    if call.method in WRITES:
        notice("write")
    answer = result if isinstance(result, Answer) else Answer(result)
    entry = {} if answer.data is None else {"data": render(answer.data, table, call.verbose)}
    entry.update(status=status(OK), url=url)
    return entry, answer.session


# -- handlers -------------------------------------------------------------------------------------
def _login(call: Call) -> Answer:
    data = call.data[0] if isinstance(call.data, list) and call.data else call.data
    data = data if isinstance(data, dict) else {}
    session = call.state.login(data.get("user"), data.get("passwd"), call.peer)
    notice("login")  # a phase may wait for it (mockfgt.phases)
    return Answer(None, session)


def _logout(call: Call) -> None:
    call.state.logout(call.principal)
    notice("logout")


def _status(call: Call) -> dict:
    call.state.require_api_access(call.principal)
    return shape_one(call.state.status(), call.item)


def _cli_status(call: Call) -> dict:
    return shape_one(call.state.cli_status(call.principal), call.item)


def _global_get(call: Call) -> dict:
    return shape_one(call.state.global_settings(call.principal), call.item)


def _global_set(call: Call) -> None:
    call.state.update_global(call.principal, call.data)


def _admin_users(call: Call) -> list:
    return shape_list(call.state.admin_user_rows(call.principal), call.item, key="userid")


def _admin_user(call: Call) -> dict:
    return shape_one(call.state.admin_user_row(call.principal, call.captures[0]), call.item, key="userid")


def _admin_update(call: Call) -> dict:
    return {"userid": call.state.update_admin_user(call.principal, call.captures[0], call.data)}


def _adoms(call: Call) -> list:
    return shape_list(call.state.adom_rows(call.principal), call.item)


def _adom(call: Call) -> dict:
    return shape_one(call.state.adom_row(call.principal, call.captures[0]), call.item)


def _devices(call: Call) -> list:
    adom = call.captures[0] if call.captures else None
    return shape_list(call.state.device_rows(call.principal, adom), call.item)


def _device(call: Call) -> dict:
    *adom, name = call.captures
    return shape_one(call.state.device_row(call.principal, name, adom[0] if adom else None), call.item)


def _workspace(action: str) -> Handler:
    def run(call: Call):
        principal, adom = call.principal, call.captures[0]
        state = call.state
        done = {"lock": state.lock_adom, "unlock": state.unlock_adom, "commit": state.commit_adom,
                "lockinfo": state.lock_info, "dirty": state.dirty}[action](principal, adom)
        if action == "lock":
            notice("lock")
        return done

    return run


def _object_table(call: Call) -> str:
    path = f"firewall/{call.captures[1]}"
    if path not in OBJECT_TABLES:
        raise FMGError(INVALID_URL)
    return path


def _objects(call: Call):
    """The table URL: ``get`` lists; ``add`` / ``set`` / ``update`` take one object or a list."""
    adom, path, state = call.captures[0], _object_table(call), call.state
    if call.method == "get":
        return shape_list(state.objects(call.principal, adom, path), call.item)
    write = {"add": state.add_object, "set": state.set_object, "replace": state.set_object,
             "update": state.update_object}.get(call.method)
    if write is None:
        raise FMGError(INVALID_URL)
    items = call.data if isinstance(call.data, list) else [call.data]
    names = [write(call.principal, adom, path, data) for data in items]
    return {"name": names[0]} if not isinstance(call.data, list) else [{"name": n} for n in names]


def _object(call: Call):
    adom, path, name, state = call.captures[0], _object_table(call), call.captures[2], call.state
    principal = call.principal
    if call.method == "get":
        return shape_one(state.object(principal, adom, path, name), call.item)
    if call.method in ("set", "replace"):
        return {"name": state.set_object(principal, adom, path, call.data, name)}
    if call.method == "update":
        return {"name": state.update_object(principal, adom, path, call.data, name)}
    if call.method == "delete":
        return state.delete_object(principal, adom, path, name)
    if call.method == "clone":
        return {"name": state.clone_object(principal, adom, path, name, call.data)}
    raise FMGError(INVALID_URL)


def _members(call: Call):
    adom, name, state = call.captures[0], call.captures[1], call.state
    if call.method == "get":
        return state.object(call.principal, adom, ADDRGRP, name)["member"]
    if call.method not in ("add", "delete", "set", "unset", "update"):
        raise FMGError(INVALID_URL)
    how = "add" if call.method == "update" else call.method
    state.change_members(call.principal, adom, name, how, call.data)
    return None


def _packages(call: Call) -> list:
    return shape_list(call.state.packages(call.principal, call.captures[0]), call.item)


def _install(what: str) -> Handler:
    def run(call: Call) -> dict:
        return {"task": call.state.install(call.principal, what, call.data)}

    return run


def _task_id(call: Call) -> int:
    try:
        return int(call.captures[0])
    except ValueError:
        raise FMGError(INVALID_URL) from None


def _tasks(call: Call) -> list:
    return shape_list(call.state.task_rows(call.principal), call.item, key="id")


def _task(call: Call):
    if call.method == "delete":
        return call.state.delete_task(call.principal, _task_id(call))
    return shape_one(call.state.task(call.principal, _task_id(call)), call.item, key="id")


def _proxy(call: Call) -> list:
    return call.state.proxy(call.principal, call.data)


def _global(handlers: dict[str, Handler]) -> dict[str, Handler]:
    """The handlers of an ADOM's URL for the global ADOM's, which name no ADOM: ``global`` is the first capture."""

    def bind(handler: Handler) -> Handler:
        def run(call: Call):
            call.captures = [GLOBAL, *call.captures]
            return handler(call)

        return run

    return {method: bind(handler) for method, handler in handlers.items()}


OBJECTS: dict[str, Handler] = {m: _objects for m in METHODS}
OBJECT: dict[str, Handler] = {m: _object for m in METHODS}
MEMBERS: dict[str, Handler] = {m: _members for m in METHODS}

# Patterns: literal segments, '*' one segment (captured), '**' any remainder (ignored).
ROUTES: list[tuple[tuple[str, ...], dict[str, Handler], str | None]] = [
    (("sys", "login", "user"), {"exec": _login}, None),
    (("sys", "logout"), {"exec": _logout}, None),
    (("sys", "status"), {"get": _status}, None),
    (("cli", "global", "system", "status"), {"get": _cli_status}, None),
    (("cli", "global", "system", "global"),
     {"get": _global_get, "set": _global_set, "update": _global_set}, "global"),
    (("cli", "global", "system", "admin", "user"), {"get": _admin_users}, "admin"),
    (("cli", "global", "system", "admin", "user", "*"),
     {"get": _admin_user, "set": _admin_update, "update": _admin_update}, "admin"),
    (("dvmdb", "adom"), {"get": _adoms}, "adom"),
    (("dvmdb", "adom", "*"), {"get": _adom}, "adom"),
    (("dvmdb", "adom", "*", "workspace", "lock", "**"), {"exec": _workspace("lock")}, None),
    (("dvmdb", "adom", "*", "workspace", "unlock", "**"), {"exec": _workspace("unlock")}, None),
    (("dvmdb", "adom", "*", "workspace", "commit", "**"), {"exec": _workspace("commit")}, None),
    (("pm", "config", "adom", "*", "workspace", "commit"), {"exec": _workspace("commit")}, None),
    (("dvmdb", "adom", "*", "workspace", "lockinfo"), {"get": _workspace("lockinfo")}, None),
    (("dvmdb", "adom", "*", "workspace", "dirty"), {"get": _workspace("dirty")}, None),
    (("dvmdb", "global"), _global({"get": _adom}), "adom"),  # the global ADOM (reference H.16)
    (("dvmdb", "global", "workspace", "lock", "**"), _global({"exec": _workspace("lock")}), None),
    (("dvmdb", "global", "workspace", "unlock", "**"), _global({"exec": _workspace("unlock")}), None),
    (("dvmdb", "global", "workspace", "commit", "**"), _global({"exec": _workspace("commit")}), None),
    (("pm", "config", "global", "workspace", "commit"), _global({"exec": _workspace("commit")}), None),
    (("dvmdb", "global", "workspace", "lockinfo"), _global({"get": _workspace("lockinfo")}), None),
    (("dvmdb", "global", "workspace", "dirty"), _global({"get": _workspace("dirty")}), None),
    (("dvmdb", "device"), {"get": _devices}, "device"),
    (("dvmdb", "device", "*"), {"get": _device}, "device"),
    (("dvmdb", "adom", "*", "device"), {"get": _devices}, "device"),
    (("dvmdb", "adom", "*", "device", "*"), {"get": _device}, "device"),
    (("pm", "config", "adom", "*", "obj", "firewall", "*"), OBJECTS, "address"),
    (("pm", "config", "adom", "*", "obj", "firewall", "*", "*"), OBJECT, "address"),
    (("pm", "config", "adom", "*", "obj", "firewall", "addrgrp", "*", "member"), MEMBERS, None),
    (("pm", "config", "global", "obj", "firewall", "*"), _global(OBJECTS), "address"),
    (("pm", "config", "global", "obj", "firewall", "*", "*"), _global(OBJECT), "address"),
    (("pm", "config", "global", "obj", "firewall", "addrgrp", "*", "member"), _global(MEMBERS), None),
    (("pm", "pkg", "adom", "*"), {"get": _packages}, None),
    (("securityconsole", "install", "package"), {"exec": _install("package")}, None),
    (("securityconsole", "install", "device"), {"exec": _install("device")}, None),
    (("task", "task"), {"get": _tasks}, "task"),
    (("task", "task", "*"), {"get": _task, "delete": _task}, "task"),
    (("sys", "proxy", "json"), {"exec": _proxy}, None),
]


def route(segments: list[str], method: str) -> tuple[Handler | None, str | None, list[str]]:
    """The handler for a URL and method, the enum table its data uses, and the captured segments.

    A URL no route knows, or a method its route does not take, gets no handler (-6 "Invalid url").
    """
    for pattern, handlers, table in ROUTES:
        captures = _match(pattern, segments)
        if captures is not None:
            return handlers.get(method), table, captures
    return None, None, []


def _match(pattern: tuple[str, ...], segments: list[str]) -> list[str] | None:
    if pattern and pattern[-1] == "**":
        pattern, segments = pattern[:-1], segments[:len(pattern) - 1]
    if len(pattern) != len(segments):
        return None
    captures = []
    for want, got in zip(pattern, segments):
        if want == "*":
            captures.append(got)
        elif want != got:
            return None
    return captures


# -- get options: filter, fields, range -------------------------------------------------------------
def shape_list(rows: list[dict], item: dict, key: str = "name") -> list[dict]:
    rows = [r for r in rows if matches(r, item.get("filter"))]
    window = item.get("range")
    if isinstance(window, list) and len(window) == 2 and all(isinstance(v, int) for v in window):
        rows = rows[window[0]:window[0] + window[1]]
    return [shape_one(r, item, key) for r in rows]


def shape_one(row: dict, item: dict, key: str = "name") -> dict:
    fields = item.get("fields")
    if not isinstance(fields, list) or not fields:
        return row
    keep = [key, "oid", *(f for f in fields if isinstance(f, str))]
    return {k: v for k, v in row.items() if k in keep}


def matches(row: dict, expr) -> bool:
    """FortiManager filters: ``["name", "==", "x"]``, ``[[...], "&&", [...]]``, ops ==, !=, like, in, contain."""
    if not expr:
        return True
    if not isinstance(expr, list):
        raise FMGError(INVALID_DATA)
    if isinstance(expr[0], list):
        result = matches(row, expr[0])
        for joiner, other in zip(expr[1::2], expr[2::2]):
            result = (result and matches(row, other)) if joiner == "&&" else (result or matches(row, other))
        return result
    if len(expr) < 3 or not isinstance(expr[0], str):
        raise FMGError(INVALID_DATA)
    return _compare(row.get(expr[0]), expr[1], expr[2:])


def _compare(value, op: str, wanted: list) -> bool:
    text = " ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    first = wanted[0]
    if op == "==":
        return value == first or text == str(first)
    if op == "!=":
        return not (value == first or text == str(first))
    if op == "like":
        pattern = "^" + re.escape(str(first)).replace("%", ".*").replace("_", ".") + "$"
        return re.match(pattern, text) is not None
    if op == "in":
        return value in wanted or text in map(str, wanted)
    if op == "contain":
        return str(first) in (value if isinstance(value, list) else text)
    raise FMGError(INVALID_DATA)
