"""The reference agent: what a typical address-managing agent does, and the code it should report.

``probe(client)`` runs the agent's usual calls against whatever ``client`` points at (a mock device's
:attr:`~mockfgt.Device.client`, or settings you build for a real device) with the standard library
only, and classifies the first failure with :func:`mockfgt.classify`. The CLI, the benchmarks and
``diagnose`` use it; tests also drive the devices with requests, httpx and curl directly.

An agent configured with a password (``client.needs_login``) logs in first, as the widely used
clients do: ``POST /api/v2/authentication`` with ``request_key`` for a session key, falling back to
the ``/logincheck`` form (cookies and a CSRF token) when that answers 401 or 404. A login the device
refuses in its body (``0`` from /logincheck, ``LOGIN_FAILED``) is 202001 like a 401.

Against a FortiManager (``kind="fortimanager"``) the calls are JSON-RPC posts to ``/jsonrpc``; the
agent carries its session from the login on, learns from ``/cli/global/system/global`` whether the
device is in workspace mode, and classifies status codes with :func:`mockfgt.classify.classify_jsonrpc`
in context: a -11 after ``/sys/status`` accepted the credential is re-checked once on ``/sys/status``
before it is called a permission problem, so a session that died in between is still 202001.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field, replace
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


@dataclass
class Login:
    """What a password login leaves the agent: its cookies, and a session key or a CSRF token."""

    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)
    session_key: str | None = None
    csrf_token: str | None = None

    def headers(self, method: str, send_csrf: bool) -> dict[str, str]:
        if self.session_key:
            return {"Authorization": f"Bearer {self.session_key}"}
        if send_csrf and self.csrf_token and method in ("POST", "PUT", "DELETE"):
            return {"X-CSRFTOKEN": self.csrf_token}
        return {}


class LoginRefused(Exception):
    """The device answered the login but refused it in the body."""

    def __init__(self, step: str, detail: str):
        super().__init__(f"{step}: {detail}")
        self.step, self.detail = step, detail


# -- reading login answers (shared with clients written against other HTTP libraries) -----------
def authentication_body(client) -> dict:
    """The JSON an agent posts to /api/v2/authentication (field names as Ansible and Terraform send)."""
    return {"username": client.user, "secretkey": client.password, "password": client.password,
            "request_key": True, "ack_pre_disclaimer": True, "ack_post_disclaimer": client.accept_banner}


def session_key_from(body: str) -> str | None:
    """The ``session_key`` of a LOGIN_SUCCESS answer (status 5 or 6), else None."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("status_message") != "LOGIN_SUCCESS":
        return None
    return answer.get("session_key")


def logincheck_succeeded(body: str) -> bool:
    """/logincheck answers a body starting with 1 for success, 0 (or 2, 3, 4) otherwise."""
    return body.startswith("1")


def csrf_token_from(cookies) -> str | None:
    """The CSRF token from (name, value) cookie pairs: ccsrftoken, ccsrftoken_<n> or ccsrf_token_<port>_<n>."""
    for name, value in cookies:
        if name == "ccsrftoken" or name.startswith(("ccsrftoken_", "ccsrf_token_")):
            token = (value or "").strip('"')
            if token and token != "0%260":
                return token
    return None


# -- the agent ----------------------------------------------------------------------------------
def _opener(client, jar: http.cookiejar.CookieJar | None):
    handlers = [urllib.request.ProxyHandler({})]  # loopback only: never a proxy from the environment
    if client.url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=client.ssl_context()))
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


def send(client, step: Step, timeout: float, login: Login | None = None):
    """One HTTP call as the agent makes it; returns the urllib response or raises."""
    return exchange(client, step, timeout, login)[0]


def exchange(client, step: Step, timeout: float, login: Login | None = None):
    """One HTTP call as the agent makes it; returns (urllib response, body bytes) or raises."""
    params = client.params()
    url = client.url + step.path + (f"?{urlencode(params)}" if params else "")
    data = json.dumps(step.body).encode() if step.body is not None else None
    headers = dict(client.headers())
    if login is not None:
        headers.update(login.headers(step.method, getattr(client, "csrf", True)))
    request = urllib.request.Request(url, data=data, method=step.method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with _opener(client, login.jar if login else None).open(request, timeout=timeout) as response:
        return response, response.read()


def _post(client, path: str, body: bytes, content_type: str, login: Login, timeout: float) -> str:
    request = urllib.request.Request(client.url + path, data=body, method="POST",
                                     headers={"Content-Type": content_type, **login.headers("GET", False)})
    with _opener(client, login.jar).open(request, timeout=timeout) as response:
        return response.read().decode("utf-8", "replace")


def log_in(client, timeout: float) -> Login:
    """Log in as the agent does; raises LoginRefused, or whatever urllib raised (HTTPError included)."""
    login = Login()
    if client.login == "authentication":
        payload = json.dumps(authentication_body(client)).encode()
        try:
            body = _post(client, "/api/v2/authentication", payload, "application/json", login, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code not in (401, 404):  # 401/404: a FortiOS without it; anything else is the answer
                raise
        else:
            login.session_key = session_key_from(body)
            if login.session_key is None:
                raise LoginRefused("POST /api/v2/authentication", body[:80])
            return login
    form = urlencode({"username": client.user, "secretkey": client.password, "ajax": "1"}).encode()
    body = _post(client, "/logincheck", form, "application/x-www-form-urlencoded", login, timeout)
    if not logincheck_succeeded(body):
        raise LoginRefused("POST /logincheck", f"body {body[:40]!r}")
    login.csrf_token = csrf_token_from((c.name, c.value) for c in login.jar)
    if client.accept_banner:
        _post(client, "/logindisclaimer", b"confirm=1", "application/x-www-form-urlencoded", login, timeout)
    return login


def log_out(client, login: Login, timeout: float) -> None:
    """End the session as the agent would (a device allows only so many); failures do not matter."""
    step = Step("DELETE", "/api/v2/authentication") if login.session_key else Step("POST", "/logout")
    try:
        send(client, step, timeout, login)
    except Exception:
        pass


def _failed(label: str, exc: Exception) -> ProbeResult:
    """Classify what a call raised; the probe reports what a client would, it never raises it."""
    if isinstance(exc, urllib.error.HTTPError):
        return ProbeResult(classify(exc), label, f"HTTP {exc.code}")
    try:
        return ProbeResult(classify(exc), label, repr(exc))
    except ValueError:
        raise exc from None


def probe(client, *, kind: str = "fortigate", timeout: float = 10.0) -> ProbeResult:
    """Run the reference agent once and report the first failure's code, or ``ok``."""
    if kind == "fortimanager":
        return _probe_fortimanager(client, timeout)
    login = None
    if getattr(client, "needs_login", False):
        try:
            login = log_in(client, timeout)
        except LoginRefused as exc:
            return ProbeResult(AUTHENTICATION, exc.step, f"login refused: {exc.detail}")
        except Exception as exc:
            return _failed(f"log in as {client.user}", exc)
    try:
        return _run_steps(client, fortigate_steps(client), timeout, login)
    finally:
        if login is not None:
            log_out(client, login, timeout)


def _run_steps(client, steps: list[Step], timeout: float, login: Login | None) -> ProbeResult:
    for step in steps:
        label = f"{step.method} {step.path}"
        try:
            response = send(client, step, timeout, login)
        except Exception as exc:
            failure = _failed(label, exc)
            if failure.code != OK:
                return failure
            continue  # an HTTP error outside the five classes (a 404, a 500 -5): the agent goes on
        code = classify(response)
        if code != OK:
            return ProbeResult(code, label, f"HTTP {response.status}")
    return ProbeResult(OK, f"{len(steps)} calls", "all answered")


# -- FortiManager ---------------------------------------------------------------------------------
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


def _call(client, step: Step, timeout: float, label: str):
    """(response, body), or the ProbeResult of a call that failed below JSON."""
    try:
        return exchange(client, step, timeout)
    except Exception as exc:
        return _failed(label, exc)


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
