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
lock) can be reproduced through the Python API (:class:`mockfgt.agent.Agent` ``csrf``, ``workspace_lock``).

Each step ends ``ok`` or with one of the agent's codes (202000..202004); the first failure decides
the verdict, and the steps after it are not run (the token is never sent to a device whose
certificate did not verify). With ``--insecure`` a certificate that does not verify is reported as a
warning, because the agent with Insecure on would not notice either.

The package: ``target`` (the agent's settings, checked, and as a command line), ``report`` (steps and
verdict), ``network`` (steps 1 to 3), ``certificates`` (what a certificate and chain say), ``api``
(steps 4 and 5), ``advice`` (the wording of what to do), ``cli``. Client side only: it imports nothing
of the mock device, so it works the same against a real device. The exit status is 0 only when the
verdict is ``ok``.
"""

from __future__ import annotations

import dataclasses
import http.cookiejar
import uuid

from .. import kinds
from ..agent import Agent
from ..codes import OK
from ..flows import Conversation
from .api import ApiSteps
from .cli import add_parser, command, main
from .network import NetworkSteps, is_ip
from .report import Report, Step
from .target import STEPS, WRITE_PREFIX, argv, checked, cli_complete

__all__ = ["STEPS", "WRITE_PREFIX", "Probe", "Report", "Step", "add_parser", "argv", "checked", "cli_complete",
           "command", "diagnose", "is_ip", "main"]


def diagnose(target: Agent) -> Report:
    """Probe the device as ``target`` (the agent) meets it, layer by layer; steps after the first failure
    are reported as not run. ``target.write`` adds the write check."""
    probe = Probe(checked(target))
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


class Probe(NetworkSteps, ApiSteps):
    """The state the steps share: addresses found, the TLS findings, the HTTP settings."""

    def __init__(self, target: Agent) -> None:
        self.target = target
        self.addresses: list[tuple] = []  # getaddrinfo entries
        self.reachable: tuple | None = None  # the entry TCP reached
        self.agent = dataclasses.replace(target, probe_name=WRITE_PREFIX + uuid.uuid4().hex[:8])
        self.kind = kinds.get(target.kind)
        self.jar = http.cookiejar.CookieJar()  # a /logincheck session lives in cookies
        self.talk = Conversation(self.agent, self._send, lambda: [(c.name, c.value) for c in self.jar])
