"""The socket side of a mock device: one port, connection faults and TLS applied per connection.

Werkzeug's server wraps the listening socket in TLS once, polls for shutdown every 0.5 s and spends a
thread per connection. A mock that swaps certificates and injects faults per connection needs none of
that, so a listener here binds its port, decides per connection what its current
:class:`ConnectionPlan` says (reset, stall, plaintext, TLS with the current context), journals the
outcome and hands each connection whose handshake finished to :class:`mockfgt.http11.Handler`.

Every listener of a process shares one accept loop (:mod:`mockfgt.acceptloop`): the loop accepts,
runs the deadlines and keeps idle and stalled connections; workers of its pool do the handshakes and
the requests. A connection is in one place at a time (``_Connection.where``): waiting for its first
byte, working (a worker has it), parked (an idle keep-alive connection), held (a stall) or closed.
Only the loop's thread moves a connection into or out of the selector.

A stall holds its connection until the client leaves, the plan is replaced (a scenario swap) or the
device stops: nothing ends it by a clock, as a silent device does not (reference H.7). A plan with
``stall_seconds`` instead goes on late: the handshake or the answer happens after that many seconds.
An app may also answer one request late (``environ["mockfgt.answer_after"]``, a slow endpoint): the
answer is made at once and sent after that many seconds, or never if the client leaves first.

:meth:`Listener.silence_kept` drops the connections open at that moment silently, as an HA failover
does to connections the new primary has no session for: they stay open, what comes on them is read
and ignored, nothing is answered, until the client leaves or the device stops. New connections get
the plan, as ever.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import acceptloop
from .ports import bind, close_notify, cut, has_data, listen, readable_within, tls_summary
from .tls import SNI_ATTRIBUTE

if TYPE_CHECKING:
    from .http11 import Handler

log = logging.getLogger("mockfgt")


#: A client has this long to finish the TLS handshake, and then each request (line, headers, body),
#: however slowly it trickles bytes; an idle keep-alive connection is closed after it too.
REQUEST_TIMEOUT = 10.0
#: After accept() failed for want of descriptors, threads or memory: how long before trying again.
ACCEPT_BACKOFF = 0.1
_SHORTAGES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: Connections accepted in one go before the loop turns to other ports.
_ACCEPTS_PER_WAKE = 64
#: How long a worker waits for a keep-alive connection's next request before parking it in the loop:
#: a client sending requests back to back then costs no round trip through the loop's thread.
KEEPALIVE_LINGER = 0.002
#: Reads of a held connection in one go (what a stalled client sends is read and dropped).
_READS_PER_WAKE = 16


@dataclass(frozen=True)
class ConnectionPlan:
    """How the listener treats new connections; replaced as a whole, never mutated."""

    ssl_context: ssl.SSLContext | None
    fault: str = "none"
    #: None: a stall holds until the client leaves (or the plan is replaced, or the device stops).
    #: A number: the device goes on after that many seconds (a late handshake, a late answer).
    stall_seconds: float | None = None


class _Connection:
    """One accepted connection: its socket (the TLS one once wrapped), its plan and where it is."""

    __slots__ = ("sock", "addr", "plan", "since", "handler", "where", "timer", "silenced")

    def __init__(self, sock: socket.socket, addr, plan: ConnectionPlan) -> None:
        self.sock = sock
        self.addr = addr
        self.plan = plan
        self.since = time.monotonic()  # the handshake's deadline counts from here
        self.handler: Handler | None = None
        self.where = "working"  # waiting, working, parked, held, closed
        self.timer: acceptloop.Timer | None = None  # a late plan's: when the device goes on
        self.silenced = False  # dropped by silence_kept(): never answered again


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
        self._sock = bind(family, sockaddr)
        self.address = self._sock.getsockname()[:2]
        self._listening = False
        self._listen_lock = threading.Lock()  # listen/unlisten, from start() and set_plan()
        self._loop: acceptloop.Loop | None = None  # from start() on
        self._stopping = False
        self._stopped = False
        self._detached = threading.Event()  # the loop no longer watches anything of ours
        self._watching = False  # whether the loop watches the port
        self._watch_lock = threading.Lock()  # _refresh runs on the caller's thread at start, else the loop's
        self._connections: set[_Connection] = set()
        # Sockets that must finish what they send (or take our answer) by then, and why they are dropped.
        self._deadlines: dict[socket.socket, tuple[acceptloop.Timer, str]] = {}
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

    @property
    def connection_count(self) -> int:
        """Connections open on this port now, whatever they do (stalled, idle, being answered)."""
        with self._conn_lock:
            return len(self._connections)

    def start(self) -> None:
        with self._listen_lock:
            if self._plan.fault != "refuse":
                self._listen()
        self._sock.setblocking(False)  # the loop accepts until accept() would block
        self._loop = acceptloop.acquire()
        self._refresh()

    def begin_stop(self) -> None:
        """Ask the loop to let go of the port and of idle and stalled connections, without waiting:
        many listeners stopping wind down together."""
        if self._stopping:
            return
        self._stopping = True
        if self._loop is None or not self._loop.call_soon(self._detach):
            self._detached.set()

    def stop(self) -> None:
        """Stop at once: close the port, drop live connections and stalls."""
        if self._stopped:
            return
        self._stopped = True
        self.begin_stop()
        loop = self._loop
        if loop is not None and threading.current_thread() is loop.thread:
            self._detach()
        self._detached.wait()
        self._sock.close()
        with self._conn_lock:
            working = [conn.sock for conn in self._connections]
        for sock in working:
            cut(sock)  # its worker sees end of file (or a broken pipe) and closes it
        if loop is not None:
            acceptloop.release()

    def set_plan(self, plan: ConnectionPlan) -> None:
        """Replace how new connections are treated; stalls of the old plan end now.

        OSError if the port cannot be listened on again: the device then refuses connections rather
        than report a plan it does not serve.
        """
        self._plan = plan
        if self._loop is None or self._stopping:
            return  # start() listens as the plan says
        try:
            with self._listen_lock:
                refuse = plan.fault == "refuse"
                if refuse and self._listening:
                    # A bound socket that does not listen makes the kernel refuse connections with a
                    # RST. shutdown() leaves LISTEN but keeps the port bound (see ports.bind): were it free
                    # for a moment, another process, or some client's source port, could take it.
                    self._listening = False
                    self._sock.shutdown(socket.SHUT_RDWR)
                elif not refuse and not self._listening:
                    self._listen()
        finally:
            self._loop.call_soon(self._replanned)

    def silence_kept(self) -> int:
        """Stop answering every connection open now, silently (an HA failover); returns how many.

        Each stays open and unanswered until its client leaves or the device stops, whatever plan
        comes next: it has no deadline any more, and a new plan does not release it as it releases a
        stall. One a worker is answering now gets that answer, then goes silent.
        """
        with self._conn_lock:
            kept = [conn for conn in self._connections if not conn.silenced]
            for conn in kept:
                conn.silenced = True
        if self._loop is not None and not self._stopping:
            self._loop.call_soon(self._silence_idle, kept)
        return len(kept)

    def close_idle(self, wait: float = 30.0) -> None:
        """Close the idle keep-alive connections now and return once they are closed (``wait`` at most):
        a client that kept one finds it closed, as after a device's keep-alive timeout or a reboot."""
        loop, done = self._loop, threading.Event()

        def close_parked() -> None:
            with self._conn_lock:
                idle = [conn for conn in self._connections if conn.where == "parked"]
            for conn in idle:
                self._close_idle(conn)
            done.set()

        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # a worker parks a connection after its keep-alive linger
            with self._conn_lock:
                if not any(conn.where == "working" for conn in self._connections):
                    break
            time.sleep(KEEPALIVE_LINGER)
        if loop is not None and not self._stopping and loop.call_soon(close_parked):
            done.wait(wait)

    # -- deadlines ----------------------------------------------------------------------------
    def arm(self, sock: socket.socket, *, answering: bool = False, until: float | None = None) -> None:
        """Drop ``sock`` unless it finishes what it is sending (or, ``answering``, takes our answer)
        within ``request_timeout`` (or by ``until``)."""
        reason = (f"answer not taken within {self.request_timeout:g} s" if answering
                  else f"nothing complete within {self.request_timeout:g} s")
        when = time.monotonic() + self.request_timeout if until is None else until
        loop = self._loop
        assert loop is not None  # connections exist only once started
        with self._conn_lock:
            old = self._deadlines.get(sock)
            if old is not None:
                old[0].cancel()
            self._deadlines[sock] = (loop.schedule(when, self._expire, sock), reason)
        if self._stopped:  # the loop may be gone: nothing would ever drop it
            cut(sock)

    def disarm(self, sock: socket.socket) -> bool:
        """Lift ``sock``'s deadline; False if it had already passed (the connection is being dropped)."""
        with self._conn_lock:
            entry = self._deadlines.pop(sock, None)
            if entry is not None:
                entry[0].cancel()
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

    def _expire(self, sock: socket.socket) -> None:
        """(loop) A deadline passed: journal the drop and shut the connection."""
        with self._conn_lock:
            entry = self._deadlines.get(sock)
            if entry is None or entry[0].cancelled or entry[0].when > time.monotonic():
                return  # lifted, or armed again meanwhile
            del self._deadlines[sock]
            self._expired.add(sock)
        try:
            client, port = sock.getpeername()[:2]
        except OSError:  # already gone: it ends where it is
            client, port = None, None
        self._journal({"client": client, "client_port": port, "event": "dropped", "reason": entry[1]})
        cut(sock)  # a worker's read or write returns; a waiting or parked socket turns readable

    # -- the port (on the loop's thread, but for start) ------------------------------------------
    def _refresh(self) -> None:
        """Watch the port while it listens, is not stopping and is not backing off a shortage."""
        with self._watch_lock:
            wanted = self._listening and not self._stopping and time.monotonic() >= self._accept_again_at
            if wanted == self._watching or self._loop is None:
                return
            if wanted:
                self._loop.watch(self._sock, self._accept_ready)
            else:
                self._loop.unwatch(self._sock)
            self._watching = wanted

    def _replanned(self) -> None:
        """A new plan: watch the port as it says, release every stall held for an older plan, and end
        the keep-alive connections the plan ends (:meth:`_ended`)."""
        self._refresh()
        with self._conn_lock:
            stale = [conn for conn in self._connections if not conn.silenced and (
                (conn.where == "held" and conn.plan is not self._plan) or (conn.where == "parked" and self._ended(conn)))]
        for conn in stale:
            self._close_idle(conn)

    def _detach(self) -> None:
        """Stop watching the port; close every connection the loop keeps (waiting, parked, held)."""
        self._refresh()
        with self._conn_lock:
            idle = [conn for conn in self._connections if conn.where in ("waiting", "parked", "held")]
        for conn in idle:
            self._close_idle(conn)
        self._detached.set()

    def _accept_ready(self) -> None:
        if self._stopping:  # an event taken just before the port was unwatched
            return
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, addr = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _SHORTAGES:
                    self._starved(exc)
                # Otherwise: the client left before we took it (ECONNABORTED), or the port stopped
                # listening under us (EINVAL): _replanned stops watching it.
                return
            self._accepted(sock, addr)

    def _accepted(self, sock: socket.socket, addr) -> None:
        plan = self._plan
        try:
            sock.setblocking(True)  # workers block (bounded by deadlines); held ones are set otherwise
            # Each answer leaves in one write; without this, delayed ACKs still add 40 ms to a
            # request whose answer fills more than one segment.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Its TIME_WAIT must not keep our listen() off the port after a refuse (see _listen).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except OSError:
            pass  # reset already: the handshake finds out and journals it
        if self._on_accept is not None:
            try:
                self._on_accept()
            except Exception:  # the listener outlives a failing hook too
                log.exception("on_accept failed")
            plan = self._plan  # the hook may have changed it (a phase that starts on this connection)
        client = {"client": addr[0], "client_port": addr[1]}
        # A connection accepted as the port stopped listening ("refuse": on_accept moved the device to a
        # phase that refuses) is reset, as the kernel resets those still in its backlog.
        if plan.fault in ("reset", "refuse"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self._journal({**client, "event": "reset"})
            sock.close()
            return
        conn = _Connection(sock, addr, plan)
        with self._conn_lock:
            self._connections.add(conn)
        if plan.fault == "stall-handshake":
            self._journal({**client, "event": "stall-handshake"})
            self._hold(conn)
        elif has_data(sock):
            self._dispatch(conn, self._serve)
        else:  # nothing to read yet: it waits in the loop, not on a worker
            self.arm(sock, until=conn.since + self.request_timeout)
            conn.where = "waiting"
            self._loop_watch(conn, self._waiting_ready)

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
        assert self._loop is not None
        self._refresh()
        self._loop.schedule(self._accept_again_at, self._refresh)

    # -- connections in the loop (on the loop's thread) ------------------------------------------
    def _loop_watch(self, conn: _Connection, fn: Callable) -> None:
        assert self._loop is not None
        try:
            self._loop.watch(conn.sock, fn, conn)
        except (ValueError, OSError):  # closed under us (cut at stop): nothing left to watch
            self._close(conn)

    def _dispatch(self, conn: _Connection, fn: Callable) -> None:
        """Hand ``conn`` to a worker for ``fn``."""
        assert self._loop is not None
        conn.where = "working"
        try:
            self._loop.submit(fn, conn)
        except RuntimeError as exc:  # no thread can be started: as short of resources as EMFILE
            self._close(conn)
            self._starved(exc)

    def _waiting_ready(self, conn: _Connection) -> None:
        """The first bytes came (or the deadline cut it): on to the handshake."""
        assert self._loop is not None
        if conn.silenced:  # silenced before this wake: silent now (or already, if the event was stale)
            self._silence_idle([conn])
            return
        self._loop.unwatch(conn.sock)
        if self.disarm(conn.sock):
            self._dispatch(conn, self._serve)
        else:  # dropped at its deadline, and journaled so
            self._close(conn)

    def _silence_idle(self, conns: list[_Connection]) -> None:
        """(loop) The silenced connections the loop keeps (waiting, parked) turn silent now; one a worker
        has turns silent when the worker gives it back (:meth:`_parked`); a stall stays as it is."""
        for conn in conns:
            if conn.where in ("waiting", "parked"):
                assert self._loop is not None
                self._loop.unwatch(conn.sock)
                self._go_silent(conn)

    def _go_silent(self, conn: _Connection) -> None:
        """(loop) Hold a silenced connection: no deadline, read and drop, until the client leaves."""
        with self._conn_lock:
            entry = self._deadlines.pop(conn.sock, None)
            if entry is not None:
                entry[0].cancel()
        self._journal({"client": conn.addr[0], "client_port": conn.addr[1], "event": "silenced"})
        conn.where = "held"
        try:
            conn.sock.setblocking(False)
        except OSError:
            pass
        self._loop_watch(conn, self._held_ready)

    def _ended(self, conn: _Connection) -> bool:
        """Whether a kept connection ends now: the device went down (a plan that refuses: a reboot, its
        HTTPS daemon stopped), or its HTTPS identity changed since the connection was made (a new
        certificate or TLS settings: FortiOS restarts the daemon). A silenced connection stays silent."""
        return not conn.silenced and (self._plan.fault == "refuse" or conn.plan.ssl_context is not self._plan.ssl_context)

    def _parked(self, conn: _Connection) -> None:
        """An idle keep-alive connection waits in the loop for its next request."""
        if self._stopping or self._ended(conn):
            self._close(conn)
            return
        if conn.silenced:  # silence_kept() came while a worker had it
            self._go_silent(conn)
            return
        conn.where = "parked"
        self._loop_watch(conn, self._parked_ready)

    def _parked_ready(self, conn: _Connection) -> None:
        assert self._loop is not None
        if conn.silenced:  # a request that came after silence_kept(): never answered
            self._silence_idle([conn])
            return
        self._loop.unwatch(conn.sock)
        if self._ended(conn):
            self._close(conn)
            return
        self._dispatch(conn, self._resume)

    def _hold(self, conn: _Connection) -> None:
        """A stall: keep the connection, reading and dropping what the client sends, until it leaves,
        the plan is replaced or the device stops (or, with ``stall_seconds``, until then). A late
        answer (a slow endpoint's ``held_seconds``, or ``stall_seconds`` after the request) is watched
        the same way, so a client that leaves first frees the connection at once."""
        if self._stopping or conn.plan is not self._plan:  # released before it was held
            self._close(conn)
            return
        assert self._loop is not None
        conn.where = "held"
        late = conn.handler.held_seconds if conn.handler is not None else None
        if late is None:
            late = conn.plan.stall_seconds
        if late is not None:
            conn.timer = self._loop.schedule(time.monotonic() + late, self._late, conn)
            if conn.handler is None:
                return  # a late handshake: what the client sent is its ClientHello, left unread
        try:
            conn.sock.setblocking(False)
        except OSError:
            pass
        self._loop_watch(conn, self._held_ready)

    def _held_ready(self, conn: _Connection) -> None:
        if conn.where != "held":  # an event taken just before the hold ended
            return
        try:
            for _ in range(_READS_PER_WAKE):
                if not conn.sock.recv(65536):
                    break  # the client left
            else:
                return  # it keeps sending: read on at the next wake
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # read all there was: still there
        except OSError:
            pass  # reset: gone
        self._close_idle(conn)

    def _late(self, conn: _Connection) -> None:
        """A late plan's time is up: the handshake or the answer goes on."""
        if conn.where != "held":
            return
        if conn.handler is not None:  # a late answer was watched for the client leaving meanwhile
            assert self._loop is not None
            self._loop.unwatch(conn.sock)
            try:
                conn.sock.setblocking(True)
            except OSError:
                pass
        conn.since = time.monotonic()  # the handshake's deadline counts from now
        self._dispatch(conn, self._go_on)

    def _close_idle(self, conn: _Connection) -> None:
        """Close a connection the loop keeps (not one a worker has)."""
        if conn.where in ("working", "closed"):
            return
        if conn.timer is not None:
            conn.timer.cancel()
        assert self._loop is not None
        self._loop.unwatch(conn.sock)
        if conn.where == "parked":
            # A kept connection ends: the FIN now, as close() alone waits for the handler's file objects.
            cut(conn.sock)
        self._close(conn)

    # -- connections on a worker -----------------------------------------------------------------
    def _serve(self, conn: _Connection) -> None:
        try:
            if self._open(conn):
                self._run(conn)
        except Exception:  # the listener outlives every client, however it misbehaves
            log.exception("connection from %s failed", conn.addr[0])
            self._close(conn)

    def _resume(self, conn: _Connection) -> None:
        try:
            self._run(conn)
        except Exception:
            log.exception("connection from %s failed", conn.addr[0])
            self._close(conn)

    def _go_on(self, conn: _Connection) -> None:
        try:
            if conn.handler is None:  # a late handshake
                if self._open(conn):
                    self._run(conn)
            elif conn.handler.answer_held():  # a late answer
                self._run(conn, first=False)
            else:
                self._finish(conn)
        except Exception:
            log.exception("connection from %s failed", conn.addr[0])
            self._close(conn)

    def _open(self, conn: _Connection) -> bool:
        """TLS (unless plaintext) and a handler; False if the connection ended (and was journaled)."""
        # Werkzeug (under http11) loads with the first connection, not with the listener: a cold
        # `mockfgt serve` writes its manifest without it (docs/performance.md).
        from .http11 import ConnectionServer, Handler, alert, lingering_close, tls_failure

        raw, plan = conn.sock, conn.plan
        client = {"client": conn.addr[0], "client_port": conn.addr[1]}
        tls_info = None
        if plan.fault != "plaintext":
            try:
                # Wrapping a socket whose client already reset it fails after the raw socket was
                # detached, leaving its descriptor to the garbage collector: see it first.
                raw.getpeername()
            except OSError:
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": None, "error": "connection reset by peer", "alert": None}})
                self._close(conn)
                return False
            raw.settimeout(self.request_timeout + 1)  # a backstop: the deadline below drops it first
            assert plan.ssl_context is not None  # a plan has a context unless its fault is plaintext
            try:
                with self._conn_lock:  # stop() cuts conn.sock: the raw socket or the TLS one, never a detached one
                    if self._stopped:
                        raise ConnectionAbortedError("the device stopped")
                    tls = plan.ssl_context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                    conn.sock = tls  # wrapping detached the raw socket: closing must go through this one
            except OSError as exc:  # reset between the look above and the wrapping
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": None, "error": tls_failure(exc), "alert": None}})
                self._close(conn)
                return False
            self.arm(tls, until=conn.since + self.request_timeout)
            try:
                tls.do_handshake()
                if not self.disarm(tls):
                    raise ConnectionAbortedError("dropped at the deadline")
                tls_info = tls_summary(tls)
            except (ssl.SSLError, OSError) as exc:
                self.disarm(tls)
                error = tls_failure(exc)
                self._journal({**client, "event": "tls-failed",
                               "tls": {"sni": getattr(tls, SNI_ATTRIBUTE, None), "error": error,
                                       "alert": alert(error)}})
                lingering_close(tls)
                self._close(conn)
                return False
        conn.sock.settimeout(None)  # deadlines bound the reading and writing from here on
        conn.handler = Handler.open(conn.sock, conn.addr, ConnectionServer(self, plan, tls_info))
        return True

    def _run(self, conn: _Connection, first: bool = True) -> None:
        """Serve requests while they come back to back; then park the connection, hold it or close it."""
        handler = conn.handler
        assert handler is not None and self._loop is not None
        while first or self._next_request_in(conn, handler):
            first = False
            stays = handler.serve_one()
            if handler.held is not None:  # a stall-response plan: the request is in, the answer never
                event = {"client": conn.addr[0], "client_port": conn.addr[1], "event": "stall-response",
                         "method": handler.command, "path": handler.path.split("?", 1)[0]}
                if handler.held_seconds is not None:  # a slow endpoint: answered, late
                    event.update(event="answer-held", seconds=handler.held_seconds)
                self._journal(event)
                if not self._loop.call_soon(self._hold, conn):
                    self._close(conn)
                return
            if not stays:
                self._finish(conn)
                return
        if self._ended(conn):  # the device went down or changed its certificate meanwhile
            cut(conn.sock)
            self._close(conn)
            return
        self.arm(conn.sock)  # an idle keep-alive connection is closed after request_timeout too
        if not self._loop.call_soon(self._parked, conn):
            self._finish(conn)

    def _next_request_in(self, conn: _Connection, handler: Handler) -> bool:
        """Whether the next request is here (or comes within the linger) and may be answered: not on a
        connection silenced meanwhile (silenced while we waited means it came after the silence), nor
        on one the device ended meanwhile (:meth:`_ended`)."""
        if conn.silenced or self._ended(conn):
            return False
        return ((handler.pending or readable_within(conn.sock, KEEPALIVE_LINGER))
                and not conn.silenced and not self._ended(conn))

    def _finish(self, conn: _Connection) -> None:
        if isinstance(conn.sock, ssl.SSLSocket) and conn.handler is not None:
            close_notify(conn.sock)
        self._close(conn)

    def _close(self, conn: _Connection) -> None:
        with self._conn_lock:
            self._connections.discard(conn)
            entry = self._deadlines.pop(conn.sock, None)
            if entry is not None:
                entry[0].cancel()
            self._expired.discard(conn.sock)
            conn.where = "closed"
        conn.sock.close()

    def _listen(self) -> None:
        """Listen on the bound port (``_listen_lock`` held); see :func:`mockfgt.ports.listen`."""
        listen(self._sock)
        self._listening = True
