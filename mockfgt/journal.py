"""What happened on a device's port: every connection outcome and every request, credentials redacted.

A test (or a shell script through the control API) reads the journal to prove what the agent did:
that it really verified the certificate (the handshake ended with the client's "unknown ca" alert
instead of a request), which token it sent (redacted, but present), what the device answered.

>>> fgt.journal.requests(path="/api/v2/cmdb/firewall/address", method="POST")
>>> fgt.assert_request_made(method="GET", path="/api/v2/monitor/system/status", status=200)
"""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
import time
from collections import deque
from urllib.parse import parse_qsl, urlencode

from . import bodies

REDACTED = "<redacted>"
#: Header names whose values are credentials.
SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "x-csrftoken", "proxy-authorization"}
#: Query, form and JSON keys whose values are credentials (FortiOS and FortiManager spellings).
SECRET_KEYS = {"access_token", "password", "passwd", "secretkey", "session", "session_key", "api_key",
               "access-token", "token", "csrf_token", "ccsrftoken"}
BODY_LIMIT = 64 * 1024  # bodies are kept up to this size; the rest is counted, not stored
DEFAULT_CAPACITY = 10_000  # oldest entries go first once a journal holds this many


class Journal:
    """A bounded, thread-safe list of events; each event is a plain JSON-ready dict with a ``seq``."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._events: deque[dict] = deque(maxlen=capacity)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, event: dict) -> dict:
        with self._lock:
            entry = {"seq": next(self._seq), "time": round(time.time(), 6), **event}
            self._events.append(entry)
        return entry

    def events(self, since: int = 0) -> list[dict]:
        """Every event with ``seq`` greater than ``since``, oldest first."""
        with self._lock:
            return [e for e in self._events if e["seq"] > since]

    def requests(self, *, method: str | None = None, path: str | None = None, status: int | None = None) -> list[dict]:
        """The HTTP requests the device answered, optionally filtered."""
        return [
            e for e in self.events()
            if e["event"] == "request"
            and (method is None or e["method"] == method.upper())
            and (path is None or e["path"] == path)
            and (status is None or e["status"] == status)
        ]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


# -- recording a request ------------------------------------------------------------------------
def request_body(environ) -> bytes:
    """The request body, without reading it again: the listener hands every request to the app with
    its body already read whole into a BytesIO (an empty one for a body refused by its length)."""
    stream = environ.get("wsgi.input")
    return stream.getvalue() if isinstance(stream, io.BytesIO) else b""


def request_event(environ, body: bytes, status: int, response_body: bytes, started: float) -> dict:
    """A journal entry for one answered request."""
    tls = environ.get("mockfgt.tls")
    return {
        "event": "request",
        "client": environ.get("REMOTE_ADDR"),
        "client_port": _int(environ.get("REMOTE_PORT")),
        "tls": tls,
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO", ""),
        "query": redact_query(environ.get("QUERY_STRING", "")),
        "headers": redact_headers(_headers(environ)),
        "body": redact_body(body, environ.get("CONTENT_TYPE", "")),
        "body_size": len(body),
        "status": status,
        "result": emulated_result(response_body),
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


def _headers(environ) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    if environ.get("mockfgt.transfer_encoding"):  # a chunked body the listener refused
        headers["Transfer-Encoding"] = environ["mockfgt.transfer_encoding"]
    return headers


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Credentials become ``<redacted>``; the scheme of an Authorization header stays visible."""
    out = {}
    for name, value in headers.items():
        if name.lower() == "authorization" and " " in value:
            out[name] = f"{value.split(' ', 1)[0]} {REDACTED}"
        elif name.lower() in SECRET_HEADERS:
            out[name] = REDACTED
        else:
            out[name] = value
    return out


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in SECRET_KEYS for k, _ in pairs):
        return query
    return "&".join(f"{k}={REDACTED}" if k.lower() in SECRET_KEYS else urlencode([(k, v)]) for k, v in pairs)


def redact_body(body: bytes, content_type: str) -> str | None:
    """The body as text with credential fields redacted (JSON at any depth, a form, or anything else)."""
    if not body:
        return None
    text = body[:BODY_LIMIT].decode("utf-8", "replace")
    if len(body) <= BODY_LIMIT:
        try:
            return json.dumps(_redact_json(bodies.loads(text)))
        except bodies.BodyError:
            pass
        if "form" in content_type:
            return redact_query(text)
    # Truncated, malformed or of no declared type: the device may still read it as a login form, so
    # anything shaped like a credential pair is blanked where it stands.
    return redact_text(text)


def redact_text(text: str) -> str:
    """Free text (a body, a request line in a log message) with every credential pair blanked."""
    return _SECRET_PAIR.sub(_blank, text)


# "key": "value", 'key': value or key=value for every credential key, at a word boundary.
_SECRET_PAIR = re.compile(
    r"(?<![\w-])(?P<quote>[\"']?)(?P<key>" + "|".join(sorted(map(re.escape, SECRET_KEYS), key=len, reverse=True))
    + r")(?P=quote)(?P<sep>\s*[:=]\s*)(?P<value>\"(?:[^\"\\]|\\.)*\"?|[^&\s,;}\]]*)",
    re.IGNORECASE,
)


def _blank(match: re.Match) -> str:
    value = match["value"]
    blank = f'"{REDACTED}"' if value.startswith('"') else REDACTED
    return f"{match['quote']}{match['key']}{match['quote']}{match['sep']}{blank}"


def _redact_json(value):
    if isinstance(value, dict):
        return {k: REDACTED if k.lower() in SECRET_KEYS else _redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


def emulated_result(response_body: bytes):
    """What the device said, in a line: FortiOS status/error, or each JSON-RPC result's code."""
    try:
        data = json.loads(response_body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("result"), list):
        return [
            {"url": r.get("url"), "code": (r.get("status") or {}).get("code")}
            for r in data["result"] if isinstance(r, dict)
        ]
    if isinstance(data, list):  # vdom=* / global=1: one envelope per VDOM
        return [_envelope_summary(e) for e in data if isinstance(e, dict)]
    return _envelope_summary(data) if isinstance(data, dict) else None


def _envelope_summary(envelope: dict) -> dict:
    return {k: envelope[k] for k in ("status", "http_status", "error", "mkey", "vdom") if k in envelope}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
