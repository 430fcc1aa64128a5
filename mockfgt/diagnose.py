"""``mockfgt diagnose``: probe a FortiGate or FortiManager one layer at a time and say what to fix.

    mockfgt diagnose https://fw.example:8443 --token T [--kind fortigate|fortimanager]
                     [--user U --password P [--login authentication|logincheck] [--accept-banner]]
                     [--session S] [--ca FILE] [--insecure] [--cert FILE --key FILE]
                     [--vdom V | --adom A] [--token-in header|query] [--trusthost-user ADMIN]
                     [--write-check] [--timeout S] [--json]

The layers, in the order a connection meets them:

1. ``resolve``: the host name resolves (an address needs nothing);
2. ``tcp``: something accepts a TCP connection on the port;
3. ``tls``: the handshake, the protocol version and cipher, the certificate (subject, SANs, validity,
   issuer), whether the device sends a complete chain, whether it requires a client certificate, and
   whether the certificate verifies for the name the agent uses, and if not, why;
4. ``authentication``: the login, for an agent with a password (FortiOS ``/api/v2/authentication``
   for a session key, falling back to the ``/logincheck`` form when the device has no such API;
   FortiManager ``exec /sys/login/user``), then the status call with the credential (FortiOS
   ``/api/v2/monitor/system/status``, FortiManager ``get /sys/status``, and whether the FortiManager
   is in workspace mode);
5. ``authorization``: a read of the objects the agent manages (address objects and groups in the VDOM
   or ADOM); with ``--write-check`` also the creation and deletion of one clearly named address (under
   the ADOM lock, committed, in workspace mode); with ``--trusthost-user`` the read of that admin's
   trusted hosts and their write-back, unchanged, as an agent in trusted-hosts mode does.

The calls are the agent's flow (:mod:`mockfgt.flows`), as a correct agent makes them: it echoes the
CSRF token on writes of a cookie session, locks the ADOM in workspace mode, and accepts the
post-login disclaimer only when told (``--accept-banner``). An agent configured otherwise (no CSRF, no
lock) can be reproduced through the Python API (:class:`Target` ``csrf``, ``workspace_lock``).

Each step ends ``ok`` or with one of the agent's codes (202000..202004); the first failure decides
the verdict, and the steps after it are not run (the token is never sent to a device whose
certificate did not verify). With ``--insecure`` a certificate that does not verify is reported as a
warning, because the agent with Insecure on would not notice either.

This module is client side only: it imports nothing of the mock device, so it works the same against
a real device. The exit status is 0 only when the verdict is ``ok``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import http.cookiejar
import ipaddress
import json
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import argtypes
from .classify import classify
from .codes import AUTHENTICATION, CONNECTION, GUIDANCE, OK, TIMEOUT, TITLES, TLS
from .flows import KINDS, Agent, Answer, Call, Conversation, jsonrpc, jsonrpc_result
from .hosts import host_port

STEPS = ("resolve", "tcp", "tls", "authentication", "authorization")
DEFAULT_TIMEOUT = 10.0  # what the agent waits (vendor documentation)
WRITE_PREFIX = "mockfgt-diagnose-"



def _port_or_none(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None

@dataclass(frozen=True)
class Target:
    """What to probe and how the agent is configured to reach it."""

    url: str
    token: str | None = None
    kind: str = "fortigate"
    ca: str | None = None  # CA bundle the agent trusts; None: the system store
    insecure: bool = False  # the agent's Insecure option: no certificate verification
    cert: str | None = None  # client certificate (PEM) and its key, for devices that require one
    key: str | None = None
    vdom: str | None = None
    adom: str | None = None
    token_in: str = "header"  # "query" sends ?access_token= as some agents do
    user: str | None = None  # log in as this admin instead of using an API key
    password: str | None = None
    session: str | None = None  # a session kept from an earlier login (FortiOS key, FortiManager id)
    login: str = "authentication"  # FortiOS: or "logincheck", the form login alone
    accept_banner: bool = False  # FortiOS: accept the post-login disclaimer on the user's behalf
    trusthost_user: str | None = None  # FortiManager trusted-hosts mode: this admin's trusted hosts
    timeout: float = DEFAULT_TIMEOUT
    write_check: bool = False
    # How the agent deviates from a correct one; the Python API only (no command-line option).
    csrf: bool = True  # echo the CSRF token on writes of a cookie session
    workspace_lock: bool = True  # lock, commit and unlock around writes in workspace mode

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.username is not None or parts.query or parts.fragment:
            # A credential in the URL would be printed in the report and the JSON: refuse it unseen.
            bare = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if _port_or_none(parts) else ''}"
            raise ValueError(f"give the device URL as {bare}, without a user, password, query or fragment; "
                             "pass credentials with --token, or --user and --password")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{self.url!r} is not a device URL; expected https://HOST[:PORT]")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        try:
            _ = parts.port  # urllib parses the port lazily: reading it is the check
        except ValueError:
            raise ValueError(f"{self.url!r} has an invalid port") from None
        for option, path in (("--ca", self.ca), ("--cert", self.cert), ("--key", self.key)):
            if path and not os.path.isfile(path):
                raise ValueError(f"{option} {path}: no such file")
        if self.timeout <= 0:
            raise ValueError("--timeout must be more than 0 seconds")
        if self.login not in ("authentication", "logincheck"):
            raise ValueError(f"--login {self.login!r} is not one of authentication, logincheck")
        if self.password is not None and not self.user:
            raise ValueError("--password needs --user")

    @property
    def auth(self) -> str:
        """How the agent authenticates: its kept session, a password login, or an API key."""
        return "session" if self.session else "password" if self.user else "token"

    @property
    def cli_complete(self) -> bool:
        """Whether :meth:`argv` says everything (an agent that omits CSRF or the lock cannot be said)."""
        return self.csrf and self.workspace_lock

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host, "__post_init__ refuses a URL without a host"
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def argv(self) -> list[str]:
        """The ``mockfgt diagnose`` arguments that describe this target (the token included)."""
        args = [self.url, "--kind", self.kind, "--timeout", f"{self.timeout:g}"]
        options = {"--token": self.token, "--ca": self.ca, "--cert": self.cert, "--key": self.key,
                   "--vdom": self.vdom, "--adom": self.adom, "--user": self.user, "--password": self.password,
                   "--session": self.session, "--trusthost-user": self.trusthost_user}
        # OPTION=VALUE: a value starting with '-' (a random password may) is not taken for an option.
        args += [f"{option}={value}" for option, value in options.items() if value]
        if self.token_in != "header":
            args += ["--token-in", self.token_in]
        if self.login != "authentication":
            args += ["--login", self.login]
        flags = (("--insecure", self.insecure), ("--accept-banner", self.accept_banner),
                 ("--write-check", self.write_check))
        return args + [flag for flag, on in flags if on]

    def agent(self, **changes) -> Agent:
        agent = Agent(kind=self.kind, token=self.token, token_in=self.token_in, vdom=self.vdom,
                      adom=self.adom, write=self.write_check, auth=self.auth, user=self.user,
                      password=self.password, session=self.session, login=self.login, csrf=self.csrf,
                      accept_banner=self.accept_banner, workspace_lock=self.workspace_lock,
                      trusthost_user=self.trusthost_user, probe_name=WRITE_PREFIX + uuid.uuid4().hex[:8])
        return dataclasses.replace(agent, **changes)


@dataclass
class Step:
    """One layer's result. ``code`` is None when the step was not run."""

    name: str
    code: str | None = None
    summary: str = ""
    details: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fail(self, code: str, summary: str, *notes: str) -> Step:
        self.code, self.summary = code, summary
        self.notes += [n for n in notes if n]
        return self

    def ok(self, summary: str, *notes: str) -> Step:
        return self.fail(OK, summary, *notes)


@dataclass
class Report:
    target: Target
    steps: list[Step]

    @property
    def verdict(self) -> str:
        return next((s.code for s in self.steps if s.code not in (None, OK)), OK)

    @property
    def deciding_step(self) -> str:
        return next((s.name for s in self.steps if s.code not in (None, OK)), "")

    def to_dict(self) -> dict:
        t = self.target
        return {
            "url": t.url, "kind": t.kind, "insecure": t.insecure, "vdom": t.vdom, "adom": t.adom,
            "verdict": self.verdict, "title": TITLES[self.verdict], "deciding_step": self.deciding_step,
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "guidance": GUIDANCE[self.verdict],
        }

    def render(self) -> str:
        kind = "FortiManager" if self.target.kind == "fortimanager" else "FortiGate"
        lines = [f"mockfgt diagnose: {self.target.url} ({kind})", ""]
        for step in self.steps:
            lines += _render_step(step)
        verdict = self.verdict
        lines += ["", f"Verdict: {verdict}" + ("" if verdict == OK else f" ({TITLES[verdict]}, at {self.deciding_step})")]
        if verdict != OK:
            lines.append("What to do:")
            lines += [f"  - {tip}" for tip in GUIDANCE[verdict]]
        return "\n".join(lines)


def _render_step(step: Step) -> list[str]:
    label = step.code if step.code is not None else "-"
    lines = [f"  {label:<7} {step.name:<15} {step.summary}"]
    pad, width = " " * 26, max((len(k) for k in step.details), default=0) + 2
    lines += [f"{pad}{key:<{width}}{value}" for key, value in step.details.items()]
    lines += [f"{pad}! {note}" for note in step.notes]
    return lines


# -- running the steps ----------------------------------------------------------------------------
def diagnose(target: Target) -> Report:
    """Probe ``target`` layer by layer; steps after the first failure are reported as not run."""
    probe = _Probe(target)
    steps: list[Step] = []
    for name, check in (("resolve", probe.resolve), ("tcp", probe.tcp), ("tls", probe.tls),
                        ("authentication", probe.authentication), ("authorization", probe.authorization)):
        failed = next((s for s in steps if s.code not in (None, OK)), None)
        if failed is not None:
            why = " (the credential is never sent where TLS failed)" if failed.name == "tls" and name == "authentication" else ""
            steps.append(Step(name, None, f"not run: {failed.name} failed{why}"))
            continue
        steps.append(check(Step(name)))
    probe.logout()
    return Report(target, steps)


@dataclass(frozen=True)
class _Session:
    """What one handshake established: version, cipher and the chain the device sent (leaf first)."""

    version: str
    cipher: str
    chain: list[x509.Certificate]


class _Probe:
    """The state the steps share: addresses found, the TLS findings, the HTTP settings."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.addresses: list[tuple] = []  # getaddrinfo entries
        self.reachable: tuple | None = None  # the entry TCP reached
        self.agent = target.agent()
        self.jar = http.cookiejar.CookieJar()  # a /logincheck session lives in cookies
        self.talk = Conversation(self.agent, self._send, lambda: [(c.name, c.value) for c in self.jar])

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

    # -- 4. authentication -----------------------------------------------------------------------
    def authentication(self, step: Step) -> Step:
        t = self.target
        check = dataclasses.replace(self.agent, vdom=None, write=False)  # the credential alone
        for call in self._pending("login", "banner"):
            answer = self._call(step, call)
            if answer is None or not answer.ok:
                return self._credential_refused(step, check, call, answer)
        if self.talk.memory.logged_in:
            step.details["login"] = _login_detail(self.talk.memory.logged_in, t)
        if t.auth == "token" and not t.token:
            step.notes.append("No credential was given (--token, or --user and --password).")
        status_call = next(c for c in self.agent.calls() if c.role == "status")
        answer = self._call(step, status_call, check)
        if answer is None or not answer.ok:
            return self._credential_refused(step, check, status_call, answer)
        if not _speaks_the_api(t.kind, answer.body):
            api = "FortiManager JSON-RPC" if t.kind == "fortimanager" else "FortiOS REST"
            other = "fortigate" if t.kind == "fortimanager" else "fortimanager"
            return step.fail(CONNECTION, f"the port answers HTTP, but not the {api} API ({answer.seen})",
                             f"Check the port (another service answers here), or whether the device is a "
                             f"{'FortiGate' if other == 'fortigate' else 'FortiManager'} (--kind {other}).")
        step.details.update(_status_details(t.kind, answer.body))
        if t.kind == "fortimanager":
            step.details.update(self._workspace_details())
        if t.token_in == "query" and t.auth == "token":
            step.notes.append("The token travels in the URL (?access_token=): FortiOS 7.4.5+ and FortiManager "
                              "7.4.7/7.6.2+ refuse that by default. Prefer Authorization: Bearer.")
        who = {"token": "the API key" if t.token else "no credential", "password": "the login",
               "session": "the kept session"}[t.auth]
        return step.ok(f"{who} is accepted ({answer.seen})")

    def _pending(self, *roles: str):
        """The agent's calls of these roles that it makes, decided one by one as it learns."""
        for call in self.agent.calls():
            if call.role in roles and self.talk.wants(call):
                yield call

    def _credential_refused(self, step: Step, agent: Agent, call: Call, answer: Answer | None) -> Step:
        if answer is None:  # a transport failure, already recorded in the step
            return step
        t, seen = self.target, answer.seen
        if answer.code == AUTHENTICATION:
            step.fail(answer.code, f"the device refused the {_credential_word(call)} ({seen})",
                      self._refusal_advice(call, seen))
            if t.token and t.token_in == "query" and self._works_as_bearer(agent, call):
                step.notes.append("The same token works as Authorization: Bearer: this device refuses a token in "
                                  "the URL (?access_token=). Send it in the header instead.")
            return step
        what = "the login" if call.role in ("login", "banner") else "the status call"
        return step.fail(answer.code, f"{what} was refused ({seen})", self._permission_advice(call, seen))

    def _works_as_bearer(self, agent: Agent, call: Call) -> bool:
        answer = self._call(Step("retry"), call, dataclasses.replace(agent, token_in="header"))
        return answer is not None and answer.ok

    def _workspace_details(self) -> dict[str, str]:
        """Workspace mode as the agent learns it (a locking agent then locks the ADOM to write)."""
        call = next(c for c in self.agent.calls() if c.role == "mode")
        answer = self._call(Step("workspace"), call)
        data = (jsonrpc_result(answer.body) or {}).get("data") if answer and answer.ok else None
        if not isinstance(data, dict):
            return {}
        return {"workspace": str(data.get("workspace-mode", "?")), "ADOMs": str(data.get("adom-status", "?"))}

    def _refusal_advice(self, call: Call, seen: str) -> str:
        t = self.target
        if seen == "HTTP 429":
            return ("The device has blocked this source address for a while after repeated failed logins "
                    "(admin-lockout-threshold / admin-lockout-duration). Wait, then fix the credential.")
        if t.kind == "fortimanager":
            return _fortimanager_refusal_advice(t, call, seen)
        if call.role == "login":
            return (f"The login as {t.user} failed ({seen}): check the admin's user name and password, and "
                    "that the agent's address is among the admin's trusted hosts. After three failures in a "
                    "minute the device blocks the address (HTTP 429).")
        if t.auth == "session":
            return ("The device refuses the session key the agent kept: sessions end after admintimeout of "
                    "idleness, at logout and at reboot. Log in again when a call answers 401 (here: --user and "
                    "--password), or use an API token.")
        if self.talk.memory.logged_in:
            return ("The login succeeded, yet the device refuses the session: a post-login disclaimer "
                    "(post-login-banner) waits to be accepted. Accept it after logging in (POST /logindisclaimer "
                    "confirm=1, or ack_post_disclaimer in /api/v2/authentication; here: --accept-banner), or "
                    "disable post-login-banner on the device.")
        return ("FortiOS answers the same 401 for an unknown, regenerated or deleted token and for a source address "
                "outside the API user's trusted hosts (mind NAT): compare the token, then the trusted hosts.")

    def _permission_advice(self, call: Call, seen: str) -> str:
        t = self.target
        if t.kind == "fortigate" and call.method in ("POST", "PUT", "DELETE") and self.talk.memory.logged_in == "cookie":
            sent = "sent no X-CSRFTOKEN" if not t.csrf else "sent the CSRF token"
            return (f"The write of this cookie session (/logincheck) {sent}: FortiOS answers a write without the "
                    "token with the same 403 as a missing permission. Echo the ccsrftoken cookie's value (quotes "
                    "stripped) in X-CSRFTOKEN on every POST, PUT and DELETE, or log in with /api/v2/authentication "
                    "for a session key; then check the admin profile's firewall access.")
        return _permission_advice(t, call, seen)

    # -- 5. authorization ------------------------------------------------------------------------
    def authorization(self, step: Step) -> Step:
        t = self.target
        for call in _read_calls(self.agent):
            answer = self._call(step, call)
            if answer is None:
                return step
            if not answer.ok:
                return step.fail(answer.code, f"reading {_what(call)} was refused ({answer.seen})",
                                 self._read_refusal_advice(call, answer.seen))
            step.details[_what(call)] = _count(t.kind, answer.body)
        if t.write_check and not self._write_check(step):
            return step
        if t.trusthost_user and not self._trusthost_check(step):
            return step
        if t.write_check:
            return step.ok("the agent may read and write address objects")
        return step.ok(f"address objects and groups are readable in {_scope(t)} (writes not checked: --write-check)")

    def _write_check(self, step: Step) -> bool:
        """Create the clearly named test address, then delete it (under the ADOM lock in workspace mode)."""
        name = self.agent.probe_name
        for call in self._pending("lock", "write", "cleanup", "commit", "unlock"):
            answer = self._call(step, call)
            if answer is None:
                return False
            did = {"write": "created", "cleanup": "deleted"}.get(call.role)
            if not answer.ok:
                what = f"the test address {name} could not be {did}" if did else f"{call.label} was refused"
                leftover = f"Delete {name} by hand." if call.role in ("cleanup", "commit") else ""
                step.fail(answer.code, f"{what} ({answer.seen})", self._permission_advice(call, answer.seen), leftover)
                return False
            key = f"test address {did}" if did else f"workspace {call.role}"
            step.details[key] = f"{name} ({answer.seen})" if did else answer.seen
        return True

    def _trusthost_check(self, step: Step) -> bool:
        """Read the admin's trusted hosts and write them back unchanged, as trusted-hosts mode does."""
        for call in self._pending("trusthosts-read", "trusthosts"):
            answer = self._call(step, call)
            if answer is None:
                return False
            if not answer.ok:
                step.fail(answer.code, f"{call.label} was refused ({answer.seen})",
                          f"Changing the trusted hosts of admin {self.target.trusthost_user} needs the Super_User "
                          "profile: give the API user Super_User (or maintain trusted hosts by hand).")
                return False
            step.details[f"trusted hosts ({call.role.replace('trusthosts', '').strip('-') or 'written back'})"] = answer.seen
        return True

    def _read_refusal_advice(self, call: Call, seen: str) -> str:
        t = self.target
        if t.kind == "fortigate" and t.vdom:
            retry = self._call(Step("retry"), call, dataclasses.replace(self.agent, vdom=None))
            if retry is not None and retry.ok:
                return (f"The same read works without ?vdom=: the VDOM '{t.vdom}' is not assigned to the API "
                        "user. Assign it (config system api-user, set vdom).")
        return self._permission_advice(call, seen)

    def logout(self) -> None:
        """Lift a workspace lock left behind and end the session the login opened."""
        self.talk.close()

    # -- HTTP ------------------------------------------------------------------------------------
    def _call(self, step: Step, call: Call, agent: Agent | None = None) -> Answer | None:
        """Send one call as the agent would; None when it failed below HTTP (recorded in ``step``)."""
        try:
            return self.talk.ask(call, agent)
        except Exception as exc:  # what the agent would meet: classified, explained, never raised
            self._transport_failed(step, call, exc)
            return None

    def _send(self, method: str, path: str, headers: dict, body: bytes | None) -> tuple[int, bytes]:
        handlers = [urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar)]
        if self.target.url.startswith("https:"):  # the agent connects directly, trusting what it trusts
            handlers.append(urllib.request.HTTPSHandler(context=_agent_context(self.target)))
        request = urllib.request.Request(self.target.base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.build_opener(*handlers).open(request, timeout=self.target.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:  # an answer: judged like any other
            return exc.code, exc.read()

    def _transport_failed(self, step: Step, call: Call, exc: BaseException) -> None:
        t, code = self.target, _classify(exc)
        reason = (getattr(getattr(exc, "reason", None), "reason", None) or getattr(exc, "reason", "") or "")
        if code == TIMEOUT:
            step.fail(TIMEOUT, f"no HTTP answer to the {call.role} call within {t.timeout:g} s",
                      "TLS went through, but the device did not answer in time: it may be overloaded (CPU, "
                      "memory, conserve mode).")
        elif code == TLS and "CERTIFICATE_REQUIRED" in str(reason).upper():
            step.fail(TLS, "the device ended the TLS session: it requires a client certificate",
                      "TLS 1.3 reports a missing client certificate only after the handshake.", _client_cert_note(t))
        else:
            step.fail(code, f"the {call.role} call failed: {_short(exc)}")


# -- TLS helpers ------------------------------------------------------------------------------------
def _inspection_context(t: Target) -> ssl.SSLContext:
    """A context that accepts any certificate, so a certificate can be looked at before it is judged."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if t.cert:
        context.load_cert_chain(t.cert, t.key)
    return context


def _verifying_context(t: Target) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=t.ca) if t.ca else ssl.create_default_context()
    context.hostname_checks_common_name = False  # judge as strict clients do (requests/urllib3 2, Go): SANs only
    if t.cert:
        context.load_cert_chain(t.cert, t.key)
    return context


def _agent_context(t: Target) -> ssl.SSLContext:
    return _inspection_context(t) if t.insecure else _verifying_context(t)


def _peer_chain(tls: ssl.SSLSocket) -> list[x509.Certificate]:
    """The certificates the device sent, leaf first (3.13+ has the public method; 3.10+ the private one)."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(tls._sslobj, "get_unverified_chain", None)  # type: ignore[attr-defined]
    if getter is not None:
        chain = getter() or []
        ders = [c if isinstance(c, bytes) else c.public_bytes(2) for c in chain]  # 2 = _ssl.ENCODING_DER
    else:
        ders = [tls.getpeercert(binary_form=True)]
    return [x509.load_der_x509_certificate(d) for d in ders if d]


def _trusted_certificates(ca: str | None) -> list[x509.Certificate]:
    """The CAs the agent trusts: the given bundle, or the system store's bundle file."""
    return list(_load_bundle(ca or ssl.get_default_verify_paths().cafile or ""))


@functools.lru_cache(maxsize=8)
def _load_bundle(path: str) -> tuple[x509.Certificate, ...]:
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            # System stores carry a few old roots cryptography frowns upon; they still count as trusted.
            warnings.simplefilter("ignore")
            return tuple(x509.load_pem_x509_certificates(f.read()))
    except (OSError, ValueError):
        return ()


def _certificate_details(cert: x509.Certificate) -> dict[str, str]:
    dns, ips = _sans(cert)
    return {
        "subject": cert.subject.rfc4514_string() or "(empty)",
        "SANs": ", ".join([*(f"DNS:{n}" for n in dns), *(f"IP:{i}" for i in ips)]) or "none",
        "valid": _validity(cert),
        "issuer": cert.issuer.rfc4514_string() + (" (self-signed)" if _self_signed(cert) else ""),
    }


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]


def _validity(cert: x509.Certificate) -> str:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    now = dt.datetime.now(dt.UTC)
    span = f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
    if now > end:
        return f"{span} (expired {_days(now - end)} ago)"
    if now < start:
        return f"{span} (not valid for another {_days(start - now)})"
    return f"{span} ({_days(end - now)} left)"


def _days(delta: dt.timedelta) -> str:
    days = delta.days
    return f"{days} days" if days != 1 else "1 day" if delta.total_seconds() >= 86400 else "less than a day"


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _name(name: x509.Name) -> str:
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={cn[0].value!s}" if cn else name.rfc4514_string() or "(empty name)"


def _chain_verdict(chain: list[x509.Certificate], trusted: list[x509.Certificate]) -> str:
    """Whether the device sends what a client needs to build a path to a root it may trust."""
    sent = f"{len(chain)} certificate{'s' if len(chain) != 1 else ''} sent"
    leaf, top = chain[0], chain[-1]
    if _self_signed(leaf):
        return f"{sent}; self-signed: there is no chain, a client must trust this very certificate"
    for lower, upper in zip(chain, chain[1:]):
        if lower.issuer != upper.subject:
            return f"{sent}; out of order: {_name(lower.subject)} is not issued by {_name(upper.subject)}"
    if _self_signed(top):
        return f"{sent}; complete, up to the root {_name(top.subject)}"
    if any(top.issuer == c.subject for c in trusted):
        return f"{sent}; complete: {_name(top.issuer)} is a trusted CA"
    return (f"{sent}; incomplete or untrusted: the issuer {_name(top.issuer)} was not sent and is not a trusted CA "
            "(a missing intermediate and an untrusted CA look the same to a client)")


def _verification_advice(code: int, host: str, leaf: x509.Certificate) -> str:
    """What a verify error means for this certificate and what to do, in the vendor's terms."""
    dns, ips = _sans(leaf)
    names = ", ".join(dns + ips) or "no name at all (no SAN)"
    if code == 10:
        return f"The certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}. Renew the device's HTTPS certificate."
    if code == 9:
        return (f"The certificate is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: the clock of "
                "the device or of the agent host is wrong (check NTP), or the certificate must be reissued.")
    if code == 18:
        factory = "Fortinet" in [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        return (("This is the device's factory certificate (O=Fortinet, CN=<serial>). " if factory else
                 "The certificate is self-signed. ")
                + "Install a certificate from a CA the agent trusts, trust this very certificate (--ca), or enable "
                  "the agent's Insecure option (fine in a lab, risky elsewhere).")
    if code == 19:
        return "The chain ends at a self-signed root the agent does not trust: install that root on the agent host."
    if code in (2, 20, 21):
        return (f"The issuer {_name(leaf.issuer)} is not among the CAs the agent trusts, and the device did not "
                "send it. If it is an internal CA, install its root on the agent host (or pass it with --ca); if it "
                "is an intermediate, install the full chain on the device.")
    if code == 62 and not dns + ips and host in [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]:
        return (f"The certificate names {host} only in its Common Name, with no SAN: requests and Go ignore the Common "
                "Name (curl and Python's ssl module still accept it). Reissue it with a SAN for each name and address "
                "the agent uses.")
    if code in (62, 64):
        by = "IP address" if code == 64 else "name"
        fix = ("connect by a name it carries, or reissue it with an IP SAN" if code == 64 and dns
               else f"connect by a name it carries, or reissue it for {host}")
        return f"The agent connects by {by} {host}, but the certificate names {names}: {fix}."
    if code == 66:
        key = leaf.public_key()
        bits = f"{key.key_size}-bit " if hasattr(key, "key_size") else ""
        return (f"The certificate's {bits}key is too weak for current clients (OpenSSL at security level 2 wants "
                "2048-bit RSA). Install a new certificate with a 2048-bit or larger RSA key, or an ECDSA key.")
    if code == 68:
        digest = leaf.signature_hash_algorithm.name.upper() if leaf.signature_hash_algorithm else "a weak hash"
        return (f"The certificate is signed with {digest}, which current clients refuse. Install a new certificate "
                "signed with SHA-256 or stronger.")
    return "Check the certificate on the device; OpenSSL could not verify it."


def _client_cert_note(t: Target) -> str:
    if t.cert:
        return ("The device did not accept the client certificate given: it must come from a CA the API user's "
                "PKI peer group trusts.")
    return ("The API user requires a client certificate (PKI peer group): configure the agent with one "
            "(here: --cert and --key). Insecure does not help.")


# -- HTTP helpers -----------------------------------------------------------------------------------
def _scope(t: Target) -> str:
    if t.kind == "fortimanager":
        return f"ADOM {t.adom or 'root'}"
    return f"VDOM {t.vdom}" if t.vdom else "the API user's default VDOM"


def _read_calls(agent: Agent) -> list[Call]:
    if agent.kind == "fortimanager":
        adom = agent.adom or "root"
        return [Call("read", "POST", "/jsonrpc", jsonrpc("get", f"/pm/config/adom/{adom}/obj/firewall/{table}"))
                for table in ("address", "addrgrp")]
    return [Call("read", "GET", f"/api/v2/cmdb/firewall/{table}") for table in ("address", "addrgrp")]


def _what(call: Call) -> str:
    url = call.body["params"][0]["url"] if call.body and "params" in call.body else call.path
    return "address groups" if url.rstrip("/").endswith("addrgrp") else "address objects"


def _count(kind: str, body: bytes) -> str:
    try:
        data = (jsonrpc_result(body) or {}).get("data") if kind == "fortimanager" else json.loads(body).get("results")
    except (ValueError, AttributeError):
        return "readable"
    return f"{len(data)} readable" if isinstance(data, list) else "readable"


def _speaks_the_api(kind: str, body: bytes) -> bool:
    """Whether a status answer comes from the API of this kind (a JSON-RPC result, a FortiOS envelope)."""
    if kind == "fortimanager":
        return jsonrpc_result(body) is not None
    try:
        envelope = json.loads(body)
    except ValueError:
        return False
    return isinstance(envelope, dict) and "results" in envelope


def _status_details(kind: str, body: bytes) -> dict[str, str]:
    """What the status call says about the device, for the report."""
    try:
        if kind == "fortimanager":
            data = (jsonrpc_result(body) or {}).get("data") or {}
            keys = {"hostname": "Hostname", "model": "Platform Type", "version": "Version", "serial": "Serial Number"}
            return {label: str(data[key]) for label, key in keys.items() if key in data}
        envelope = json.loads(body)
    except (ValueError, AttributeError):
        return {}
    results = envelope.get("results") if isinstance(envelope.get("results"), dict) else {}
    details = {"hostname": results.get("hostname"), "model": results.get("model") or results.get("model_name"),
               "version": envelope.get("version") and f"{envelope['version']} build {envelope.get('build', '?')}",
               "serial": envelope.get("serial")}
    return {k: str(v) for k, v in details.items() if v}


def _fortimanager_refusal_advice(t: Target, call: Call, seen: str) -> str:
    if call.role == "login" or seen == "code -22":
        return "The login failed: check the user name and password (and that the admin has rpc-permit)."
    if t.auth == "session":
        return ("The session id the agent kept is refused (-11): it idled out (idle_timeout_api) or was logged "
                "out. Log in again (exec /sys/login/user; here: --user and --password) whenever a session that "
                "worked gets -11.")
    return ("FortiManager answers -11 for an unknown or regenerated API key, an expired session, a key sent in "
            "the URL (7.4.7/7.6.2 and later) and an admin without rpc-permit: compare the key with the device's.")


def _credential_word(call: Call) -> str:
    return {"login": "login", "banner": "disclaimer acceptance"}.get(call.role, "credential")


def _login_detail(how: str, t: Target) -> str:
    """How the login went, for the report: which URL, and what the agent holds now."""
    if how == "key":
        return f"{t.user}: session key from /api/v2/authentication"
    if how == "cookie":
        banner = ", post-login disclaimer accepted" if t.accept_banner else ""
        return f"{t.user}: cookie session from /logincheck (CSRF token echoed on writes){banner}"
    return f"{t.user}: session from exec /sys/login/user"


def _permission_advice(t: Target, call: Call, seen: str) -> str:
    if t.kind == "fortimanager":
        if seen == "code -10147":
            return "Workspace mode is on: lock the ADOM before writing, then commit and unlock."
        if call.role in ("write", "cleanup"):
            return "The admin's rpc-permit allows reads only: set rpc-permit read-write."
        return f"The admin's profile lacks ADOM '{t.adom or 'root'}' (or rpc-permit): grant it."
    if call.role in ("write", "cleanup"):
        return "The API user's admin profile has firewall read only: give it firewall read-write (fwgrp)."
    return "The API user's admin profile gives no firewall access: grant firewall read-write (fwgrp)."


# -- small helpers ----------------------------------------------------------------------------------
def _classify(exc: BaseException) -> str:
    try:
        return classify(exc)
    except ValueError:
        return CONNECTION


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _short(reason)
    text = getattr(exc, "strerror", None) or (reason if isinstance(reason, str) else None) or str(exc)
    return text or type(exc).__name__


def is_ip(host: str) -> bool:
    """An IP literal (SNI must not carry one), not a host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- command line -----------------------------------------------------------------------------------
def add_parser(sub) -> None:
    """Register ``diagnose`` on the ``mockfgt`` command's subparsers."""
    p = sub.add_parser("diagnose", help="probe a device (real or mock) layer by layer and say what to fix",
                       description="Probe a FortiGate or FortiManager (real or mock) one layer at a time and say what to fix.")
    p.add_argument("url", help="https://HOST[:PORT] of the device")
    p.add_argument("--token", help="API token (use - to read it from standard input)")
    p.add_argument("--kind", choices=KINDS, default="fortigate")
    p.add_argument("--ca", help="CA bundle the agent trusts (default: the system store)")
    p.add_argument("--insecure", action="store_true", help="as the agent's Insecure option: do not verify the certificate")
    p.add_argument("--cert", help="client certificate (PEM), for devices that require one")
    p.add_argument("--key", help="the client certificate's key (PEM)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--vdom", help="FortiGate VDOM the agent works in")
    scope.add_argument("--adom", help="FortiManager ADOM the agent works in (default: root)")
    p.add_argument("--token-in", choices=("header", "query"), default="header",
                   help="where the agent sends the token (query: ?access_token=)")
    p.add_argument("--user", help="log in as this admin instead of using an API key (FortiOS: /api/v2/authentication, "
                                  "falling back to /logincheck; FortiManager: exec /sys/login/user)")
    p.add_argument("--password", help="the admin's password (use - to read it from standard input)")
    p.add_argument("--login", choices=("authentication", "logincheck"), default="authentication",
                   help="FortiOS: how to log in (logincheck: the /logincheck form and its cookies only)")
    p.add_argument("--accept-banner", action="store_true",
                   help="FortiOS: accept the post-login disclaimer, as the agent is configured to")
    p.add_argument("--session", help="a session the agent kept from an earlier login (FortiOS session key, "
                                     "FortiManager session id), used instead of logging in")
    p.add_argument("--trusthost-user", metavar="ADMIN",
                   help="FortiManager trusted-hosts mode: read ADMIN's trusted hosts and write them back unchanged")
    p.add_argument("--write-check", action="store_true",
                   help=f"also create and delete one address ({WRITE_PREFIX}<random>)")
    p.add_argument("--timeout", type=argtypes.seconds, default=DEFAULT_TIMEOUT, help="seconds per network step (default: 10)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(run=command)


def command(args) -> int:
    try:
        target = Target(
            url=args.url, token=_secret(args.token), kind=args.kind, ca=args.ca, insecure=args.insecure,
            cert=args.cert, key=args.key or args.cert, vdom=args.vdom, adom=args.adom, token_in=args.token_in,
            user=args.user, password=_secret(args.password), session=_secret(args.session), login=args.login,
            accept_banner=args.accept_banner, trusthost_user=args.trusthost_user, timeout=args.timeout,
            write_check=args.write_check,
        )
    except ValueError as exc:
        print(f"mockfgt diagnose: {exc}", file=sys.stderr)
        return 2
    report = diagnose(target)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    return 0 if report.verdict == OK else 1


def _secret(value: str | None) -> str | None:
    return sys.stdin.readline().strip() if value == "-" else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mockfgt")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diagnose", *(argv or sys.argv[1:])])
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
