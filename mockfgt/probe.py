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

import http.cookiejar
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, replace

from .classify import classify
from .codes import AUTHENTICATION
from .flows import Agent, Conversation, run_flow

__all__ = ["ProbeResult", "probe", "first_call"]


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


def _opener(client, jar: http.cookiejar.CookieJar):
    handlers = [urllib.request.ProxyHandler({}),  # loopback only: never a proxy from the environment
                urllib.request.HTTPCookieProcessor(jar)]
    if client.url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=client.ssl_context()))
    return urllib.request.build_opener(*handlers)


def _explain(exc: Exception) -> tuple[str, str]:
    """Classify what a call raised; the probe reports what a client would, it never raises it."""
    try:
        return classify(exc), repr(exc)
    except ValueError:
        raise exc from None


def probe(client: Agent, *, kind: str | None = None, timeout: float = 10.0) -> ProbeResult:
    """Run the reference agent once and report the first failure's code, or ``ok``."""
    jar = http.cookiejar.CookieJar()
    opener = _opener(client, jar)

    def send(method, path, headers, body):
        request = urllib.request.Request(client.url + path, data=body, method=method, headers=headers)
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:  # an answer: the flow judges it
            return exc.code, exc.read()

    agent = client if kind in (None, client.kind) else replace(client, kind=kind)
    outcome = run_flow(agent, send, _explain, lambda: [(c.name, c.value) for c in jar])
    detail = outcome.surface
    if outcome.role == "login" and outcome.code == AUTHENTICATION and not detail.startswith("HTTP "):
        detail = f"login refused: {detail}"  # answered, in the body: LOGIN_FAILED, /logincheck 0, -22
    return ProbeResult(outcome.code, outcome.label, detail, outcome.role)
