"""The reference agent: what a typical address-managing agent does, and the code it should report.

``probe(client)`` runs the agent's usual calls against whatever ``client`` points at (a mock device's
:attr:`~mockfgt.Device.client`, or settings you build for a real device) with the standard library
only, and classifies the first failure with :func:`mockfgt.classify`. The CLI, the benchmarks and
``diagnose`` use it; tests also drive the devices with requests, httpx and curl directly.

An agent configured with a password (``client.needs_login``) logs in first, as the widely used
clients do: ``POST /api/v2/authentication`` with ``request_key`` for a session key, falling back to
the ``/logincheck`` form (cookies and a CSRF token) when that answers 401 or 404. A login the device
refuses in its body (``0`` from /logincheck, ``LOGIN_FAILED``) is 202001 like a 401.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from .classify import classify
from .codes import AUTHENTICATION, OK


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
    return {"username": client.username, "secretkey": client.password, "password": client.password,
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
        response.read()
        return response


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
    form = urlencode({"username": client.username, "secretkey": client.password, "ajax": "1"}).encode()
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
    login = None
    if getattr(client, "needs_login", False):
        try:
            login = log_in(client, timeout)
        except LoginRefused as exc:
            return ProbeResult(AUTHENTICATION, exc.step, f"login refused: {exc.detail}")
        except Exception as exc:
            return _failed(f"log in as {client.username}", exc)
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
            return _failed(label, exc)
        code = classify(response)
        if code != OK:
            return ProbeResult(code, label, f"HTTP {response.status}")
    return ProbeResult(OK, f"{len(steps)} calls", "all answered")
