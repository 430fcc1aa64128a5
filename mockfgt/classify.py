"""The reference classifier: what a correct client reports for what it saw.

``classify(x)`` takes an exception raised by a client (requests, httpx, urllib, or the ``ssl`` and
``socket`` modules directly) or an HTTP response, and returns one of the codes in
:mod:`mockfgt.codes`. It never looks at the server, so it works against a real device too.

Exceptions are classified by what is *inside* them, not by their top-level type: httpx raises the same
``ConnectError`` for a refused connection and for an expired certificate, and requests' ``SSLError``
is a subclass of its ``ConnectionError``. The walk follows ``__cause__``, ``__context__``, urllib3's
``reason`` and exceptions carried in ``args``, then decides in this order: certificate verification
(202003), refused/reset/name resolution (202000), timeout (202004), any other TLS error (202003),
any other socket error (202000).

A response is classified by its status: 2xx..3xx and plain API errors such as 404 or 500 are ``ok``
(the device was reached and took the credential), 401 and 429 are 202001, 403 is 202002.

FortiManager answers HTTP 200 whatever happened; its verdict is the JSON-RPC status code inside, and
the same -11 means a bad credential or a missing permission. :func:`classify_jsonrpc` therefore takes
the context too (which call, whether the credential already worked); ``classify`` accepts a parsed
JSON-RPC answer (a dict with ``result``) and judges its first failed entry.
"""

from __future__ import annotations

from .codes import AUTHENTICATION, AUTHORIZATION, CONNECTION, OK, TIMEOUT, TLS


def classify(outcome) -> str:
    """Map an exception, a response or a parsed JSON-RPC answer to ``ok`` or one of 202000..202004."""
    if isinstance(outcome, dict) and "result" in outcome:
        return classify_jsonrpc_answer(outcome)
    status = _status_of(outcome)
    if status is not None:
        return classify_status(status)
    if isinstance(outcome, BaseException):
        return classify_exception(outcome)
    raise TypeError(f"cannot classify {type(outcome).__name__}: pass an exception or a response")


def classify_status(status: int) -> str:
    if status in (401, 429):
        return AUTHENTICATION
    if status == 403:
        return AUTHORIZATION
    return OK


#: FortiManager URLs every admin with API access may call: a -11 there is the credential's fault.
#: Not /cli/global/system/status: it needs System Settings read (fmg-probe-needs-sys-read), so a -11
#: there is the profile's fault once /sys/status has taken the credential.
JSONRPC_OPEN_URLS = ("sys/status",)
JSONRPC_LOGIN_URL = "sys/login/user"
JSONRPC_READ_METHODS = ("get",)


def classify_jsonrpc(code: int, *, method: str = "get", url: str = "", credential: str = "unverified") -> str:
    """What a FortiManager JSON-RPC status code means for the agent, given the call that got it.

    ``credential`` is ``"accepted"`` when the same key or session has just been taken by a call every
    admin may make (``/sys/status``), ``"unverified"`` otherwise. The mapping:

    ======== =========================================================== =========
    code     context                                                     reports
    ======== =========================================================== =========
    0        anything                                                    ok
    -22      login failed (wrong user, password or source address)      202001
    -11      on ``exec /sys/login/user``: the password was right, the    202002
             admin has rpc-permit none
    -11      credential accepted: profile, ADOM, rpc-permit read         202002
    -11      on ``/sys/status`` (open to every admin): bad, regenerated  202001
             or query-string key, stale or logged-out session
    -11      any other read with an unverified credential                202001
    -11      any other write with an unverified credential               202002
    -10147   write in workspace mode without the ADOM lock               202002
    -20055   the ADOM is locked by another session                       202002
    other    the device was reached and took the credential (-2 exists,  ok
             -3 missing, -6 bad URL, -10 bad data...)
    ======== =========================================================== =========
    """
    path = url.strip("/")
    if code == -22:
        return AUTHENTICATION
    if code in (-10147, -20055):
        return AUTHORIZATION
    if code != -11:
        return OK
    if path == JSONRPC_LOGIN_URL or credential == "accepted":
        return AUTHORIZATION
    if path in JSONRPC_OPEN_URLS or method in JSONRPC_READ_METHODS:
        return AUTHENTICATION
    return AUTHORIZATION


def classify_jsonrpc_answer(answer: dict, *, method: str | None = None, credential: str = "unverified") -> str:
    """The verdict on a whole JSON-RPC answer: its first entry whose status code is not 0."""
    method = method or "get"
    for entry in answer.get("result") or []:
        code = (entry.get("status") or {}).get("code", 0) if isinstance(entry, dict) else 0
        if code != 0:
            return classify_jsonrpc(code, method=method, url=str(entry.get("url", "")), credential=credential)
    return OK


def classify_exception(exc: BaseException) -> str:
    import socket  # here, not at the top: `import mockfgt` stays cheap (the CLI's first instants)
    import ssl

    chain = list(exception_chain(exc))
    for candidate in chain:
        # urllib's HTTPError is a response in disguise; requests' HTTPError and httpx's
        # HTTPStatusError (raise_for_status) carry theirs in ``response``.
        status = _status_of(candidate)
        if status is None and getattr(candidate, "response", None) is not None:
            status = _status_of(candidate.response)
        if status is not None:
            return classify_status(status)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return TLS
    # Root causes before wrappers: urllib3's NewConnectionError (refused, unresolvable) is a
    # subclass of its ConnectTimeoutError, so the name alone would say "timeout".
    if any(isinstance(e, (ConnectionRefusedError, ConnectionResetError, socket.gaierror)) for e in chain):
        return CONNECTION
    if any(_is_timeout(e) for e in chain):
        return TIMEOUT
    # urllib3's SSLError (requests' too) without an ssl one below: a pinned fingerprint did not match.
    if any(isinstance(e, ssl.SSLError) or _named(e, "SSLError") for e in chain):
        return TLS
    if any(isinstance(e, OSError) or _named(e, "ConnectError", "ConnectionError", "RemoteDisconnected",
                                            "ProtocolError", "ReadError") for e in chain):
        return CONNECTION
    raise ValueError(f"not a connection, TLS or timeout failure: {exc!r}")


def exception_chain(exc: BaseException):
    """Every exception reachable from ``exc`` through causes, contexts, reasons and args, once each."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        links = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        links += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [link for link in links if isinstance(link, BaseException)]


def _named(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _is_timeout(exc: BaseException) -> bool:
    # socket.timeout is TimeoutError; requests, urllib3 and httpx all name theirs *Timeout*.
    return isinstance(exc, TimeoutError) or any("Timeout" in cls.__name__ for cls in type(exc).__mro__)


def _status_of(outcome) -> int | None:
    """The HTTP status of a requests/httpx response, a urllib response or HTTPError, or an int."""
    if isinstance(outcome, int) and not isinstance(outcome, bool):
        return outcome
    for attr in ("status_code", "status", "code"):
        value = getattr(outcome, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            if isinstance(outcome, BaseException) and attr != "code":
                continue
            return value
    return None
