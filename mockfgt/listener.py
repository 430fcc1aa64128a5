"""The socket side of a mock device: one port, our own accept loop, TLS applied per connection.

Werkzeug's server wraps the listening socket in TLS once and polls for shutdown every 0.5 s. A mock
that swaps certificates and injects faults per connection needs neither, so the listener here keeps
the accept loop, the connection faults and the TLS handshake, and hands each finished handshake to
Werkzeug's ``WSGIRequestHandler`` for the HTTP part.

What the listener does with a connection is decided by the current :class:`ConnectionPlan`, which the
device replaces atomically on a scenario swap; the socket itself stays.
"""

from __future__ import annotations

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

log = logging.getLogger("mockfgt")

#: Connection faults a scenario's ``connection.fault`` may name.
CONNECTION_FAULTS = {
    "none": "answer normally",
    "refuse": "nothing listens on the port: connections are refused",
    "reset": "accept TCP, then reset it (RST) before any byte",
    "stall-handshake": "accept TCP, never send a ServerHello",
    "stall-response": "complete TLS and read the request, answer only after stall_seconds",
    "plaintext": "speak plain HTTP on the HTTPS port",
}

HANDSHAKE_TIMEOUT = 10.0  # a client that opens TCP and never finishes the handshake is dropped
IDLE_TIMEOUT = 30.0  # keep-alive connections idle for longer are closed
LINGER_SECONDS = 2.0  # after a refused handshake, how long to drain the client before closing (Apache: 2 s)


@dataclass(frozen=True)
class ConnectionPlan:
    """How the listener treats new connections; replaced as a whole, never mutated."""

    ssl_context: ssl.SSLContext | None
    fault: str = "none"
    stall_seconds: float = 60.0
    #: Set when this plan is replaced or the device stops: ends every stall that belongs to it.
    ended: threading.Event = field(default_factory=threading.Event, compare=False)


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler with keep-alive, quiet logs and the connection's plan in the environ."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def make_environ(self):
        environ = super().make_environ()
        environ["mockfgt.plan"] = self.server.plan
        environ["mockfgt.tls"] = self.server.tls_info
        return environ

    def version_string(self) -> str:
        return self.server._server_version  # the device's Server header, without "Python/3.x"

    def log_request(self, code="-", size="-"):
        pass

    def log(self, type, message, *args):
        log.debug("%s " + message, self.address_string(), *args)


class _ConnectionServer:
    """The attributes ``WSGIRequestHandler`` reads from its server, for one connection."""

    multithread, multiprocess, passthrough_errors = True, False, False

    def __init__(self, listener: "Listener", plan: ConnectionPlan, tls_info: dict | None) -> None:
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
    ) -> None:
        self.app = app
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

    # -- accept loop --------------------------------------------------------------------------
    def _bind(self, sockaddr) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            # Lets the refusing socket bind the port while the listening one still holds it (see below).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if self._family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        return sock

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _apply_listening_state(self, selector: selectors.BaseSelector) -> None:
        refuse = self._plan.fault == "refuse"
        if refuse and self._listening:
            # A bound socket that does not listen makes the kernel refuse connections with a RST. It is
            # bound before the listening socket closes: a port free for a moment can become the source
            # port of some client's outgoing connection, and then the device could never listen again.
            held = self._bind(self.address)
            selector.unregister(self._sock)
            self._sock.close()
            self._sock = held
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
                for key, _ in selector.select():
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
        with self._conn_lock:
            self._connections.add(conn)
        try:
            self._handle(conn, addr, plan)
        except Exception:  # the listener outlives every client, however it misbehaves
            log.exception("connection from %s failed", addr[0])
        finally:
            with self._conn_lock:
                self._connections.discard(conn)
            conn.close()

    def _handle(self, conn: socket.socket, addr, plan: ConnectionPlan) -> None:
        client = {"client": addr[0], "client_port": addr[1]}
        if plan.fault == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._journal({**client, "event": "reset"})
            return
        if plan.fault == "stall-handshake":
            self._journal({**client, "event": "stall-handshake"})
            self._drain_until_closed(conn, plan)
            return
        if plan.fault == "plaintext":
            self._serve_http(conn, addr, plan, None)
            return
        conn.settimeout(HANDSHAKE_TIMEOUT)
        # wrap_socket detaches ``conn``: from here on only tls_conn owns the descriptor, so it is the
        # one to close, or the client never sees the end of a ``Connection: close`` answer.
        tls_conn = plan.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self._conn_lock:
            self._connections.add(tls_conn)
        try:
            try:
                tls_conn.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self._journal({**client, "event": "tls-failed", "error": _tls_failure(exc)})
                _lingering_close(tls_conn)
                return
            self._serve_http(tls_conn, addr, plan, _tls_summary(tls_conn))
            _close_notify(tls_conn)
        finally:
            with self._conn_lock:
                self._connections.discard(tls_conn)
            tls_conn.close()

    def _serve_http(self, conn: socket.socket, addr, plan: ConnectionPlan, tls_info: dict | None) -> None:
        conn.settimeout(IDLE_TIMEOUT)
        _Handler(conn, addr, _ConnectionServer(self, plan, tls_info))

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
    try:
        conn.shutdown(socket.SHUT_WR)  # the alert is out; now FIN
        conn.settimeout(LINGER_SECONDS)
        while conn.recv(4096):
            pass
    except OSError:
        pass  # the client left: nothing more to protect


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
        "client_certificate": conn.getpeercert(binary_form=True) is not None,
    }


def _tls_failure(exc: BaseException) -> str:
    """A short reason for a failed handshake, such as the alert the client sent."""
    reason = getattr(exc, "reason", None)
    return (reason or str(exc) or type(exc).__name__).lower().replace("_", " ")
