"""Password logins on the wire: ``/logincheck``, ``/logout``, ``/logindisclaimer`` and ``/api/v2/authentication``.

The session state lives in :mod:`mockfgt.fortios.sessions`; this module knows the URLs, the form and
JSON bodies, the cookie names of each FortiOS version and the answers clients test for:

- ``/logincheck`` answers 200 with a body starting ``1`` (success, ending in a newline) or ``0``
  (failure). Up to 7.6.2 it sets a session cookie and a CSRF cookie ``"<token>"`` named by version
  (see :func:`cookie_suffix`: ``APSCOOKIE_<n>`` / ``ccsrftoken`` before 7.0, ``..._443`` from 7.0,
  ``..._443_<hash>`` from 7.2.4); a failure sets them to ``"0%260"``. From 7.6.3 it sets no cookie at
  all, so nothing that follows is authenticated. A bare GET answers ``0``; from 7.2.4 a 302 to
  ``/error/403/``.
- ``POST /api/v2/authentication`` (from 6.4.2) answers ``{"status": 5, "status_message":
  "LOGIN_SUCCESS"}`` (6 on 7.6) with a ``session_key`` when ``request_key`` is true, cookies
  otherwise (``session_key_<port>_<n>`` / ``ccsrf_token_<port>_<n>`` from 7.6.3). ``PUT`` renews,
  ``DELETE`` logs out. Before 6.4.2 the path is an ordinary unknown API path: 401 without a
  credential, which is what makes clients fall back to ``/logincheck``.

Refusals that end in the device's HTML pages (401, 429) are raised as
:class:`~mockfgt.fortios.models.AuthFailure` for :mod:`mockfgt.fortios.wire` to render.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

from flask import Response

from .. import bodies
from ..phases import notice
from . import WRITE_METHODS
from .models import AuthFailure, FortiOSState
from .sessions import AdminSessions, LoginRefused, PasswordExpired, Session

AUTHENTICATION_SINCE = (6, 4, 2)  # POST /api/v2/authentication exists
PORT_COOKIES_SINCE = (7, 0, 0)  # cookie names carry the HTTPS port (ref H.1)
PORT_HASH_COOKIES_SINCE = (7, 2, 4)  # ... and a short hash after it (ref H.1)
BARE_GET_REDIRECTS_SINCE = (7, 2, 4)  # a bare GET /logincheck: 302 to /error/403/ (ref H.12)
NEW_COOKIES_SINCE = (7, 6, 3)  # /logincheck issues no session; cookies renamed session_key_* / ccsrf_token_*
STATUS_6_SINCE = (7, 6, 0)  # LOGIN_SUCCESS carries status 6 instead of 5

FAILED_COOKIE = "0%260"  # what clients recognise as "username or password not valid"
LOGIN_OK_BODY = '1document.location="/ng/";\n'  # ends with a newline (ref H.12)
LOGIN_FAILED_BODY = "0"
# Status 4, "password change required" (ref A.5: 6.2/6.4 add it for a first login). That an expired
# password answers it too, and the JSON login's "LOGIN_PASSWORD_CHANGE_REQUIRED" status 4, are
# UNCONFIRMED: the GUI asks for a new password at that point, and the digit is the one that means so.
PASSWORD_CHANGE_BODY = "4"
LOGOUT_HTML = '<html><body><script>top.location="/login";</script></body></html>'
HTML_TYPE = "text/html; charset=utf-8"


# -- entry points used by wire.py -------------------------------------------------------------
def answer(state: FortiOSState, req, segments: list[str]) -> Response | None:
    """The answer for a login URL, or None when the request is not one (wire.py carries on)."""
    if segments == ["logincheck"]:
        return _logincheck(state, req)
    if segments == ["logout"]:
        return _logout(state, req)
    if segments == ["logindisclaimer"]:
        return _disclaimer(state, req)
    if segments == ["api", "v2", "authentication"] and state.version >= AUTHENTICATION_SINCE:
        return _authentication(state, req)
    return None


def authenticate(state: FortiOSState, req, bearer: str | None):
    """``(principal, session)`` for a REST call: an API user or a logged-in admin; raises AuthFailure."""
    cookie = req.cookies.get(session_cookie_name(state, req))
    return state.sessions.authenticate(bearer, cookie, _peer(req))


def csrf_refused(session: Session | None, req) -> bool:
    """Cookie sessions must echo the CSRF token in ``X-CSRFTOKEN`` on every write (key sessions need not)."""
    if session is None or session.by_key or req.method not in WRITE_METHODS:
        return False
    return not AdminSessions.csrf_matches(session, req.headers.get("X-CSRFTOKEN"))


# -- cookie names -----------------------------------------------------------------------------
def cookie_number(state: FortiOSState, req) -> int:
    """The per-device number in the cookie names (stable for a serial and port, as on the device)."""
    digest = hashlib.sha256(f"{state.serial}:{_port(req)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def cookie_suffix(state: FortiOSState, req) -> str:
    """What follows the cookie names' base, by version (ref H.1).

    Before 7.0 a number (``APSCOOKIE_<n>``; the CSRF cookie is plain ``ccsrftoken``); from 7.0 the
    HTTPS port (``ccsrftoken_443``); from 7.2.4 the port and a short hex hash (``ccsrftoken_443_3334d10``).
    """
    if state.version >= PORT_HASH_COOKIES_SINCE:
        return f"_{_port(req)}_{cookie_number(state, req) & 0xFFFFFFF:07x}"
    if state.version >= PORT_COOKIES_SINCE:
        return f"_{_port(req)}"
    return f"_{cookie_number(state, req)}"


def session_cookie_name(state: FortiOSState, req) -> str:
    if state.version >= NEW_COOKIES_SINCE:
        return f"session_key_{_port(req)}_{cookie_number(state, req)}"
    return f"APSCOOKIE{cookie_suffix(state, req)}"


def csrf_cookie_names(state: FortiOSState, req) -> list[str]:
    if state.version >= NEW_COOKIES_SINCE:
        return [f"ccsrf_token_{_port(req)}_{cookie_number(state, req)}"]
    if state.version >= PORT_COOKIES_SINCE:
        return [f"ccsrftoken{cookie_suffix(state, req)}"]
    return ["ccsrftoken"]


def _set_session_cookies(response: Response, state: FortiOSState, req, secret: str, csrf: str) -> None:
    response.headers.add("Set-Cookie", f'{session_cookie_name(state, req)}="{secret}"; Path=/; Secure; HttpOnly')
    for name in csrf_cookie_names(state, req):
        # Quoted by hand: the quotes are part of what clients strip, and Werkzeug would escape them.
        response.headers.add("Set-Cookie", f'{name}="{csrf}"; Path=/; Secure')


def _clear_session_cookies(response: Response, state: FortiOSState, req) -> None:
    for name in [session_cookie_name(state, req), *csrf_cookie_names(state, req)]:
        response.headers.add("Set-Cookie", f'{name}=""; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT')


# -- /logincheck, /logout, /logindisclaimer ---------------------------------------------------
def _logincheck(state: FortiOSState, req) -> Response:
    """Form login; the credentials may come in the body (any Content-Type) or the query string."""
    form = _form(req)
    username, password = form.get("username"), form.get("secretkey")
    if username is None:  # a bare GET /logincheck (some clients call it on connect): not an attempt
        if req.method in ("GET", "HEAD") and state.version >= BARE_GET_REDIRECTS_SINCE:  # lockout or not (ref H.12)
            return Response("", status=302, headers={"Location": "/error/403/"}, content_type=HTML_TYPE)
        return _text(LOGIN_FAILED_BODY)
    legacy = state.version < NEW_COOKIES_SINCE
    try:
        session = state.sessions.login(username, password or "", _peer(req), by_key=False)
    except LoginRefused:
        response = _text(LOGIN_FAILED_BODY)
        if legacy:
            _set_session_cookies(response, state, req, FAILED_COOKIE, FAILED_COOKIE)
        return response
    except PasswordExpired:
        return _text(PASSWORD_CHANGE_BODY)  # no session: nothing works until the password is changed
    notice("login")
    response = _text(LOGIN_OK_BODY)
    if legacy:
        _set_session_cookies(response, state, req, session.secret, session.csrf_token)
    else:
        state.sessions.logout(session)  # 7.6.3+: the login "works" but leaves nothing to use
    return response


def _logout(state: FortiOSState, req) -> Response:
    session = _request_session(state, req)
    if session is not None:
        state.sessions.logout(session)
        notice("logout")
    response = Response(LOGOUT_HTML, status=200, content_type=HTML_TYPE)
    _clear_session_cookies(response, state, req)
    return response


def _disclaimer(state: FortiOSState, req) -> Response:
    """``confirm=1`` accepts the post-login banner for this session; anything else logs it out."""
    session = _request_session(state, req)
    if session is None:
        raise AuthFailure(401, "no session to accept the banner for")
    if _form(req).get("confirm") == "1":
        state.sessions.accept_banner(session)
        return _text(LOGIN_OK_BODY)
    state.sessions.logout(session)
    return _text(LOGIN_FAILED_BODY)


# -- /api/v2/authentication -------------------------------------------------------------------
def _authentication(state: FortiOSState, req) -> Response:
    if req.method == "POST":
        return _api_login(state, req)
    if req.method not in ("PUT", "DELETE"):
        return _json({"http_method": req.method, "status": "error", "http_status": 405}, 405)
    session = _request_session(state, req)
    if session is None:
        raise AuthFailure(401, "no session")
    if req.method == "DELETE":
        state.sessions.logout(session)
        notice("logout")
        response = _json({"status_message": "HTTP_AUTHD_LOGOUT_SUCCESS"}, 200)
        if not session.by_key:
            _clear_session_cookies(response, state, req)
        return response
    body = _json_body(req)
    state.sessions.renew(session, accept_banner=bool(isinstance(body, dict) and body.get("ack_post_disclaimer")))
    return _json(_login_success(state, session), 200)


def _api_login(state: FortiOSState, req) -> Response:
    body = _json_body(req)
    if not isinstance(body, dict):
        return _json({"http_method": "POST", "status": "error", "http_status": 400}, 400)
    password = body.get("secretkey", body.get("password"))
    by_key = bool(body.get("request_key"))
    try:
        session = state.sessions.login(body.get("username"), password, _peer(req), by_key=by_key,
                                       accept_banner=bool(body.get("ack_post_disclaimer")))
    except LoginRefused:
        return _json({"status": -1, "status_message": "LOGIN_FAILED"}, 200)
    except PasswordExpired:
        return _json({"status": 4, "status_message": "LOGIN_PASSWORD_CHANGE_REQUIRED"}, 200)
    notice("login")
    response = _json(_login_success(state, session), 200)
    if not by_key:
        _set_session_cookies(response, state, req, session.secret, session.csrf_token)
    return response


def _login_success(state: FortiOSState, session: Session) -> dict:
    payload = {"status": 6 if state.version >= STATUS_6_SINCE else 5, "status_message": "LOGIN_SUCCESS"}
    if session.by_key:
        payload["session_key"] = session.secret
    return payload


# -- request helpers --------------------------------------------------------------------------
def _request_session(state: FortiOSState, req) -> Session | None:
    """The session a login-URL request names: Bearer key, ``session_key`` in the body, or the cookie."""
    state.refuse_if_locked_out(_peer(req))
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    key = value.strip() if scheme.lower() == "bearer" else None
    key = key or _form(req).get("session_key")
    if key:
        return state.sessions.find(key, by_key=True)
    return state.sessions.find(req.cookies.get(session_cookie_name(state, req)), by_key=False)


def _form(req) -> dict[str, str]:
    """Form fields from the query string and the body, whatever Content-Type the client claims."""
    fields = {k: v[0] for k, v in parse_qs(req.environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
    body = req.get_data(cache=True).decode("utf-8", "replace")
    if not body.lstrip().startswith(("{", "[")):
        fields.update({k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()})
    return fields


def _json_body(req):
    try:
        return bodies.loads(req.get_data(cache=True) or b"null")
    except bodies.BodyError:
        return None


def _peer(req) -> str:
    return req.remote_addr or ""


def _port(req) -> str:
    return str(req.environ.get("SERVER_PORT", "443"))


def _text(body: str) -> Response:
    return Response(body, status=200, content_type=HTML_TYPE)


def _json(payload, status: int) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json")
