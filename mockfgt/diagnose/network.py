"""Steps 1 to 3: name resolution, TCP, and the TLS handshake with its certificate checks."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from ..agent import Agent
from ..codes import CONNECTION, TIMEOUT, TLS
from ..hosts import host_port
from .advice import _classify, _client_cert_note, _short, _verification_advice
from .certificates import (
    _certificate_details,
    _chain_verdict,
    _inspection_context,
    _peer_chain,
    _trusted_certificates,
    _verifying_context,
)
from .report import Step


def is_ip(host: str) -> bool:
    """An IP literal (SNI must not carry one), not a host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Session:
    """What one handshake established: version, cipher and the chain the device sent (leaf first)."""

    version: str
    cipher: str
    chain: list[x509.Certificate]


class NetworkSteps:
    """Steps 1 to 3 of the probe (see :class:`mockfgt.diagnose.Probe`)."""

    target: Agent
    addresses: list[tuple]
    reachable: tuple | None

    # -- 1. name resolution --------------------------------------------------------------------
    def resolve(self, step: Step) -> Step:
        t = self.target
        try:
            self.addresses = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            return step.fail(CONNECTION, f"{t.host} does not resolve ({exc.strerror})",
                             "Check the spelling of the host name and that the agent host's DNS knows it "
                             f"(`getent hosts {t.host}`), or use the device's address.")
        found = ", ".join(dict.fromkeys(str(a[4][0]) for a in self.addresses))  # str: an IP family's address
        if is_ip(t.host):
            return step.ok(f"{t.host} is an address: nothing to resolve")
        step.details["addresses"] = found
        return step.ok(f"{t.host} resolves to {found}")

    # -- 2. TCP ----------------------------------------------------------------------------------
    def tcp(self, step: Step) -> Step:
        t, errors = self.target, []
        for entry in self.addresses:
            try:
                with socket.socket(entry[0], socket.SOCK_STREAM) as sock:
                    sock.settimeout(t.timeout)
                    sock.connect(entry[4])
            except ConnectionResetError:
                # Accepted, then reset so fast that connect() saw it: TCP worked; the TLS step tells more.
                self.reachable = entry
                return step.ok(f"connected to {host_port(entry[4][0], t.port)}, and reset at once")
            except OSError as exc:
                errors.append((entry[4][0], exc))
                continue
            self.reachable = entry
            return step.ok(f"connected to {host_port(entry[4][0], t.port)}")
        where, error = errors[0]
        code = _classify(error)
        if code == TIMEOUT:
            return step.fail(TIMEOUT, f"no answer to the TCP connection within {t.timeout:g} s ({where})",
                             "Something drops the traffic silently (firewall, routing), or the device is down.")
        if isinstance(error, ConnectionRefusedError):
            return step.fail(CONNECTION, f"connection refused on {host_port(where, t.port)}",
                             "Nothing listens on that port: the device is down, the port is wrong (HTTPS "
                             "administration is often on 443, 8443 or 10443), or HTTPS management access is "
                             "not enabled on that interface.")
        return step.fail(code, f"cannot connect to {host_port(where, t.port)}: {error.strerror or error}")

    # -- 3. TLS ----------------------------------------------------------------------------------
    def tls(self, step: Step) -> Step:
        t = self.target
        if urlsplit(t.url).scheme == "http":
            return step.ok("plain HTTP: no TLS", "The credential crosses the network unencrypted; "
                           "FortiOS and FortiManager serve their API on HTTPS.")
        try:
            session = self._handshake(_inspection_context(t))
        except Exception as exc:  # classified below: reset, timeout, alerts, plain HTTP...
            return self._handshake_failed(step, exc)
        step.details["protocol"] = f"{session.version}, {session.cipher}"
        if not session.chain:
            return step.fail(TLS, "the device sent no certificate")
        leaf = session.chain[0]
        step.details.update(_certificate_details(leaf))
        step.details["chain"] = _chain_verdict(session.chain, _trusted_certificates(t.ca))
        problem = self._client_certificate_problem(step, session)
        unverified = self._verification(step, leaf)
        if problem:
            return step.fail(TLS, problem)
        if unverified and not t.insecure:
            return step.fail(TLS, f"certificate verification failed: {unverified}")
        how = ", certificate not verified (Insecure)" if unverified else ", certificate verifies"
        return step.ok(f"{session.version} handshake{how}")

    def _handshake(self, context: ssl.SSLContext) -> _Session:
        """One handshake to the address TCP reached."""
        assert self.reachable is not None, "the TLS step runs only once TCP reached an address"
        family, _, _, _, sockaddr = self.reachable
        t = self.target
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(t.timeout)
            raw.connect(sockaddr)
            server_name = None if is_ip(t.host) and not context.check_hostname else t.host
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                version, cipher = tls.version(), tls.cipher()
                assert version is not None and cipher is not None, "set once the handshake completed"
                return _Session(version, cipher[0], _peer_chain(tls))

    def _handshake_failed(self, step: Step, exc: BaseException) -> Step:
        t, code = self.target, _classify(exc)
        reason = (getattr(exc, "reason", None) or "").upper()
        if code == CONNECTION:
            return step.fail(CONNECTION, f"the connection was dropped before TLS: {_short(exc)}",
                             "The device accepted TCP, then reset the connection: an ACL, a local-in policy "
                             "or a middlebox kills the session, or the port belongs to another service.")
        if code == TIMEOUT:
            return step.fail(TIMEOUT, f"no TLS answer within {t.timeout:g} s",
                             "TCP connected but no ServerHello came: the device is overloaded or something "
                             f"drops the traffic. Try `curl -v {t.base_url}` from the agent host.")
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"):
            answer = self._plain_http_answer()
            return step.fail(TLS, "the port does not speak TLS" + (f": it answers plain HTTP ({answer})" if answer else ""),
                             "Point the agent at the HTTPS administration port, or enable HTTPS on this one.")
        legacy = self._legacy_version()
        if legacy:
            return step.fail(TLS, f"the device speaks only {legacy}; the agent requires TLS 1.2 or later",
                             "Raise the device's minimum TLS version (FortiOS: config system global, set "
                             "admin-https-ssl-versions tlsv1-2 tlsv1-3).")
        suite = self._legacy_suite() if "HANDSHAKE_FAILURE" in reason else None
        if suite:
            return step.fail(TLS, f"the device offers only outdated cipher suites such as {suite} (RSA key exchange, "
                                  "no forward secrecy); the agent's TLS stack offers none of them",
                             "Enable strong crypto on the device (FortiOS: config system global, set strong-crypto "
                             "enable). Insecure does not help: it skips the certificate check, not the cipher choice.")
        if "HANDSHAKE_FAILURE" in reason or "CERTIFICATE_REQUIRED" in reason:
            return step.fail(TLS, f"the device refused the handshake ({_short(exc)})", _client_cert_note(t))
        return step.fail(code, f"the TLS handshake failed: {_short(exc)}")

    def _plain_http_answer(self) -> str | None:
        """The status line a plain-HTTP server sends back, if the port is one."""
        assert self.reachable is not None, "the TLS step runs only once TCP reached an address"
        family, _, _, _, sockaddr = self.reachable
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.target.timeout)
                sock.connect(sockaddr)
                sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {self.target.host}\r\nConnection: close\r\n\r\n".encode())
                first = sock.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError:
            return None
        return first if first.startswith("HTTP/") else None

    def _legacy_version(self) -> str | None:
        """The version a device that refused TLS 1.2+ agrees to when offered TLS 1.0/1.1 only."""
        context = _inspection_context(self.target)
        with warnings.catch_warnings():  # offering TLS 1.0 is deprecated, and the point here
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version, context.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            return self._handshake(context).version
        except (OSError, ssl.SSLError, ValueError):
            return None

    def _legacy_suite(self) -> str | None:
        """The suite a device that refused the agent's suites agrees to when offered RSA key exchange only."""
        context = _inspection_context(self.target)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("kRSA:@SECLEVEL=0")
        try:
            return self._handshake(context).cipher
        except (OSError, ssl.SSLError, ValueError):
            return None

    def _client_certificate_problem(self, step: Step, session: _Session) -> str | None:
        """TLS 1.3 reports a missing client certificate only after the handshake; TLS 1.2 during it.

        So when TLS 1.3 was negotiated, one TLS 1.2 handshake tells whether the device wants one.
        """
        if session.version != "TLSv1.3":
            return None
        context = _inspection_context(self.target)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            self._handshake(context)
        except ssl.SSLError as exc:
            reason = (exc.reason or "").upper()
            if "HANDSHAKE_FAILURE" in reason or "CERTIFICATE_REQUIRED" in reason:
                step.notes.append(_client_cert_note(self.target))
                return "the device requires a client certificate" + (" and refused the one given" if self.target.cert else "")
            step.details["TLS 1.2"] = "refused (the device speaks TLS 1.3 only)"
        except OSError:
            pass  # nothing learnt; the HTTP steps still meet whatever it is
        return None

    def _verification(self, step: Step, leaf: x509.Certificate) -> str | None:
        """Verify as the agent does; None when it verifies, else the reason (and a note on what to do)."""
        t = self.target
        try:
            self._handshake(_verifying_context(t))
        except ssl.SSLCertVerificationError as exc:
            step.details["verifies"] = f"no: {exc.verify_message} (OpenSSL code {exc.verify_code})"
            note = _verification_advice(exc.verify_code, t.host, leaf)
            if t.insecure:
                note = "Insecure is on, so the agent does not notice: " + note
            step.notes.append(note)
            return exc.verify_message
        except (OSError, ssl.SSLError):
            return None  # not a certificate problem; the other checks report it
        step.details["verifies"] = f"yes, for {t.host}" + (f" against {t.ca}" if t.ca else " against the system store")
        return None
