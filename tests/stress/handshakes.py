"""Deliberately failed handshakes, thousands of them, against every TLS fault the catalogue has.

A verifying client (trusting only the harness CA, TLS 1.2 at least, no client certificate)
connects to each TLS scenario, which must fail; a few more faults come from the client side
(plain HTTP on the TLS port, a ClientHello and then nothing, TCP closed mid-handshake). Afterwards
a healthy device must answer as before; how fast it answers before and after is reported, not
asserted.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from deadlines import seconds

#: Scenarios whose TLS a verifying client must refuse (or that refuse a client without a certificate).
TLS_SCENARIOS = ("expired-cert", "not-yet-valid-cert", "self-signed-factory", "hostname-mismatch",
                 "ip-without-ip-san", "private-ca", "incomplete-chain", "tls10-only", "tls11-only",
                 "client-cert-required", "plaintext-http", "fmg-stock-cert", "legacy-ciphers-only",
                 "weak-key-cert", "sha1-signed-cert", "cn-only-cert")
#: Faults the client itself brings to a healthy device.
CLIENT_FAULTS = ("plain-http-to-tls", "hello-then-close", "close-mid-handshake")
STATUS = "/api/v2/monitor/system/status"


@dataclass
class HandshakeFigures:
    attempts: int = 0
    failed: Counter = field(default_factory=Counter)  # by scenario or client fault
    unexpected_successes: list[str] = field(default_factory=list)
    refused_on_the_device: int = 0  # failures the devices' journals recorded
    healthy_before_ms: float = 0.0
    healthy_after_ms: float = 0.0


def verifying_context(ca_bundle: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_bundle)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def fail_against(device, ctx: ssl.SSLContext) -> bool:
    """One verifying client against a faulty device: True when it failed, as it must."""
    try:
        with socket.create_connection(("127.0.0.1", device.port), timeout=seconds(10)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return not tls.recv(1)  # TLS 1.3: a missing client certificate shows on the first read
    except (ssl.SSLError, OSError):
        return True


def client_fault(device, fault: str) -> bool:
    """A client that breaks the handshake itself; True once done (the device must cope, not answer)."""
    with socket.create_connection(("127.0.0.1", device.port), timeout=seconds(10)) as raw:
        if fault == "plain-http-to-tls":
            raw.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                raw.recv(1024)
            except OSError:
                pass
        elif fault == "hello-then-close":
            raw.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 32)
        else:  # close-mid-handshake: a real ClientHello, then the socket goes away
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = verifying_context(device.ca_bundle).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            raw.sendall(outgoing.read())
    return True


def healthy_ms(device, samples: int) -> float:
    """Median milliseconds of a new connection's GET (handshake included) on a healthy device."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                              verify=device.ca_bundle, timeout=seconds(10))
        assert answer.status_code == 200, answer.text
        times.append(time.perf_counter() - started)
    times.sort()
    return round(times[len(times) // 2] * 1000, 2)


def storm(healthy, faulty: dict[str, object], per_kind: int, workers: int = 16) -> HandshakeFigures:
    """``per_kind`` failed handshakes against each device in ``faulty`` and each client fault on ``healthy``."""
    figures = HandshakeFigures(healthy_before_ms=healthy_ms(healthy, 20))
    before = {name: _failures_recorded(d) for name, d in faulty.items()}
    jobs = [(name, device) for name, device in faulty.items() for _ in range(per_kind)]
    jobs += [(fault, healthy) for fault in CLIENT_FAULTS for _ in range(per_kind)]
    contexts = {name: verifying_context(device.ca_bundle) for name, device in faulty.items()}

    def attempt(job) -> tuple[str, bool]:
        name, device = job
        if name in CLIENT_FAULTS:
            return name, client_fault(device, name)
        return name, fail_against(device, contexts[name])

    with ThreadPoolExecutor(workers) as pool:
        for name, failed in pool.map(attempt, jobs):
            figures.attempts += 1
            if failed:
                figures.failed[name] += 1
            else:
                figures.unexpected_successes.append(name)
    figures.refused_on_the_device = sum(_failures_recorded(d) - before[n] for n, d in faulty.items())
    figures.healthy_after_ms = healthy_ms(healthy, 20)
    return figures


def _failures_recorded(device) -> int:
    return sum(1 for e in device.journal.events() if e["event"] == "tls-failed")
