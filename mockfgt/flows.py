"""What an address-managing agent sends to each kind of device, and what each answer means.

The agent's flow is a short list of :class:`Call`\\ s: a status call that proves the credential, a read
of the objects it manages and, for an agent that writes, the creation and deletion of one address.
The flow is the same whatever HTTP stack sends it: :meth:`Agent.request` turns a call into method,
path, headers and body, and :func:`judge` turns the answer into a code.

Judging needs context, as a good client's does. A FortiGate says what went wrong in the HTTP status
(401 and 429 refuse the credential, 403 refuses the permission). A FortiManager answers HTTP 200 and
puts a JSON-RPC code inside, and its -11 "No permission for the resource" means a refused credential
on the status call or the login, but a missing permission (rpc-permit, ADOM) on any later call.

Client side only: nothing here knows the mock, so it works against a real device.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from .classify import classify_status
from .codes import AUTHENTICATION, AUTHORIZATION, OK

KINDS = ("fortigate", "fortimanager")
PROBE_PREFIX = "mockfgt-probe-"
PROBE_SUBNET = ("192.0.2.1", "255.255.255.255")  # TEST-NET-1: never a real host

# FortiManager JSON-RPC codes that are not -11 but still refuse the agent (reference B.3).
JSONRPC_LOGIN_FAILED = -22
JSONRPC_NO_PERMISSION = -11
JSONRPC_AUTHORIZATION = {
    -10147: "no write permission: workspace mode is on and the ADOM is not locked",
    -20020: "no permission (workflow approval)",
}
CREDENTIAL_ROLES = ("login", "status")


@dataclass(frozen=True)
class Call:
    """One step of the agent's flow: ``role`` says what it proves (status, read, write, cleanup...)."""

    role: str
    method: str
    path: str
    body: dict | None = None


@dataclass(frozen=True)
class Agent:
    """The agent's configuration, as far as the flow cares (trust and TLS are the transport's)."""

    kind: str = "fortigate"
    token: str | None = None
    token_in: str = "header"  # or "query": ?access_token=
    vdom: str | None = None
    adom: str | None = None
    write: bool = False
    user: str | None = None  # FortiManager session login instead of an API key
    password: str | None = None
    probe_name: str = field(default_factory=lambda: PROBE_PREFIX + uuid.uuid4().hex[:8])

    def calls(self) -> list[Call]:
        """The agent's calls, in order."""
        if self.kind == "fortimanager":
            return fortimanager_calls(self)
        return fortigate_calls(self)

    def request(self, call: Call, session: str | None = None) -> tuple[str, str, dict, bytes | None]:
        """(method, path with query, headers, body) for one call."""
        headers: dict[str, str] = {}
        query: dict[str, str] = {}
        if self.token and self.token_in == "query":
            query["access_token"] = self.token
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.kind == "fortimanager":
            body = dict(call.body or {}, id=1, session=session, verbose=1)
        else:
            body = call.body
            if self.vdom:
                query["vdom"] = self.vdom
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        path = call.path + (f"?{urlencode(query)}" if query else "")
        return call.method, path, headers, data


def fortigate_calls(agent: Agent) -> list[Call]:
    """Status probe, list addresses, and (for a writing agent) create and delete one."""
    address = "/api/v2/cmdb/firewall/address"
    calls = [Call("status", "GET", "/api/v2/monitor/system/status"), Call("read", "GET", address)]
    if agent.write:
        subnet = "/".join((PROBE_SUBNET[0], "32"))
        calls += [
            Call("write", "POST", address, {"name": agent.probe_name, "subnet": subnet,
                                            "comment": "created by mockfgt; safe to delete"}),
            Call("cleanup", "DELETE", f"{address}/{quote(agent.probe_name, safe='')}"),
        ]
    return calls


def jsonrpc(method: str, url: str, **params) -> dict:
    return {"method": method, "params": [{"url": url, **params}]}


def fortimanager_calls(agent: Agent) -> list[Call]:
    """Optional login, status, read the ADOM's addresses, (write) add and delete one, optional logout."""
    address = f"/pm/config/adom/{agent.adom or 'root'}/obj/firewall/address"
    calls = []
    if agent.user:
        credentials = {"user": agent.user, "passwd": agent.password or ""}
        calls.append(Call("login", "POST", "/jsonrpc", jsonrpc("exec", "/sys/login/user", data=credentials)))
    calls += [
        Call("status", "POST", "/jsonrpc", jsonrpc("get", "/sys/status")),
        Call("read", "POST", "/jsonrpc", jsonrpc("get", address)),
    ]
    if agent.write:
        data = {"name": agent.probe_name, "subnet": list(PROBE_SUBNET), "comment": "created by mockfgt; safe to delete"}
        calls += [
            Call("write", "POST", "/jsonrpc", jsonrpc("add", address, data=data)),
            Call("cleanup", "POST", "/jsonrpc", jsonrpc("delete", f"{address}/{agent.probe_name}")),
        ]
    if agent.user:
        calls.append(Call("logout", "POST", "/jsonrpc", jsonrpc("exec", "/sys/logout")))
    return calls


# -- judging answers ------------------------------------------------------------------------------
def judge(kind: str, call: Call, status: int, body: bytes) -> str:
    """The code a correct client reports for this answer to this call."""
    if kind == "fortimanager" and status == 200:
        return judge_jsonrpc(call, jsonrpc_status(body))
    return classify_status(status)


def judge_jsonrpc(call: Call, code: int | None) -> str:
    if code is None or code == 0:
        return OK
    if code == JSONRPC_LOGIN_FAILED:
        return AUTHENTICATION
    if code == JSONRPC_NO_PERMISSION:
        return AUTHENTICATION if call.role in CREDENTIAL_ROLES else AUTHORIZATION
    if code in JSONRPC_AUTHORIZATION:
        return AUTHORIZATION
    return OK  # -2, -3, -6, -10...: the device took the credential and answered an API error


def jsonrpc_result(body: bytes) -> dict | None:
    """``result[0]`` of a JSON-RPC answer (some builds send a bare object), or None."""
    try:
        result = json.loads(body)["result"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(result, list):
        result = result[0] if result else None
    return result if isinstance(result, dict) else None


def jsonrpc_status(body: bytes) -> int | None:
    result = jsonrpc_result(body)
    try:
        return int(result["status"]["code"])
    except (TypeError, KeyError, ValueError):
        return None


def session_of(body: bytes) -> str | None:
    """The session a FortiManager login answer carries at the top level."""
    try:
        session = json.loads(body).get("session")
    except (ValueError, AttributeError):
        return None
    return str(session) if session not in (None, "") else None


def surface(kind: str, status: int, body: bytes) -> str:
    """What the client saw, in a few characters: 'HTTP 401', 'code -11'."""
    if kind == "fortimanager" and status == 200:
        code = jsonrpc_status(body)
        return f"code {code}" if code is not None else "HTTP 200"
    return f"HTTP {status}"


# -- running a flow -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """How one run of the flow ended: the code, the call that decided it and what the client saw."""

    code: str
    role: str
    surface: str


def run_flow(agent: Agent, send, explain_error) -> Outcome:
    """Run the agent's calls through ``send(method, path, headers, body) -> (status, body)``.

    ``explain_error(exc) -> (code, surface)`` classifies what ``send`` raises; the first call that is
    not ``ok`` decides the outcome, as it decides what the agent reports.
    """
    session, last = None, "nothing sent"
    for call in agent.calls():
        try:
            status, body = send(*agent.request(call, session))
        except Exception as exc:  # each transport raises its own kinds; explain_error knows them
            code, seen = explain_error(exc)
            return Outcome(code, call.role, seen)
        code, last = judge(agent.kind, call, status, body), surface(agent.kind, status, body)
        if code != OK:
            return Outcome(code, call.role, last)
        if call.role == "login":
            session = session_of(body)
    return Outcome(OK, "all", last)
