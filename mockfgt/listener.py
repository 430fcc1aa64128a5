"""The socket side of a mock device: one port, our own accept loop, TLS applied per connection.

Werkzeug's server wraps the listening socket in TLS once and polls for shutdown every 0.5 s. A mock
that swaps certificates and injects faults per connection needs neither, so the listener here keeps
the accept loop, the connection faults and the TLS handshake, and hands each finished handshake to
Werkzeug's ``WSGIRequestHandler`` for the HTTP part.

What the listener does with a connection is decided by the current :class:`ConnectionPlan`, which the
device replaces atomically on a scenario swap; the socket itself stays.
"""

from __future__ import annotations

import errno
import http
import io
import logging
import re
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.serving import WSGIRequestHandler

from .bodies import MAX_BODY
from .journal import redact_text
from .tls import SNI_ATTRIBUTE

log = logging.getLogger("mockfgt")

_REASONS = {str(status.value): status.phrase for status in http.HTTPStatus}

#: Connection faults a scenario's ``connection.fault`` may name.
CONNECTION_FAULTS = {
    "none": "answer normally",
    "refuse": "nothing listens on the port: connections are refused",
    "reset": "accept TCP, then reset it (RST) before any byte",
    "stall-handshake": "accept TCP, never send a ServerHello",
    "stall-response": "complete TLS and read the request, answer only after stall_seconds",
    "plaintext": "speak plain HTTP on the HTTPS port",
}

#: A client has this long to finish the TLS handshake, and then each request (line, headers, body),
#: however slowly it trickles bytes; an idle keep-alive connection is closed after it too.
REQUEST_TIMEOUT = 10.0
#: Apache's lingering close (2 s): after a refused handshake, how long in all to drain the client before
#: closing; while swallowing a refused body, the longest pause that does not end it.
LINGER_SECONDS = 2.0
#: After accept() failed for want of descriptors, threads or memory: how long before trying again.
ACCEPT_BACKOFF = 0.1
_SHORTAGES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass(frozen=True)
class ConnectionPlan:
    """How the listener treats new connections; replaced as a whole, never mutated."""

    ssl_context: ssl.SSLContext | None
    fault: str = "none"
    stall_seconds: float = 60.0
    #: Set when this plan is replaced or the device stops: ends every stall that belongs to it.
    ended: threading.Event = field(default_factory=threading.Event, compare=False)


class MalformedBody(Exception):
    """A chunked body whose framing is broken: the request cannot be read, so it is answered 400."""


class IncompleteRequest(Exception):
    """The connection ended (the client left, or was dropped at its deadline) before the request was whole."""


class _Input:
    """The connection's input, noting when a read met the end of the connection.

    http.client ends a header block at end of file as at a blank line, http.server runs a request line
    that lacks its CRLF, and a body read stops short at end of file: each hands on a request the
    client never finished. A read that ends short marks the request as incomplete instead.
    """

    def __init__(self, stream) -> None:
        self._stream = stream
        self.ended = False

    def readline(self, size: int = -1) -> bytes:
        line = self._stream.readline(size)
        if not line.endswith(b"\n") and (size is None or size < 0 or len(line) < size):
            self.ended = True
        return line

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if size is None or size < 0 or len(data) < size:
            self.ended = True
        return data

    def __getattr__(self, name):
        return getattr(self._stream, name)


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
        return f"TLS error: {_tls_failure(exc)}"
    return f"connection error: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


class _Handler(WSGIRequestHandler):
    """Werkzeug's request parsing with our own response writing, so connections are kept alive.

    Werkzeug's server closes every connection after one response (it cannot drain a request body it
    did not read). Devices keep HTTPS connections alive, and clients with sessions rely on it, so this
    handler reads each request body whole before the app runs (bounded by ``MAX_BODY``) and sends each
    answer in one write with its length: the next request line is then always where it belongs.

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
    # reads, and the listener) and reads through _Input, which wraps the socket file; neither is the
    # class typeshed declares, hence the two ignores.
    server: _ConnectionServer  # type: ignore[assignment]
    rfile: _Input  # type: ignore[assignment]

    def setup(self) -> None:
        super().setup()
        self.rfile = _Input(self.rfile)

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
        environ["mockfgt.plan"] = self.server.plan
        environ["mockfgt.tls"] = self.server.tls_info
        self._unread_body = not self._buffer_body(environ)
        if self._unread_body:
            self.close_connection = True  # the unread rest of the body would be taken for a request
        # The request is in; answering may take long (stalls). A request whose deadline passed while
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
            return _Handler._refuse_body(environ, length)
        if self._expects_continue and (length or chunked):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:  # read until the last chunk, or the limit
            body = _read_chunked(self.rfile)
            if len(body) > MAX_BODY:
                # Declared from here on by a length over the limit (apps cannot refuse a chunked
                # body by its length); the journal still shows how it came.
                environ["mockfgt.transfer_encoding"] = environ.pop("HTTP_TRANSFER_ENCODING", "")
                return _Handler._refuse_body(environ, len(body))
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
            _lingering_close(self.connection)
            return
        try:
            environ = self.make_environ()
        except MalformedBody as exc:  # answered as httpsd answers a broken request: 400, then close
            self.close_connection = True
            self.send_error(400, "Bad Request", str(exc))
            return
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
        # A client that stops reading must not hold this thread and its descriptor for ever.
        self.server.listener.arm(self.connection, answering=True)
        self.wfile.write(head if environ["REQUEST_METHOD"] == "HEAD" else head + body)
        self.wfile.flush()
        self.server.listener.disarm(self.connection)
        if self._unread_body:
            self._drain()

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


class _ConnectionServer:
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


class Listener:
    """Serves a WSGI app on one port with per-connection TLS and faults.

    ``journal`` (if given) is called with a dict for every connection outcome that never reaches the
    app: resets, stalls, failed handshakes, requests that never arrived whole, answers never taken.
    What clients do (reset, leave mid-handshake or mid-request, stop reading) is journaled, never
    logged as an error: only a fault of mockfgt itself is. ``on_accept`` (if given) is called for every
    accepted connection before its plan is read, so it may change the plan that connection gets.
    """

    def __init__(
        self,
        app: Callable,
        plan: ConnectionPlan,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_version: str = "xxxxxxxx-xxxxx",
        journal: Callable[[dict], object] | None = None,  # what it returns is ignored
        request_timeout: float = REQUEST_TIMEOUT,
        on_accept: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        self._on_accept = on_accept
        self.request_timeout = request_timeout
        self.server_version = server_version
        self._plan = plan
        self._journal = journal or (lambda event: None)
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self._family = family
        self._sock = self._bind(sockaddr)
        self.address = self._sock.getsockname()[:2]
        self._listening = False
        self._listen_lock = threading.Lock()  # listen/unlisten, from start() and set_plan()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        # Connections that must finish what they send (or take our answer) by then, and why they are dropped.
        self._deadlines: dict[socket.socket, tuple[float, str]] = {}
        self._expired: set[socket.socket] = set()  # dropped at their deadline (and journaled so)
        self._conn_lock = threading.Lock()
        self._accept_again_at = 0.0  # after EMFILE and the like: accept() waits until then
        self._starved_before = False  # the first shortage is logged as a warning, later ones at debug

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def plan(self) -> ConnectionPlan:
        return self._plan

    def start(self) -> None:
        with self._listen_lock:
            if self._plan.fault != "refuse":
                self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name=f"mockfgt-accept-{self.port}", daemon=True)
        self._thread.start()

    def begin_stop(self) -> None:
        """Wake the accept loop to stop, without waiting: many listeners stopping wind down together."""
        self._stopping = True
        self._plan.ended.set()
        self._wake()

    def stop(self) -> None:
        """Stop at once: wake the accept loop, close the port, drop live connections and stalls."""
        self.begin_stop()
        if self._thread is not None:
            self._thread.join()
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()
        with self._conn_lock:
            live = list(self._connections)
        for conn in live:
            _cut(conn)

    def set_plan(self, plan: ConnectionPlan) -> None:
        """Replace how new connections are treated; stalls of the old plan end now.

        OSError if the port cannot be listened on again: the device then refuses connections rather
        than report a plan it does not serve.
        """
        old, self._plan = self._plan, plan
        old.ended.set()
        if self._thread is None or self._stopping:
            return  # start() listens as the plan says
        with self._listen_lock:
            refuse = plan.fault == "refuse"
            if refuse and self._listening:
                # A bound socket that does not listen makes the kernel refuse connections with a RST.
                # shutdown() leaves LISTEN but keeps the port bound (see _bind): were it free for a
                # moment, another process, or some client's source port, could take it for good.
                self._listening = False
                self._sock.shutdown(socket.SHUT_RDWR)
            elif not refuse and not self._listening:
                self._listen()
            else:
                return
        self._wake()  # the accept loop watches the port only while it listens

    def arm(self, sock: socket.socket, *, answering: bool = False) -> None:
        """Drop ``sock`` unless it finishes what it is sending (or, ``answering``, takes our answer)
        within ``request_timeout``."""
        reason = (f"answer not taken within {self.request_timeout:g} s" if answering
                  else f"nothing complete within {self.request_timeout:g} s")
        with self._conn_lock:
            was_idle = not self._deadlines
            self._deadlines[sock] = (time.monotonic() + self.request_timeout, reason)
        if was_idle:
            self._wake()  # the accept loop sleeps without a timeout while nothing is armed

    def disarm(self, sock: socket.socket) -> bool:
        """Lift ``sock``'s deadline; False if it had already passed (the connection is being dropped)."""
        with self._conn_lock:
            self._deadlines.pop(sock, None)
            return sock not in self._expired

    def dropped(self, sock: socket.socket, addr, reason: str, method: str | None = None,
                target: str | None = None) -> None:
        """Journal a connection that ended before a request arrived whole or its answer was taken,
        unless its deadline did it (and journaled it) already."""
        with self._conn_lock:
            if sock in self._expired:
                return
        event = {"client": addr[0], "client_port": addr[1], "event": "dropped", "reason": reason}
        if method:  # the path without its query, which may hold an access_token
            event.update(method=method, path=(target or "").split("?", 1)[0])
        self._journal(event)

    def _drop_late_connections(self) -> float | None:
        """Shut connections past their deadline; return seconds until the next deadline (None: none)."""
        now = time.monotonic()
        with self._conn_lock:
            late = [(sock, reason) for sock, (deadline, reason) in self._deadlines.items() if deadline <= now]
            for sock, _ in late:
                del self._deadlines[sock]
                self._expired.add(sock)
            upcoming = min((deadline for deadline, _ in self._deadlines.values()), default=None)
        for sock, reason in late:
            try:
                client, port = sock.getpeername()[:2]
            except OSError:  # already gone: it ends on its own thread
                client, port = None, None
            self._journal({"client": client, "client_port": port, "event": "dropped", "reason": reason})
            _cut(sock)  # the connection's thread sees end of file (or a broken pipe) and closes it
        return None if upcoming is None else max(upcoming - now, 0.0)

    # -- accept loop --------------------------------------------------------------------------
    def _bind(self, sockaddr) -> socket.socket:
        """Bind to the port by number, even an ephemeral one, so that it stays ours while refusing.

        Linux keeps a socket bound by explicit port number bound after shutdown() takes it out of
        LISTEN; one bound to port 0 loses the port. So an ephemeral port is found first and then
        bound again by number (both sockets use SO_REUSEADDR and neither listens yet).

        SO_REUSEADDR is on only while binding and listening (TIME_WAIT connections of an earlier run
        or of earlier clients share the port): left on, Linux lets any other SO_REUSEADDR socket (a
        second ``mockfgt serve``) bind the port whenever ours does not listen, that is while the
        device refuses, and that process would then get the device's clients.
        """
        sock = self._new_socket()
        sock.bind(sockaddr)
        if sockaddr[1] == 0:
            explicit = self._new_socket()
            explicit.bind((sockaddr[0], sock.getsockname()[1], *sockaddr[2:]))
            sock.close()
            sock = explicit
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        return sock

    def _listen(self) -> None:
        """Listen on the bound port (``_listen_lock`` held).

        listen() checks the port's TIME_WAIT connections again and passes only with SO_REUSEADDR on
        both sides (accepted connections get it too); no other socket can bind meanwhile, since ours
        is already bound without it.
        """
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.listen(128)
        finally:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        self._listening = True

    def _new_socket(self) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return sock

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _accept_loop(self) -> None:
        watching = False  # whether the selector watches the port
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                pause = self._accept_again_at - time.monotonic()
                wanted = self._listening and pause <= 0
                if wanted != watching:
                    if wanted:
                        selector.register(self._sock, selectors.EVENT_READ)
                    else:
                        selector.unregister(self._sock)
                    watching = wanted
                timeout = self._drop_late_connections()
                if self._listening and pause > 0:
                    timeout = pause if timeout is None else min(timeout, pause)
                for key, _ in selector.select(timeout):
                    if key.fileobj is self._wake_r:
                        self._wake_r.recv(64)
                    elif not self._stopping:
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            conn, addr = self._sock.accept()
        except OSError as exc:
            if exc.errno in _SHORTAGES:
                self._starved(exc)
            # Otherwise: the client left before we took it (ECONNABORTED), or the port stopped
            # listening under us (EINVAL): nothing to do.
            return
        try:
            # Headers and body leave in separate writes; without this, delayed ACKs add 40 ms a request.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Its TIME_WAIT must not keep our listen() off the port after a refuse (see _listen).
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except OSError:
            pass  # reset already: the handshake finds out and journals it
        if self._on_accept is not None:
            try:
                self._on_accept()
            except Exception:  # the listener outlives a failing hook too
                log.exception("on_accept failed")
        try:
            threading.Thread(
                target=self._serve_connection, args=(conn, addr, self._plan), name="mockfgt-conn", daemon=True
            ).start()
        except RuntimeError as exc:  # "can't start new thread": as short of resources as EMFILE
            conn.close()
            self._starved(exc)

    def _starved(self, exc: BaseException) -> None:
        """Out of descriptors (or threads, or memory): stop accepting for a moment instead of spinning.

        The pending connection stays in the backlog and is accepted once something is freed; its
        client waits, as with a busy server, rather than being refused.
        """
        self._accept_again_at = time.monotonic() + ACCEPT_BACKOFF
        level = logging.DEBUG if self._starved_before else logging.WARNING
        self._starved_before = True
        log.log(level, "port %d: cannot take new connections (%s); retrying every %g s, further shortages "
                "are logged at DEBUG", self.port, getattr(exc, "strerror", None) or exc, ACCEPT_BACKOFF)

    # -- one connection -----------------------------------------------------------------------
    def _serve_connection(self, conn: socket.socket, addr, plan: ConnectionPlan) -> None:
        live = [conn]  # the socket in use: the TLS socket replaces the raw one after wrapping
        with self._conn_lock:
            self._connections.add(conn)
        try:
            self._handle(conn, addr, plan, live)
        except Exception:  # the listener outlives every client, however it misbehaves
            log.exception("connection from %s failed", addr[0])
        finally:
            with self._conn_lock:
                self._connections.difference_update((conn, live[0]))
                self._deadlines.pop(live[0], None)
                self._expired.discard(live[0])
            live[0].close()

    def _handle(self, conn: socket.socket, addr, plan: ConnectionPlan, live: list) -> None:
        client = {"client": addr[0], "client_port": addr[1]}
        # A connection accepted as the port stopped listening ("refuse", e.g. on_accept moved the device
        # to a phase that refuses) is reset, as the kernel resets those still in the backlog.
        if plan.fault in ("reset", "refuse"):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._journal({**client, "event": "reset"})
            return
        if plan.fault == "stall-handshake":
            self._journal({**client, "event": "stall-handshake"})
            self._drain_until_closed(conn, plan)
            return
        tls_info = None
        if plan.fault != "plaintext":
            try:
                # Wrapping a socket whose client already reset it fails after the raw socket was
                # detached, leaving its descriptor to the garbage collector: see it first.
                conn.getpeername()
            except OSError:
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": None, "error": "connection reset by peer", "alert": None}})
                return
            conn.settimeout(self.request_timeout + 1)  # a backstop: the deadline below drops it first
            assert plan.ssl_context is not None  # a plan has a context unless its fault is plaintext
            try:
                tls_conn = plan.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            except OSError as exc:  # reset between the look above and the wrapping
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": None, "error": _tls_failure(exc), "alert": None}})
                return
            live[0] = tls_conn  # wrapping detached the raw socket: closing must go through this one
            with self._conn_lock:
                self._connections.discard(conn)
                self._connections.add(tls_conn)
            self.arm(tls_conn)
            try:
                tls_conn.do_handshake()
                if not self.disarm(tls_conn):
                    raise ConnectionAbortedError("dropped at the deadline")
                tls_info = _tls_summary(tls_conn)
            except (ssl.SSLError, OSError) as exc:
                self.disarm(tls_conn)
                error = _tls_failure(exc)
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": getattr(tls_conn, SNI_ATTRIBUTE, None), "error": error,
                                       "alert": _alert(error)}})
                _lingering_close(tls_conn)
                return
            conn = tls_conn
        conn.settimeout(None)  # deadlines bound the reading and writing from here on
        _Handler(conn, addr, _ConnectionServer(self, plan, tls_info))  # type: ignore[arg-type]  # see _Handler.server
        if tls_info is not None:
            _close_notify(tls_conn)

    def _drain_until_closed(self, conn: socket.socket, plan: ConnectionPlan) -> None:
        """Read and drop whatever the client sends until it leaves or the stall ends."""
        conn.settimeout(0.05)
        deadline = time.monotonic() + plan.stall_seconds
        while not plan.ended.is_set() and time.monotonic() < deadline:
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


def _cut(sock: socket.socket) -> None:
    """Shut a connection from another thread than its own: its blocked read or write returns.

    socket.socket's own shutdown, not SSLSocket's: that one also drops the TLS object under the
    connection's thread (then ``'NoneType' object has no attribute 'getpeercert'``).
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _lingering_close(conn: ssl.SSLSocket) -> None:
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


def _close_notify(conn: ssl.SSLSocket) -> None:
    """Send TLS close_notify without waiting for the client's, as a web server does on close."""
    try:
        conn.settimeout(0)
        conn.unwrap()
    except (ssl.SSLError, OSError, ValueError):
        pass  # the client left first, or will answer after we are gone: either way we are done


def _tls_summary(conn: ssl.SSLSocket) -> dict:
    cipher = conn.cipher()
    return {
        "version": conn.version(),
        "cipher": cipher[0] if cipher else None,
        "sni": getattr(conn, SNI_ATTRIBUTE, None),
        "client_certificate": conn.getpeercert(binary_form=True) is not None,
    }


def _alert(error: str) -> str | None:
    """The alert in an OpenSSL reason: 'tlsv1 alert unknown ca' -> 'unknown ca'."""
    return error.split("alert ", 1)[1].strip() if "alert " in error else None


def _tls_failure(exc: BaseException) -> str:
    """A short reason for a failed handshake, such as the alert the client sent."""
    reason = getattr(exc, "reason", None)
    return (reason or str(exc) or type(exc).__name__).lower().replace("_", " ")
