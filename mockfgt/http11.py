"""The HTTP/1.1 side of a device's connections: Werkzeug's request parsing, our own keep-alive.

Werkzeug's server closes every connection after one response (it cannot drain a request body it did
not read). Devices keep HTTPS connections alive, and clients with sessions rely on it, so
:class:`Handler` reads each request body whole before the app runs (bounded by ``MAX_BODY``) and
sends each answer in one write with its length: the next request line is then always where it
belongs. It overrides parts of Werkzeug's ``WSGIRequestHandler`` (``werkzeug<4`` in pyproject.toml).

The listener (:mod:`mockfgt.listener`) drives a handler one request at a time
(:meth:`Handler.serve_one`), so that an idle keep-alive connection waits in the shared accept loop,
not on a worker thread; this module knows nothing of accepting, faults or TLS set-up.
"""

from __future__ import annotations

import http
import io
import logging
import re
import socket
import ssl
import time
from typing import TYPE_CHECKING

from werkzeug.serving import WSGIRequestHandler

from .bodies import MAX_BODY
from .journal import redact_text

if TYPE_CHECKING:
    from .listener import ConnectionPlan, Listener

log = logging.getLogger("mockfgt")

_REASONS = {str(status.value): status.phrase for status in http.HTTPStatus}

#: The environ key an app sets to answer a request late: seconds (a slow endpoint). The answer is made
#: at once and sent after that long, unless the client leaves first (see Listener._hold).
ANSWER_AFTER = "mockfgt.answer_after"

#: Apache's lingering close (2 s): after a refused handshake, how long in all to drain the client before
#: closing; while swallowing a refused body, the longest pause that does not end it.
LINGER_SECONDS = 2.0


class MalformedBody(Exception):
    """A chunked body whose framing is broken: the request cannot be read, so it is answered 400."""


class IncompleteRequest(Exception):
    """The connection ended (the client left, or was dropped at its deadline) before the request was whole."""


class _Input:
    """The connection's input, buffered here, noting when a read met the end of the connection.

    http.client ends a header block at end of file as at a blank line, http.server runs a request line
    that lacks its CRLF, and a body read stops short at end of file: each hands on a request the
    client never finished. A read that ends short marks the request as incomplete instead.

    The buffer is ours (not a ``makefile()`` reader) so that the listener can tell whether a pipelined
    request already waits in it (:attr:`buffered`) before it parks the connection in the accept loop.
    """

    _CHUNK = 65536

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.ended = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _fill(self) -> bool:
        data = self._sock.recv(self._CHUNK)
        self._buffer += data
        return bool(data)

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = None if size is None or size < 0 else size
        searched = 0
        while True:
            newline = self._buffer.find(b"\n", searched, limit)
            if newline >= 0:
                return self._take(newline + 1)
            if limit is not None and len(self._buffer) >= limit:
                return self._take(limit)
            searched = len(self._buffer)
            if not self._fill():
                self.ended = True
                return self._take(len(self._buffer))

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            self.ended = True
            return self._take(len(self._buffer))
        while len(self._buffer) < size:
            if not self._fill():
                self.ended = True
                break
        return self._take(size)


class _Output:
    """The connection's output: every write goes out at once (an answer is one write: see Handler)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.closed = False

    def write(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass


_DIGITS = re.compile(r"[0-9]+")  # int() would also take "+52", "5_2", " 52" and non-ASCII digits
#: A chunk-size line: hex digits, then optional chunk extensions (ignored, as RFC 9112 allows).
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")
_MAX_TRAILER_LINES = 100


def _read_chunked(stream: _Input) -> bytes:
    """A chunked body, up to ``MAX_BODY + 1`` bytes; MalformedBody for broken framing.

    Werkzeug's reader takes ``+5`` and ``5_0`` as chunk sizes (``int(x, 16)``), the same leniency
    as with Content-Length; only hex digits are a size here. The trailer section is read and ignored.
    """
    body = bytearray()
    while True:
        line = stream.readline(1024)
        if stream.ended:
            raise IncompleteRequest(f"the connection ended inside a chunked body after {len(body)} bytes")
        size = _CHUNK_SIZE.fullmatch(line)
        if size is None:
            raise MalformedBody(f"Bad chunk header {line[:40]!r}")
        length = int(size[1], 16)
        if length == 0:
            break
        data = stream.read(min(length, MAX_BODY + 1 - len(body)))
        if stream.ended:
            raise IncompleteRequest(f"the connection ended inside a chunked body after {len(body) + len(data)} bytes")
        body += data
        if len(body) > MAX_BODY:
            return bytes(body)  # refused by its length; the rest is swallowed after the answer
        if stream.readline(3) not in (b"\r\n", b"\n"):
            if stream.ended:
                raise IncompleteRequest("the connection ended inside a chunked body")
            raise MalformedBody("Missing CRLF after a chunk")
    for _ in range(_MAX_TRAILER_LINES):
        line = stream.readline(8192)
        if stream.ended:
            raise IncompleteRequest("the connection ended inside the trailer of a chunked body")
        if line in (b"\r\n", b"\n"):
            return bytes(body)
    raise MalformedBody("Too many trailer lines")


def _framing_error(headers) -> str | None:
    """Why the body's framing is ambiguous, or None.

    A strict server refuses rather than guesses: a front end that chose the other reading would
    see a different request boundary (request smuggling). Werkzeug takes the last Content-Length,
    lets ``int()`` parse it and looks for "chunked" anywhere in Transfer-Encoding.
    """
    lengths = headers.get_all("Content-Length") or []
    codings = headers.get_all("Transfer-Encoding") or []
    if lengths and codings:
        return "Content-Length and Transfer-Encoding together"
    if len(codings) > 1 or (codings and codings[0].strip(" \t\r\n").lower() != "chunked"):
        return f"Unsupported Transfer-Encoding {', '.join(codings)[:40]!r}"
    if len(lengths) > 1:
        return "More than one Content-Length"
    if lengths and not _DIGITS.fullmatch(lengths[0].strip(" \t")):
        return f"Bad Content-Length {lengths[0][:40]!r}"
    return None


def _reason(exc: BaseException) -> str:
    """A short reason for a connection that ended under a read or a write."""
    if isinstance(exc, IncompleteRequest):
        return str(exc)
    if isinstance(exc, ConnectionResetError):
        return "reset by the client"
    if isinstance(exc, BrokenPipeError):
        return "closed by the client before the answer was sent"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {tls_failure(exc)}"
    return f"connection error: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


class Handler(WSGIRequestHandler):
    """Werkzeug's request parsing with our own response writing, so connections are kept alive.

    Made with :meth:`open` and driven one request at a time by :meth:`serve_one` (never by
    ``handle()``, whose loop would keep a worker thread for as long as the connection lives).

    A request reaches the app only once it arrived whole: a request line without its CRLF, headers
    without their blank line or a body shorter than declared (the client left, or was dropped at its
    deadline) is journaled as dropped and never executed.
    """

    protocol_version = "HTTP/1.1"
    # A request line too broken to parse is still answered with a status line (the stdlib default,
    # HTTP/0.9, sends a bare body) and an httpsd-style page rather than Python's.
    default_request_version = "HTTP/1.0"
    error_content_type = "text/html; charset=iso-8859-1"
    error_message_format = (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>%(code)d %(message)s</title>'
        "</head><body><h1>%(message)s</h1><p>%(explain)s</p></body></html>"
    )
    timeout = None  # the listener's deadlines bound reading and writing; see Listener.arm
    # The handler runs on a per-connection stand-in for Werkzeug's server (it has what the handler
    # reads, and the listener) and reads and writes through _Input and _Output, which wrap the socket;
    # none is the class typeshed declares, hence the ignores.
    server: ConnectionServer  # type: ignore[assignment]
    rfile: _Input  # type: ignore[assignment]
    wfile: _Output  # type: ignore[assignment]
    #: The environ of a request the plan stalls (fault ``stall-response``): read whole, not answered.
    held: dict | None = None
    #: A request the app answers late (it set ``environ[ANSWER_AFTER]``, a slow endpoint): its answer,
    #: made at once, and how many seconds the listener holds it before sending it.
    held_answer: bytes | None = None
    held_seconds: float | None = None

    @classmethod
    def open(cls, sock: socket.socket, addr, server: ConnectionServer) -> Handler:
        """A handler for a connection whose TLS (if any) is established; it has read nothing yet."""
        handler = cls.__new__(cls)  # BaseRequestHandler.__init__ would serve the whole connection now
        handler.request, handler.client_address, handler.server = sock, addr, server
        handler.setup()
        return handler

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = _Input(self.connection)
        self.wfile = _Output(self.connection)

    def serve_one(self) -> bool:
        """Read and answer one request (or hold it: :attr:`held`); whether the connection stays open."""
        self.close_connection = True  # parse_request keeps an HTTP/1.1 connection open
        self.held = self.held_answer = self.held_seconds = None
        self.handle_one_request()
        return not self.close_connection

    @property
    def pending(self) -> bool:
        """Whether bytes of a next request were already received (buffered here or in TLS)."""
        pending = getattr(self.connection, "pending", None)
        return self.rfile.buffered > 0 or (pending is not None and pending() > 0)

    def answer_held(self) -> bool:
        """Answer the held request now (a scenario that answers late); whether the connection stays open."""
        environ, self.held = self.held, None
        prepared, self.held_answer, self.held_seconds = self.held_answer, None, None
        assert environ is not None
        try:
            self._answer(environ, prepared, may_hold=False)
        except OSError as exc:
            self.close_connection = True
            self.server.listener.dropped(self.connection, self.client_address, _reason(exc), self.command,
                                         self.path)
        return not self.close_connection

    def handle_one_request(self):
        listener = self.server.listener
        # None until a request line parses, as http.server itself sets it (typeshed says str).
        self.raw_requestline, self.command, self._expects_continue = b"", None, False  # type: ignore[assignment]
        listener.arm(self.connection)
        try:
            super().handle_one_request()
        except (IncompleteRequest, OSError) as exc:  # OSError: reset, broken pipe, TLS error, our deadline
            self.close_connection = True
            listener.dropped(self.connection, self.client_address, _reason(exc), self.command, self.path
                             if self.command else None)
        finally:
            listener.disarm(self.connection)

    def parse_request(self) -> bool:
        if not self.raw_requestline.endswith(b"\n"):  # http.server would run "GET /x" cut short as HTTP/0.9
            raise IncompleteRequest("the connection ended inside the request line")
        parsed = super().parse_request()
        if self.rfile.ended:  # http.client took end of file for the end of the headers
            raise IncompleteRequest("the connection ended inside the headers")
        return parsed

    def handle_expect_100(self) -> bool:
        # http.server would send "100 Continue" here, for bodies we then refuse unread too; it is sent
        # once, by _buffer_body, just before a body is read.
        self._expects_continue = True
        return True

    def make_environ(self):
        environ = super().make_environ()
        environ["mockfgt.tls"] = self.server.tls_info
        self._unread_body = not self._buffer_body(environ)
        if self._unread_body:
            self.close_connection = True  # the unread rest of the body would be taken for a request
        # The request is in; answering may be held (stalls). A request whose deadline passed while
        # its last bytes came in was already journaled as dropped and its connection shut: not run.
        if not self.server.listener.disarm(self.connection):
            raise IncompleteRequest("dropped at the deadline")
        return environ

    def _buffer_body(self, environ) -> bool:
        """Read the body into memory; False when it is too large to read; IncompleteRequest when it
        does not arrive whole.

        A refused body is replaced by an empty stream whose declared length is over the limit, so
        the app (and the journal) refuse it by its length alone and nothing reads on.
        """
        length = int(environ.get("CONTENT_LENGTH") or 0)  # digits only: _framing_error came first
        chunked = bool(environ.pop("wsgi.input_terminated", False))  # our reader, not Werkzeug's
        if length > MAX_BODY:
            return Handler._refuse_body(environ, length)
        if self._expects_continue and (length or chunked):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:  # read until the last chunk, or the limit
            body = _read_chunked(self.rfile)
            if len(body) > MAX_BODY:
                # Declared from here on by a length over the limit (apps cannot refuse a chunked
                # body by its length); the journal still shows how it came.
                environ["mockfgt.transfer_encoding"] = environ.pop("HTTP_TRANSFER_ENCODING", "")
                return Handler._refuse_body(environ, len(body))
        else:
            body = self.rfile.read(length) if length > 0 else b""
            if len(body) < length:
                raise IncompleteRequest(f"the connection ended after {len(body)} of {length} body bytes")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body)) if body or length else environ.get("CONTENT_LENGTH", "")
        environ["wsgi.input_terminated"] = False
        return True

    @staticmethod
    def _refuse_body(environ, length: int) -> bool:
        environ["wsgi.input"] = io.BytesIO(b"")
        environ["CONTENT_LENGTH"] = str(length)
        environ["wsgi.input_terminated"] = False
        return False

    def run_wsgi(self) -> None:
        problem = _framing_error(self.headers)
        if problem is not None:  # answered before any body is read, then closed: its end is unknown
            self.close_connection = True
            self.send_error(400, "Bad Request", problem)
            self.server.listener.disarm(self.connection)
            lingering_close(self.connection)
            return
        try:
            environ = self.make_environ()
        except MalformedBody as exc:  # answered as httpsd answers a broken request: 400, then close
            self.close_connection = True
            self.send_error(400, "Bad Request", str(exc))
            return
        if self.server.plan.fault == "stall-response":
            self.held = environ  # the listener holds the connection: see Listener._hold
            return
        self._answer(environ)

    def _answer(self, environ, prepared: bytes | None = None, *, may_hold: bool = True) -> None:
        """Run the app and send its answer, or send ``prepared``; an answer the app asks to be late is
        kept in :attr:`held_answer` for the listener to send (or drop, if the client leaves first)."""
        data = self._prepare(environ) if prepared is None else prepared
        delay = environ.get(ANSWER_AFTER)
        if may_hold and isinstance(delay, (int, float)) and delay > 0:
            self.held, self.held_answer, self.held_seconds = environ, data, float(delay)
            return
        # A client that stops reading must not hold this thread and its descriptor for ever.
        self.server.listener.arm(self.connection, answering=True)
        self.wfile.write(data)
        self.wfile.flush()
        self.server.listener.disarm(self.connection)
        if self._unread_body:
            self._drain()

    def _prepare(self, environ) -> bytes:
        """The app's answer as it goes on the wire: status line, headers and (but for HEAD) body."""
        status, headers, body = self._call_app(environ)
        code, _, reason = status.partition(" ")
        reason = _REASONS.get(code, reason)  # httpsd says "Not Found"; Werkzeug would say "NOT FOUND"
        names = {name.lower() for name, _ in headers}
        if "content-length" not in names:
            headers.append(("Content-Length", str(len(body))))
        if self.close_connection:
            headers.append(("Connection", "close"))
        lines = [f"{self.protocol_version} {code} {reason}",
                 f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if environ["REQUEST_METHOD"] == "HEAD" else head + body

    def _drain(self, limit: int = 4 * MAX_BODY) -> None:
        """Swallow what is left of a refused body, so the client reads our answer, not a reset.

        As Apache's lingering close, a pause of up to ``LINGER_SECONDS`` does not end the draining:
        a client uploading from a busy machine or over a slow link pauses for far longer than a few
        milliseconds, and closing on it with its bytes unread resets the connection under its answer.
        """
        self.server.listener.arm(self.connection)  # a client that keeps sending is still bounded
        self.connection.settimeout(LINGER_SECONDS)
        received = 0
        try:
            while received < limit:
                data = self.connection.recv(1 << 20)
                if not data:
                    break
                received += len(data)
        except OSError:  # quiet for a moment (socket.timeout), or gone
            pass

    def _call_app(self, environ) -> tuple[str, list, bytes]:
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, list(headers)
            return answer.setdefault("written", []).append  # the legacy write() callable

        try:
            iterable = self.server.app(environ, start_response)
            try:
                chunks = [*answer.get("written", []), *iterable]
            finally:
                if hasattr(iterable, "close"):
                    iterable.close()
            return answer["status"], answer["headers"], b"".join(chunks)
        except Exception:  # the device's apps answer errors themselves; this is the last resort
            log.exception("unhandled error for %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            self.close_connection = True
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"Internal Server Error"

    def version_string(self) -> str:
        return self.server._server_version  # the device's Server header, without "Python/3.x"

    def log_request(self, code="-", size="-"):
        pass

    def log(self, type, message, *args):
        # "Bad request syntax ('GET /?access_token=...')": a refused request line can carry a key.
        args = tuple(redact_text(a) if isinstance(a, str) else a for a in args)
        log.debug("%s " + message, self.address_string(), *args)


class ConnectionServer:
    """The attributes ``WSGIRequestHandler`` reads from its server, for one connection."""

    multithread, multiprocess, passthrough_errors = True, False, False

    def __init__(self, listener: Listener, plan: ConnectionPlan, tls_info: dict | None) -> None:
        self.listener = listener
        self.app = listener.app
        self.server_address = listener.address
        self._server_version = listener.server_version
        self.plan = plan
        self.tls_info = tls_info
        # Werkzeug reads this to pick the URL scheme and to recognise TLS errors.
        self.ssl_context = plan.ssl_context if tls_info is not None else None

    def log(self, type, message, *args):
        log.debug(message, *args)


def lingering_close(conn: ssl.SSLSocket) -> None:
    """Half-close and drain what the client still sends, as Apache's lingering close does.

    A TLS 1.3 client sends its request right after its Finished; if the server refused the handshake
    (a missing client certificate) and closed at once, that unread request would make the kernel
    answer with a RST, and the client would see a reset instead of the alert.
    """
    deadline = time.monotonic() + LINGER_SECONDS  # in all: a trickling client cannot keep us here
    try:
        conn.shutdown(socket.SHUT_WR)  # the alert is out; now FIN
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if not conn.recv(4096):
                return
    except OSError:
        pass  # the client left, or the time is up: nothing more to protect


def alert(error: str) -> str | None:
    """The alert in an OpenSSL reason: 'tlsv1 alert unknown ca' -> 'unknown ca'."""
    return error.split("alert ", 1)[1].strip() if "alert " in error else None


def tls_failure(exc: BaseException) -> str:
    """A short reason for a failed handshake, such as the alert the client sent."""
    reason = getattr(exc, "reason", None)
    return (reason or str(exc) or type(exc).__name__).lower().replace("_", " ")
