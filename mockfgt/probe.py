"""The reference agent: what a typical address-managing agent does, and the code it should report.

``probe(client)`` runs the agent's usual calls against whatever ``client`` points at (a mock device's
:attr:`~mockfgt.Device.client`, or settings you build for a real device) with the standard library
only, and reports the first failure's code. The CLI, the benchmarks and the catalogue tests use it;
the conformance matrix and ``diagnose`` run the same flow through other HTTP stacks.

What the agent sends and how each answer is judged is :mod:`mockfgt.flows` (its login with a
session key or the ``/logincheck`` form, CSRF, the post-login banner, kept sessions; FortiManager
JSON-RPC with workspace lock and trusted-hosts mode): this module is its urllib transport, with a
cookie jar for the ``/logincheck`` session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .classify import classify
from .codes import AUTHENTICATION
from .flows import Agent, Conversation, KeptFlow, Outcome, run_flow
from .transport import UrllibSender

__all__ = ["ProbeResult", "ReferenceAgent", "probe", "first_call"]


@dataclass(frozen=True)
class ProbeResult:
    code: str  # "ok" or 202000..202004
    step: str  # the call that decided it, e.g. "GET /api/v2/monitor/system/status"
    detail: str  # HTTP status, JSON-RPC code or the exception, for humans
    role: str = ""  # the deciding call's role in the flow (login, status, read, write...), "all" when ok


def first_call(client: Agent, kind: str) -> dict:
    """The JSON body of the agent's first call on a device of this kind (a FortiManager's login, or
    ``/sys/status``); an error when that call has no body."""
    agent = client if client.kind == kind else replace(client, kind=kind)
    _, _, _, body = Conversation(agent, send=None).request(agent.calls()[0])
    if body is None:
        raise ValueError(f"the first call of an agent of a {kind} sends no body")
    return json.loads(body)


def _explain(exc: Exception) -> tuple[str, str]:
    """Classify what a call raised; the probe reports what a client would, it never raises it."""
    try:
        return classify(exc), repr(exc)
    except ValueError:
        raise exc from None


def probe(client: Agent, *, kind: str | None = None, timeout: float = 10.0) -> ProbeResult:
    """Run the reference agent once and report the first failure's code, or ``ok``."""
    send = UrllibSender(client.url, client.ssl_context(), timeout)
    agent = client if kind in (None, client.kind) else replace(client, kind=kind)
    return _result(run_flow(agent, send, _explain, send.cookies))


def _result(outcome: Outcome) -> ProbeResult:
    detail = outcome.surface
    if outcome.role == "login" and outcome.code == AUTHENTICATION and not detail.startswith("HTTP "):
        detail = f"login refused: {detail}"  # answered, in the body: LOGIN_FAILED, /logincheck 0, -22
    return ProbeResult(outcome.code, outcome.label, detail, outcome.role)


class ReferenceAgent:
    """The reference agent as one instance that polls: each :meth:`run` is one poll, and its session
    and cookies live from one to the next (:class:`mockfgt.flows.KeptFlow` says how it recovers).
    urllib opens a connection per request, so it keeps no connection itself.

        agent = ReferenceAgent(device.client)
        for step in device.walk_phases():
            if step.reconfigure:
                agent.reconfigure(step.reconfigure)
            step.check(agent.run().code)
    """

    def __init__(self, client: Agent, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._flow = self._new_flow(client)

    def _new_flow(self, client: Agent) -> KeptFlow:
        send = UrllibSender(client.url, client.ssl_context(), self.timeout)
        return KeptFlow(client, send, _explain, send.cookies)

    def run(self) -> ProbeResult:
        self._flow.send.timeout = self.timeout
        return _result(self._flow.run())

    def reconfigure(self, client: Agent) -> None:
        """New settings (a remedy's): the old session is logged out, its trust and URL replaced."""
        self._flow.close()
        self._flow = self._new_flow(client)

    def close(self) -> None:
        self._flow.close()

    def __enter__(self) -> ReferenceAgent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
