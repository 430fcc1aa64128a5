"""Servers the throughput benchmark runs in their own processes (so they do not share the client's GIL).

    python -m bench.servers mockfgt  CERTS_DIR             a healthy mock FortiGate
    python -m bench.servers werkzeug CERTS_DIR BODY_FILE   bare Werkzeug, threaded, TLS, one fixed answer
    python -m bench.servers werkzeug-nodelay CERTS_DIR BODY_FILE   the same, with TCP_NODELAY on each connection
    python -m bench.servers listener CERTS_DIR BODY_FILE   the same fixed answer on mockfgt's own listener

Both print one JSON line (``port``, ``ca``, and for mockfgt ``token``) once they accept connections,
and stop when their standard input closes. The bare server uses the same certificate shape and the
same server SSL context settings as a device, and answers every request with the bytes of the
device's status answer from a trivial WSGI function: it is the ceiling of Flask-less Werkzeug + ssl.
The listener variant serves that function with the device's socket layer (keep-alive, per-connection
TLS): the ceiling of the device itself, so the gap to it is what Flask, the emulation and the journal
cost.

Werkzeug sends the status line and headers, then the body, in two writes, without TCP_NODELAY: the
body waits for the client's delayed ACK of the headers. The nodelay variant shows what that costs.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from pathlib import Path

from mockfgt import FortiGate
from mockfgt.listener import ConnectionPlan, Listener
from mockfgt.tls import HarnessCA, server_tls


def serve_mockfgt(certs_dir: Path) -> None:
    with FortiGate(ca=HarnessCA(certs_dir)) as device:
        _ready({"port": device.port, "ca": device.ca_bundle, "token": device.token})
        sys.stdin.read()


def trivial_app(body_file: Path):
    """A WSGI function that answers every request with the same bytes."""
    body = body_file.read_bytes()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]

    def app(environ, start_response):
        start_response("200 OK", headers)
        return [body]

    return app


def device_like_tls(certs_dir: Path):
    """The harness CA and the certificate shape and context settings of a healthy device."""
    ca = HarnessCA(certs_dir)
    material = server_tls(ca, certs_dir / "bare", shape="valid", versions=["TLSv1.2", "TLSv1.3"],
                          client_certificate=False, hostname="fgt-mock", serial="FGVM02TM24000001",
                          kind="fortigate")
    return ca, material.context


def serve_bare_werkzeug(certs_dir: Path, body_file: Path, nodelay: bool = False) -> None:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request would be measured too
    ca, context = device_like_tls(certs_dir)
    server = make_server("127.0.0.1", 0, trivial_app(body_file), threaded=True, ssl_context=context)
    if nodelay:
        accept = server.get_request

        def get_request():
            conn, addr = accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn, addr

        server.get_request = get_request
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _ready({"port": server.server_port, "ca": str(ca.cert_path)})
    sys.stdin.read()
    server.shutdown()


def serve_on_listener(certs_dir: Path, body_file: Path) -> None:
    ca, context = device_like_tls(certs_dir)
    listener = Listener(trivial_app(body_file), ConnectionPlan(context))
    listener.start()
    _ready({"port": listener.port, "ca": str(ca.cert_path)})
    sys.stdin.read()
    listener.stop()


def _ready(info: dict) -> None:
    print(json.dumps(info), flush=True)


def main(argv: list[str]) -> None:
    which, certs_dir = argv[0], Path(argv[1])
    if which == "mockfgt":
        serve_mockfgt(certs_dir)
    elif which in ("werkzeug", "werkzeug-nodelay"):
        serve_bare_werkzeug(certs_dir, Path(argv[2]), nodelay=which == "werkzeug-nodelay")
    elif which == "listener":
        serve_on_listener(certs_dir, Path(argv[2]))
    else:
        raise SystemExit(f"unknown server {which!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
