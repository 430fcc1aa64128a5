"""The reference agent: what a typical address-managing agent does, and the code it should report.

``probe(client)`` runs the agent's usual calls against whatever ``client`` points at (a mock device's
:attr:`~mockfgt.Device.client`, or settings you build for a real device) with the standard library
only, and classifies the first failure with :func:`mockfgt.classify`. The CLI, the benchmarks and
``diagnose`` use it; tests also drive the devices with requests, httpx and curl directly.

Against a FortiManager (``kind="fortimanager"``) the calls are JSON-RPC posts to ``/jsonrpc``; the
agent carries its session from the login on, learns from ``/cli/global/system/global`` whether the
device is in workspace mode, and classifies status codes with :func:`mockfgt.classify.classify_jsonrpc`
in context: a -11 after ``/sys/status`` accepted the credential is re-checked once on ``/sys/status``
before it is called a permission problem, so a session that died in between is still 202001.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from .classify import JSONRPC_LOGIN_URL, classify, classify_jsonrpc
from .codes import AUTHENTICATION, AUTHORIZATION, OK


@dataclass(frozen=True)
class ProbeResult:
    code: str  # "ok" or 202000..202004
    step: str  # the call that decided it, e.g. "GET /api/v2/monitor/system/status"
    detail: str  # HTTP status or the exception, for humans


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: dict | None = None
    #: FortiManager: "workspace" runs the step only in workspace mode (and if the agent locks);
    #: "trusthosts" fills the body's data with the trusted-host slots the previous step read.
    when: str = ""


def fortigate_steps(client) -> list[Step]:
    """Status probe, list addresses, and (for a writing agent) create and delete one."""
    steps = [Step("GET", "/api/v2/monitor/system/status"), Step("GET", "/api/v2/cmdb/firewall/address")]
    if client.write:
        name = f"mockfgt-probe-{uuid.uuid4().hex[:8]}"
        steps += [
            Step("POST", "/api/v2/cmdb/firewall/address", {"name": name, "subnet": "192.0.2.1/32"}),
            Step("DELETE", f"/api/v2/cmdb/firewall/address/{name}"),
        ]
    return steps


def jsonrpc_body(method: str, url: str, data=None, *, session: str | None = None, **options) -> dict:
    """A FortiManager JSON-RPC request with one ``params`` item (``verbose`` on, as most clients send)."""
    item = {"url": url, **({"data": data} if data is not None else {}), **options}
    body = {"id": 1, "method": method, "params": [item], "verbose": 1}
    if session:
        body["session"] = session
    return body


def first_call(client) -> dict:
    """The JSON-RPC body of a FortiManager agent's first call: its login, or ``/sys/status``."""
    if client.auth == "password":
        return jsonrpc_body("exec", "/sys/login/user", {"user": client.user, "passwd": client.password})
    return jsonrpc_body("get", "/sys/status", session=client.token if client.auth == "session" else None)


def fortimanager_steps(client) -> list[Step]:
    """Log in if the agent uses a password, status, workspace mode, ADOM addresses; then, for a
    writing agent, add and delete an address (under the ADOM lock in workspace mode); in trusted-hosts
    mode, read an admin's trusted hosts and write them back unchanged; log out."""

    def rpc(method, url, data=None, when="", **options):
        return Step("POST", "/jsonrpc", jsonrpc_body(method, url, data, **options), when)

    adom = client.adom or "root"
    objects, workspace = f"/pm/config/adom/{adom}/obj/firewall", f"/dvmdb/adom/{adom}/workspace"
    steps = []
    if client.auth == "password":
        steps.append(rpc("exec", "/sys/login/user", {"user": client.user, "passwd": client.password}))
    steps += [rpc("get", "/sys/status"),
              rpc("get", "/cli/global/system/global", fields=["workspace-mode", "adom-status"]),
              rpc("get", f"{objects}/address")]
    if client.write:
        name = f"mockfgt-probe-{uuid.uuid4().hex[:8]}"
        steps += [rpc("exec", f"{workspace}/lock", when="workspace"),
                  rpc("add", f"{objects}/address", {"name": name, "subnet": "192.0.2.1/32"}),
                  rpc("delete", f"{objects}/address/{name}"),
                  rpc("exec", f"{workspace}/commit", when="workspace"),
                  rpc("exec", f"{workspace}/unlock", when="workspace")]
    if client.trusthost_user:
        admin = f"/cli/global/system/admin/user/{client.trusthost_user}"
        steps += [rpc("get", admin), rpc("update", admin, {}, when="trusthosts")]
    if client.auth == "password":
        steps.append(rpc("exec", "/sys/logout"))
    return steps


def _opener(client, url: str):
    handlers = [urllib.request.ProxyHandler({})]  # loopback only: never a proxy from the environment
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=client.ssl_context()))
    return urllib.request.build_opener(*handlers)


def exchange(client, step: Step, timeout: float):
    """One HTTP call as the agent makes it; returns (urllib response, body bytes) or raises."""
    params = client.params()
    url = client.url + step.path + (f"?{urlencode(params)}" if params else "")
    data = json.dumps(step.body).encode() if step.body is not None else None
    request = urllib.request.Request(url, data=data, method=step.method, headers=client.headers())
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with _opener(client, url).open(request, timeout=timeout) as response:
        return response, response.read()


def send(client, step: Step, timeout: float):
    """One HTTP call as the agent makes it; returns the urllib response or raises."""
    return exchange(client, step, timeout)[0]


def probe(client, *, kind: str = "fortigate", timeout: float = 10.0) -> ProbeResult:
    """Run the reference agent once and report the first failure's code, or ``ok``."""
    if kind == "fortimanager":
        return _probe_fortimanager(client, timeout)
    steps = fortigate_steps(client)
    for step in steps:
        label = f"{step.method} {step.path}"
        outcome = _call(client, step, timeout, label)
        if isinstance(outcome, ProbeResult):
            return outcome
        response, _ = outcome
        code = classify(response)
        if code != OK:
            return ProbeResult(code, label, f"HTTP {response.status}")
    return ProbeResult(OK, f"{len(steps)} calls", "all answered")


def _call(client, step: Step, timeout: float, label: str):
    """(response, body), or the ProbeResult of a call that failed below JSON."""
    try:
        return exchange(client, step, timeout)
    except urllib.error.HTTPError as exc:
        return ProbeResult(classify(exc), label, f"HTTP {exc.code}")
    except Exception as exc:  # classified, never raised: the probe reports what a client would
        try:
            return ProbeResult(classify(exc), label, repr(exc))
        except ValueError:
            raise exc from None


class _AgentMemory:
    """What a FortiManager agent learns as it goes: its session, workspace mode, the last data read."""

    def __init__(self, client) -> None:
        self.session = client.token if client.auth == "session" else None
        self.workspace = False
        self.credential = "unverified"
        self.data = None

    def body(self, step: Step) -> dict:
        body = json.loads(json.dumps(step.body))
        if self.session:
            body["session"] = self.session
        if step.when == "trusthosts" and isinstance(self.data, dict):
            body["params"][0]["data"] = {k: v for k, v in self.data.items() if "trusthost" in k}
        return body

    def learn(self, url: str, answer: dict, entry: dict) -> None:
        path = url.strip("/")
        if path == JSONRPC_LOGIN_URL:
            self.session = answer.get("session")
        elif path == "sys/status":
            self.credential = "accepted"
        elif path == "cli/global/system/global" and isinstance(entry.get("data"), dict):
            self.workspace = entry["data"].get("workspace-mode") not in ("disabled", 0, None)
        self.data = entry.get("data")


def _probe_fortimanager(client, timeout: float) -> ProbeResult:
    memory, ran = _AgentMemory(client), 0
    for step in fortimanager_steps(client):
        if step.when == "workspace" and not (memory.workspace and client.workspace_lock):
            continue
        body = memory.body(step)
        method, url = body["method"], body["params"][0]["url"]
        label = f"{method} {url}"
        outcome = _rpc(client, Step(step.method, step.path, body), timeout, label)
        if isinstance(outcome, ProbeResult):
            return outcome
        answer, entry = outcome
        code = (entry.get("status") or {}).get("code", 0)
        if code != 0:
            verdict = _jsonrpc_verdict(client, memory, code, method, url, timeout)
            if verdict != OK:
                return ProbeResult(verdict, label, f"status {code} {entry['status'].get('message', '')}".strip())
        else:
            memory.learn(url, answer, entry)
        ran += 1
    return ProbeResult(OK, f"{ran} calls", "all answered")


def _rpc(client, step: Step, timeout: float, label: str):
    """(answer, its first result entry), or the ProbeResult of a call that never got a JSON-RPC answer."""
    outcome = _call(client, step, timeout, label)
    if isinstance(outcome, ProbeResult):
        return outcome
    response, raw = outcome
    try:
        answer = json.loads(raw)
        if isinstance(answer["result"][0], dict):
            return answer, answer["result"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return ProbeResult(classify(response), label, f"HTTP {response.status}, not a JSON-RPC answer")


def _jsonrpc_verdict(client, memory: _AgentMemory, code: int, method: str, url: str, timeout: float) -> str:
    verdict = classify_jsonrpc(code, method=method, url=url, credential=memory.credential)
    if code == -11 and verdict == AUTHORIZATION and memory.credential == "accepted":
        # Did the credential itself die since /sys/status took it (session idled out, key regenerated)?
        status_call = Step("POST", "/jsonrpc", jsonrpc_body("get", "/sys/status"))
        outcome = _rpc(client, replace(status_call, body=memory.body(status_call)), timeout, "get /sys/status")
        if not isinstance(outcome, ProbeResult) and (outcome[1].get("status") or {}).get("code") == -11:
            return AUTHENTICATION
    return verdict
