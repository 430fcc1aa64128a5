"""A device's port and its sockets: a port that stays ours while the device refuses, and the small
socket operations the listener needs (cutting a connection from another thread, TLS close_notify,
what a handshake negotiated, whether a read would block)."""

from __future__ import annotations

import select
import socket
import ssl

from .tls import SNI_ATTRIBUTE


def bind(family: int, sockaddr) -> socket.socket:
    """Bind to the port by number, even an ephemeral one, so that it stays ours while refusing.

    Linux keeps a socket bound by explicit port number bound after shutdown() takes it out of
    LISTEN; one bound to port 0 loses the port. So an ephemeral port is found first and then
    bound again by number (both sockets use SO_REUSEADDR and neither listens yet).

    SO_REUSEADDR is on only while binding and listening (TIME_WAIT connections of an earlier run
    or of earlier clients share the port): left on, Linux lets any other SO_REUSEADDR socket (a
    second ``mockfgt serve``) bind the port whenever ours does not listen, that is while the
    device refuses, and that process would then get the device's clients.
    """
    sock = _new_socket(family)
    sock.bind(sockaddr)
    if sockaddr[1] == 0:
        explicit = _new_socket(family)
        explicit.bind((sockaddr[0], sock.getsockname()[1], *sockaddr[2:]))
        sock.close()
        sock = explicit
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    return sock


def listen(sock: socket.socket) -> None:
    """Listen on a port bound by :func:`bind`.

    listen() checks the port's TIME_WAIT connections again and passes only with SO_REUSEADDR on
    both sides (accepted connections get it too); no other socket can bind meanwhile, since ours
    is already bound without it.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.listen(128)
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)


def _new_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def readable_within(sock: socket.socket, seconds: float) -> bool:
    """Whether ``sock`` turns readable within ``seconds`` (poll, not select: descriptors pass 1024)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        return bool(poller.poll(seconds * 1000))
    except OSError:
        return True  # let the read find out what happened


def has_data(sock: socket.socket) -> bool:
    """Whether a read would not block: bytes came, the client left or reset."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset: the worker finds out and journals it
    return True


def cut(sock: socket.socket) -> None:
    """Shut a connection from another thread than its own: its blocked read or write returns.

    socket.socket's own shutdown, not SSLSocket's: that one also drops the TLS object under the
    connection's thread (then ``'NoneType' object has no attribute 'getpeercert'``).
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def close_notify(conn: ssl.SSLSocket) -> None:
    """Send TLS close_notify without waiting for the client's, as a web server does on close."""
    try:
        conn.settimeout(0)
        conn.unwrap()
    except (ssl.SSLError, OSError, ValueError):
        pass  # the client left first, or will answer after we are gone: either way we are done


def tls_summary(conn: ssl.SSLSocket) -> dict:
    cipher = conn.cipher()
    return {
        "version": conn.version(),
        "cipher": cipher[0] if cipher else None,
        "sni": getattr(conn, SNI_ATTRIBUTE, None),
        "client_certificate": conn.getpeercert(binary_form=True) is not None,
    }
