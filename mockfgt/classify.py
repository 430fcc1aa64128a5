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
"""

from __future__ import annotations

import socket
import ssl

from .codes import AUTHENTICATION, AUTHORIZATION, CONNECTION, OK, TIMEOUT, TLS


def classify(outcome) -> str:
    """Map an exception or a response to ``ok`` or one of 202000..202004."""
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


def classify_exception(exc: BaseException) -> str:
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
    if any(isinstance(e, ssl.SSLError) for e in chain):
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
