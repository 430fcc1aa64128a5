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

from . import bodies

REDACTED = "<redacted>"
#: Header names whose values are credentials (and any name that ``_SECRET_HEADER_NAME`` finds).
SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "x-csrftoken", "proxy-authorization"}
#: Query, form and JSON keys whose values are credentials (FortiOS and FortiManager spellings).
SECRET_KEYS = {"access_token", "password", "passwd", "secretkey", "session", "session_key", "api_key",
               "access-token", "token", "csrf_token", "ccsrftoken"}
#: Authorization schemes shown in the journal; any other first word might be the credential itself.
AUTH_SCHEMES = {"bearer", "basic", "digest", "token", "negotiate", "ntlm", "apikey", "api-key"}

DEFAULT_CAPACITY = 10_000  # oldest entries go first once a journal holds this many...
DEFAULT_BYTES = 16 * 1024 * 1024  # ...or this many bytes of entries (as JSON)
# Unless given, the byte bound grows with a capacity raised past 10,000 (a typical request's entry
# weighs under 1 KiB): a caller who asks to keep more entries is given room for them, and a flood
# of large requests still stops at about 1.6 KiB per entry on average.
PARSE_LIMIT = 64 * 1024  # a JSON body up to this size is parsed and redacted key by key
BODY_LIMIT = 16 * 1024  # what is stored of a body; body_size says how large it was
VALUE_LIMIT = 4 * 1024  # what is stored of one header value, of the path and of the query
HEADERS_LIMIT = 16 * 1024  # what is stored of all header values of one request
RESULT_LIMIT = 100  # what is stored of a JSON-RPC answer's results (one line each)


class Journal:
    """A bounded, thread-safe list of events; each event is a plain JSON-ready dict with a ``seq``.

    Bounded twice: at most ``capacity`` events and at most ``max_bytes`` bytes of them (each event
    weighed as compact JSON; by default 16 MiB, or 16 MiB per 10,000 of a larger ``capacity``); the
    oldest go first. The newest event always stays, whatever it weighs (a request's entry is at
    most about 60 KiB: see the limits above).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            max_bytes = max(DEFAULT_BYTES, DEFAULT_BYTES * capacity // DEFAULT_CAPACITY)
        if capacity < 1 or max_bytes < 1:
            raise ValueError("a journal holds at least one event and one byte")
        self.capacity, self.max_bytes = capacity, max_bytes
        self._events: deque[tuple[int, dict]] = deque()  # (weight in bytes, event)
        self._bytes = 0
        self._evicted = 0
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, event: dict) -> dict:
        entry_time = round(time.time(), 6)
        weight = weigh(event) + 40  # "seq" and "time"
        with self._lock:
            entry = {"seq": next(self._seq), "time": entry_time, **event}
            self._events.append((weight, entry))
            self._bytes += weight
            while len(self._events) > 1 and (len(self._events) > self.capacity or self._bytes > self.max_bytes):
                self._bytes -= self._events.popleft()[0]
                self._evicted += 1
        return entry

    def events(self, since: int = 0) -> list[dict]:
        """Every event with ``seq`` greater than ``since``, oldest first."""
        with self._lock:
            return [e for _, e in self._events if e["seq"] > since]

    def page(self, since: int = 0, *, limit: int | None = None, max_bytes: int | None = None) -> tuple[list[dict], bool]:
        """Events after ``since``, oldest first, up to ``limit`` of them and about ``max_bytes``
        (at least one); and whether more follow. Read the next page with ``since`` = the last ``seq``."""
        out: list[dict] = []
        weight = 0
        with self._lock:
            for size, entry in self._events:
                if entry["seq"] <= since:
                    continue
                if out and ((limit is not None and len(out) >= limit)
                            or (max_bytes is not None and weight + size > max_bytes)):
                    return out, True
                out.append(entry)
                weight += size
        return out, False

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
            self._bytes = 0

    @property
    def bytes(self) -> int:
        """What the events held weigh, as compact JSON."""
        with self._lock:
            return self._bytes

    @property
    def evicted(self) -> int:
        """How many events were dropped, oldest first, to stay within the bounds (not counting clear())."""
        with self._lock:
            return self._evicted

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def weigh(event: dict) -> int:
    """An event's size as compact JSON (what the control API sends of it, give or take)."""
    return len(json.dumps(event, separators=(",", ":"), default=str))


# -- recording a request ------------------------------------------------------------------------
def request_body(environ) -> bytes:
    """The request body, without reading it again: the listener hands every request to the app with
    its body already read whole into a BytesIO (an empty one for a body refused by its length)."""
    stream = environ.get("wsgi.input")
    return stream.getvalue() if isinstance(stream, io.BytesIO) else b""


def request_event(environ, body: bytes, status: int, response_body: bytes, started: float) -> dict:
    """A journal entry for one answered request, every part bounded: what was cut is named in
    ``truncated``, with the true sizes in ``body_size``, ``headers_size`` and ``header_sizes``."""
    truncated: list[str] = []
    received = _headers(environ)
    headers, header_sizes = stored_headers(received)
    if header_sizes:
        truncated.append("headers")
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if len(path) > VALUE_LIMIT:
        path = path[:VALUE_LIMIT]
        truncated.append("path")
    if len(query) > VALUE_LIMIT:
        query = query[:VALUE_LIMIT]
        truncated.append("query")
    if len(body) > BODY_LIMIT:
        truncated.append("body")
    result = emulated_result(response_body)
    if isinstance(result, list) and len(result) > RESULT_LIMIT:
        result = result[:RESULT_LIMIT]
        truncated.append("result")
    return {
        "event": "request",
        **client_of(environ),
        "tls": environ.get("mockfgt.tls"),
        "method": environ.get("REQUEST_METHOD"),
        "path": path,
        "query": redact_query(query),
        "headers": headers,
        "headers_size": headers_size(received),
        "header_sizes": header_sizes,
        "body": redact_body(body, environ.get("CONTENT_TYPE", "")),
        "body_size": len(body),
        "truncated": truncated,
        "status": status,
        "result": result,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


def request_headers_size(environ) -> int:
    """The size of a request's header section, from its WSGI environ (as ``headers_size``)."""
    return sum(len(key) - 1 + len(value) for key, value in environ.items()  # "HTTP_X" is "X: " less 1
               if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"))


def headers_size(headers: dict[str, str]) -> int:
    """The size of the header section as sent: ``Name: value\r\n`` per header."""
    return sum(len(name) + len(value) + 4 for name, value in headers.items())


def stored_headers(headers: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """The headers redacted and cut to ``VALUE_LIMIT`` each and ``HEADERS_LIMIT`` in all; and the true
    size of each value that was cut. Values are cut before they are redacted (a credential cut in
    its value is still blanked; one cut in its key left its value out)."""
    kept, sizes, budget = {}, {}, HEADERS_LIMIT
    for name, value in headers.items():
        room = max(min(VALUE_LIMIT, budget), 0)
        if len(value) > room:
            sizes[name] = len(value)
            value = value[:room]
        budget -= len(value)
        kept[name] = value
    return redact_headers(kept), sizes


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


# -- redaction ----------------------------------------------------------------------------------
# The device decodes what it reads (a %-encoded form key, a JSON key written with \u escapes), so
# keys are decoded before they are compared; and whatever is stored is checked once more, fully
# decoded, so a spelling no rule foresaw costs the stored text, never a credential.

def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Credentials become ``<redacted>``; the scheme of an Authorization header stays visible."""
    out = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in SECRET_HEADERS or _SECRET_HEADER_NAME.search(lower):
            scheme, _, credential = value.strip().partition(" ")
            shown = lower.endswith("authorization") and credential and scheme.lower() in AUTH_SCHEMES
            out[name] = f"{scheme} {REDACTED}" if shown else REDACTED
        else:
            out[name] = redact_text(value)  # a Referer with ?access_token=..., a custom header
    return out


def redact_query(query: str) -> str:
    """A query string with every credential field blanked (keys compared %-decoded)."""
    return redact_text(query)


def redact_body(body: bytes, content_type: str = "") -> str | None:
    """The body as text with credential fields redacted, at most ``BODY_LIMIT`` bytes of it.

    A JSON body small enough to parse is redacted key by key (json.loads has decoded any escapes in
    the keys); anything else, whatever its Content-Type (the device reads a form from any body), is
    redacted as text: form fields and quoted or bare ``key: value`` pairs, keys decoded first.
    """
    if not body:
        return None
    if len(body) <= PARSE_LIMIT:
        try:
            text = json.dumps(_redact_json(bodies.loads(body)))
        except bodies.BodyError:
            pass
        else:
            return _checked(text)[:BODY_LIMIT]  # cut after redaction: no value is left half-blanked
    # Cut before redaction: a pair cut in its value is still blanked (to the end of the text); a
    # pair cut in its key left its value out of what is stored.
    # Blanking can lengthen the text (x -> <redacted>); a prefix of checked text needs no new check.
    return redact_text(body[:BODY_LIMIT].decode("utf-8", "replace"))[:BODY_LIMIT]


def redact_text(text: str) -> str:
    """Free text (a body, a query, a request line in a log message) with every credential pair blanked."""
    if not _MAYBE_PAIR.search(text):  # no pair, nor an escape that could make one: most headers
        return text
    return _checked(_blank_pairs(text))


def _redact_json(value):
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    if isinstance(value, str) and ("=" in value or ":" in value):
        return _blank_pairs(value)  # a form or a JSON document inside a string
    return value


_SECRET_HEADER_NAME = re.compile("auth|token|cookie|passw|secret|session|api-?key|csrf")
_MAYBE_PAIR = re.compile(r"[:=%\\]")
_ESCAPE = re.compile(r"[%\\]")
# A text without an escape and without any credential key (in any case) has no pair to blank.
_ANY_SECRET_KEY = re.compile("|".join(map(re.escape, SECRET_KEYS)), re.IGNORECASE)
_KEY_WORDS = re.compile(r"[^\w-]+")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_JSON_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|[\"\\/bfnrt'])")
_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# A key and its separator: a quoted key (JSON or Python style) before ':' or '=', or a bare key
# (a form field, a word in free text) before '=' or ':'.
_KEY = re.compile(
    r"""(?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*(?P<qsep>[:=])\s*"""
    # A bare key starts after a delimiter: tried at every character of a long word, it would take
    # time quadratic in the word's length.
    r"""|(?<![^\s=&;:,{}"'()<>?])(?P<bare>[^\s=&;:,{}"'()<>?]+)\s*(?P<bsep>[:=])\s*"""
)
_BARE_END = re.compile(r"[&\s,;}\]]")
_FORM_END = re.compile(r"[&\s]")  # a form value runs to the next field: "a,b;c]" is one password
_REDACTED_VALUE = re.compile(r"""["']?<redacted>|["']{2}|$|[&\s,;}\]]""")


def _decode(text: str) -> str:
    """``text`` as a form or JSON reader would see it: %-escapes and JSON escapes undone, repeatedly."""
    for _ in range(4):  # a double-encoded key (%256B) is still a key to some reader
        decoded = _JSON_ESCAPE.sub(_unescape, _PERCENT.sub(lambda m: chr(int(m[0][1:], 16)), text.replace("+", " ")))
        if decoded == text:
            break
        text = decoded
    return text


def _unescape(match: re.Match) -> str:
    code = match[1]
    return chr(int(code[1:], 16)) if code[0] == "u" else _ESCAPED.get(code, code)


def _is_secret_key(key: str) -> bool:
    """A credential key, however spelled: ``secret%6Bey``, ``pass\\u0077d``, ``Password``, ``data[passwd]``."""
    if _ESCAPE.search(key):
        key = _decode(key)
    if not _ANY_SECRET_KEY.search(key):
        return False
    return any(word.lower() in SECRET_KEYS for word in _KEY_WORDS.split(key) if word)


def _pairs(text: str):
    """Each credential pair in ``text``: (start of its value, end of its value)."""
    position = 0
    while (match := _KEY.search(text, position)) is not None:
        key = match["quoted"][1:-1] if match["quoted"] else match["bare"]
        position = match.end()
        if _is_secret_key(key):
            end = _value_end(text, position, form=(match["qsep"] or match["bsep"]) == "=")
            yield position, end
            position = max(end, position)


def _value_end(text: str, start: int, form: bool = False) -> int:
    """Where the value starting at ``start`` ends: a quoted string, a bracketed list or object (both
    to their close, or to the end of a broken text), or a bare word (after '=', a form field's value)."""
    if start >= len(text):
        return start
    opener = text[start]
    if opener in "\"'":
        i = start + 1
        while i < len(text) and text[i] != opener:
            i += 2 if text[i] == "\\" else 1
        return min(i + 1, len(text))
    if opener in "[{":
        depth, i, quote = 0, start, None
        while i < len(text):
            char = text[i]
            if quote:
                if char == "\\":
                    i += 1
                elif char == quote:
                    quote = None
            elif char in "\"'":
                quote = char
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return len(text)
    end = (_FORM_END if form else _BARE_END).search(text, start)
    return end.start() if end else len(text)


def _blank_pairs(text: str) -> str:
    if not _ANY_SECRET_KEY.search(text) and not _ESCAPE.search(text):
        return text
    out, position = [], 0
    for start, end in _pairs(text):
        quoted = start < len(text) and text[start] in "\"'[{"
        out += [text[position:start], f'"{REDACTED}"' if quoted else REDACTED]
        position = end
    return "".join(out) + text[position:] if out else text


def _checked(text: str) -> str:
    """``text``, or a placeholder when its decoded form still shows a credential key with a value."""
    decoded = _decode(text) if _ESCAPE.search(text) else text
    if not _ANY_SECRET_KEY.search(decoded):
        return text
    for start, _ in _pairs(decoded):
        if not _REDACTED_VALUE.match(decoded, start):
            return f"{REDACTED} ({len(text.encode())} bytes: a credential could not be blanked on its own)"
    return text


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


def client_of(environ) -> dict:
    """``client`` and ``client_port`` of the request ``environ`` describes, as every entry names them."""
    return {"client": environ.get("REMOTE_ADDR"), "client_port": _int(environ.get("REMOTE_PORT"))}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
