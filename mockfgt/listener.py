"""The socket side of a mock device: one port, our own accept loop, TLS applied per connection.

Werkzeug's server wraps the listening socket in TLS once and polls for shutdown every 0.5 s. A mock
that swaps certificates and injects faults per connection needs neither, so the listener here keeps
the accept loop, the connection faults and the TLS handshake, and hands each finished handshake to
Werkzeug's ``WSGIRequestHandler`` for the HTTP part.

What the listener does with a connection is decided by the current :class:`ConnectionPlan`, which the
device replaces atomically on a scenario swap; the socket itself stays.
"""

from __future__ import annotations

import http
import io
import logging
import selectors
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

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


def _read_chunked(stream) -> bytes:
    """Up to ``MAX_BODY + 1`` bytes of a chunked body; MalformedBody for a chunk header that is not hex."""
    try:
        return stream.read(MAX_BODY + 1)
    except (ConnectionError, TimeoutError, ssl.SSLError):
        raise  # the client went away or was dropped: nothing to answer
    except (OSError, ValueError) as exc:  # Werkzeug's "Invalid chunk header", "Negative chunk length"
        raise MalformedBody(f"Bad chunked body: {exc}") from None


class _Handler(WSGIRequestHandler):
    """Werkzeug's request parsing with our own response writing, so connections are kept alive.

    Werkzeug's server closes every connection after one response (it cannot drain a request body it
    did not read). Devices keep HTTPS connections alive, and clients with sessions rely on it, so this
    handler reads each request body whole before the app runs (bounded by ``MAX_BODY``) and sends each
    answer in one write with its length: the next request line is then always where it belongs.
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
    timeout = None  # the listener's deadlines bound reading; see Listener.arm

    def handle_one_request(self):
        self.server.listener.arm(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.listener.disarm(self.connection)

    def make_environ(self):
        environ = super().make_environ()
        environ["mockfgt.plan"] = self.server.plan
        environ["mockfgt.tls"] = self.server.tls_info
        self._unread_body = not self._buffer_body(environ)
        if self._unread_body:
            self.close_connection = True  # the unread rest of the body would be taken for a request
        self.server.listener.disarm(self.connection)  # the request is in; answering may take long (stalls)
        return environ

    @staticmethod
    def _buffer_body(environ) -> bool:
        """Read the body into memory; False when it is too large to read.

        A refused body is replaced by an empty stream whose declared length is over the limit, so
        the app (and the journal) refuse it by its length alone and nothing reads on.
        """
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        if length > MAX_BODY:
            return _Handler._refuse_body(environ, length)
        if environ.get("wsgi.input_terminated"):  # chunked: read until the last chunk, or the limit
            body = _read_chunked(environ["wsgi.input"])
            if len(body) > MAX_BODY:
                # Declared from here on by a length over the limit (apps cannot refuse a chunked
                # body by its length); the journal still shows how it came.
                environ["mockfgt.transfer_encoding"] = environ.pop("HTTP_TRANSFER_ENCODING", "")
                return _Handler._refuse_body(environ, len(body))
        else:
            body = environ["wsgi.input"].read(length) if length > 0 else b""
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
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
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
        self.wfile.write(head if environ["REQUEST_METHOD"] == "HEAD" else head + body)
        self.wfile.flush()
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

    def __init__(self, listener: "Listener", plan: ConnectionPlan, tls_info: dict | None) -> None:
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
    app: resets, stalls, failed handshakes.
    """

    def __init__(
        self,
        app: Callable,
        plan: ConnectionPlan,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_version: str = "xxxxxxxx-xxxxx",
        journal: Callable[[dict], None] | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.app = app
        self.request_timeout = request_timeout
        self.server_version = server_version
        self._plan = plan
        self._journal = journal or (lambda event: None)
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self._family = family
        self._sock = self._bind(sockaddr)
        self.address = self._sock.getsockname()[:2]
        self._listening = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._pending = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._deadlines: dict[socket.socket, float] = {}  # connections that must finish reading by then
        self._conn_lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def plan(self) -> ConnectionPlan:
        return self._plan

    def start(self) -> None:
        if self._plan.fault != "refuse":
            self._sock.listen(128)
            self._listening = True
        self._thread = threading.Thread(target=self._accept_loop, name=f"mockfgt-accept-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: wake the accept loop, close the port, drop live connections and stalls."""
        self._stopping = True
        self._plan.ended.set()
        self._wake()
        if self._thread is not None:
            self._thread.join()
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()
        with self._conn_lock:
            live = list(self._connections)
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_plan(self, plan: ConnectionPlan) -> None:
        """Replace how new connections are treated; stalls of the old plan end now."""
        old, self._plan = self._plan, plan
        old.ended.set()
        if self._thread is not None and (plan.fault == "refuse") == self._listening:
            # Listening state changes: the accept loop owns the socket, so it makes the change.
            self._pending.clear()
            self._wake()
            self._pending.wait(2.0)

    def arm(self, sock: socket.socket) -> None:
        """Drop ``sock`` unless it finishes what it is sending within ``request_timeout``."""
        with self._conn_lock:
            was_idle = not self._deadlines
            self._deadlines[sock] = time.monotonic() + self.request_timeout
        if was_idle:
            self._wake()  # the accept loop sleeps without a timeout while nothing is armed

    def disarm(self, sock: socket.socket) -> None:
        with self._conn_lock:
            self._deadlines.pop(sock, None)

    def _drop_late_connections(self) -> float | None:
        """Shut connections past their deadline; return seconds until the next deadline (None: none)."""
        now = time.monotonic()
        with self._conn_lock:
            late = [sock for sock, deadline in self._deadlines.items() if deadline <= now]
            for sock in late:
                del self._deadlines[sock]
            upcoming = min(self._deadlines.values(), default=None)
        for sock in late:
            try:
                self._journal({"client": sock.getpeername()[0], "client_port": sock.getpeername()[1],
                               "event": "dropped", "reason": f"nothing complete within {self.request_timeout:g} s"})
                sock.shutdown(socket.SHUT_RDWR)  # the connection's thread sees end of file and closes it
            except OSError:
                pass
        return None if upcoming is None else max(upcoming - now, 0.0)

    # -- accept loop --------------------------------------------------------------------------
    def _bind(self, sockaddr) -> socket.socket:
        """Bind to the port by number, even an ephemeral one, so that it stays ours while refusing.

        Linux keeps a socket bound by explicit port number bound after shutdown() takes it out of
        LISTEN; one bound to port 0 loses the port. So an ephemeral port is found first and then
        bound again by number (both sockets use SO_REUSEADDR and neither listens yet).
        """
        sock = self._new_socket()
        sock.bind(sockaddr)
        if sockaddr[1] == 0:
            explicit = self._new_socket()
            explicit.bind((sockaddr[0], sock.getsockname()[1], *sockaddr[2:]))
            sock.close()
            sock = explicit
        return sock

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

    def _apply_listening_state(self, selector: selectors.BaseSelector) -> None:
        refuse = self._plan.fault == "refuse"
        if refuse and self._listening:
            # A bound socket that does not listen makes the kernel refuse connections with a RST.
            # shutdown() leaves LISTEN but keeps the port bound: were it free for a moment, it could
            # become the source port of some client's connection and the device could never listen again.
            selector.unregister(self._sock)
            self._sock.shutdown(socket.SHUT_RDWR)
            self._listening = False
        elif not refuse and not self._listening:
            self._sock.listen(128)
            self._listening = True
            selector.register(self._sock, selectors.EVENT_READ)
        self._pending.set()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            if self._listening:
                selector.register(self._sock, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select(self._drop_late_connections()):
                    if key.fileobj is self._wake_r:
                        self._wake_r.recv(64)
                        if not self._stopping:
                            self._apply_listening_state(selector)
                    else:
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            conn, addr = self._sock.accept()
        except OSError:
            return
        # Headers and body leave in separate writes; without this, delayed ACKs add 40 ms a request.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(
            target=self._serve_connection, args=(conn, addr, self._plan), name="mockfgt-conn", daemon=True
        ).start()

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
            live[0].close()

    def _handle(self, conn: socket.socket, addr, plan: ConnectionPlan, live: list) -> None:
        client = {"client": addr[0], "client_port": addr[1]}
        if plan.fault == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._journal({**client, "event": "reset"})
            return
        if plan.fault == "stall-handshake":
            self._journal({**client, "event": "stall-handshake"})
            self._drain_until_closed(conn, plan)
            return
        tls_info = None
        if plan.fault != "plaintext":
            conn.settimeout(self.request_timeout + 1)  # a backstop: the deadline below drops it first
            tls_conn = plan.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            live[0] = tls_conn  # wrapping detached the raw socket: closing must go through this one
            with self._conn_lock:
                self._connections.discard(conn)
                self._connections.add(tls_conn)
            self.arm(tls_conn)
            try:
                tls_conn.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self.disarm(tls_conn)
                error = _tls_failure(exc)
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": getattr(tls_conn, SNI_ATTRIBUTE, None), "error": error,
                                       "alert": _alert(error)}})
                _lingering_close(tls_conn)
                return
            self.disarm(tls_conn)
            tls_info = _tls_summary(tls_conn)
            conn = tls_conn
        conn.settimeout(None)  # deadlines bound the reading from here on
        _Handler(conn, addr, _ConnectionServer(self, plan, tls_info))
        if tls_info is not None:
            _close_notify(conn)

    def _drain_until_closed(self, conn: socket.socket, plan: ConnectionPlan) -> None:
        """Read and drop whatever the client sends until it leaves or the stall ends."""
        conn.settimeout(0.05)
        deadline = time.monotonic() + plan.stall_seconds
        while not plan.ended.is_set() and time.monotonic() < deadline:
            try:
                if not conn.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return


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
