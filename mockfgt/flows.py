"""What an address-managing agent sends to each kind of device, and what each answer means.

The agent's flow is a short list of :class:`Call`\\ s: its login when it has a password, a status call
that proves the credential, a read of the objects it manages and, for an agent that writes, the
creation and deletion of one address (under the ADOM lock when a FortiManager is in workspace mode);
in FortiManager trusted-hosts mode, a read of an admin's trusted hosts and their write-back. The flow
is the same whatever HTTP stack sends it: a :class:`Conversation` turns each call into method, path,
headers and body, remembers what the answers taught (session key or id, CSRF token, workspace mode,
the last data read) and judges each answer into a code with :func:`judge`.

The transport's part is small: ``send(method, path, headers, body) -> (status, body)``, raising what
its stack raises when no answer came, and ``cookies() -> [(name, value), ...]`` for the cookies it
keeps (a requests Session, an httpx Client, a urllib CookieJar, a curl cookie file) so the agent can
read the CSRF token a ``/logincheck`` login sets.

Judging needs context, as a good client's does. A FortiGate says what went wrong in the HTTP status
(401 and 429 refuse the credential, 403 refuses the permission), except on its login URLs, which
answer 200 and say ``LOGIN_FAILED`` or ``0`` in the body. A FortiManager answers HTTP 200 and puts a
JSON-RPC code inside, judged by :func:`mockfgt.classify.classify_jsonrpc`: its -11 means a refused
credential on the status call, but a missing permission (rpc-permit, ADOM, profile) on any later call,
unless the status call, asked once more, now gets -11 too (the session died in between).

Client side only: nothing here knows the mock, so it works against a real device.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlencode

from .classify import classify_jsonrpc, classify_status
from .codes import AUTHENTICATION, AUTHORIZATION, OK

KINDS = ("fortigate", "fortimanager")
PROBE_PREFIX = "mockfgt-probe-"
PROBE_SUBNET = ("192.0.2.1", "255.255.255.255")  # TEST-NET-1: never a real host
COMMENT = "created by mockfgt; safe to delete"

AUTHENTICATION_PATH = "/api/v2/authentication"
LOGINCHECK_PATH = "/logincheck"
NO_AUTHENTICATION_API = (401, 404)  # FortiOS before 6.4.2: the agent falls back to /logincheck
# The client side keeps its own copy of the server's fortios.WRITE_METHODS on purpose: these flows
# also check real devices, so they share nothing with the emulation (test_diagnose checks the imports).
WRITE_METHODS = ("POST", "PUT", "DELETE")
FAILED_CSRF_COOKIE = "0%260"

JSONRPC_NO_PERMISSION = -11
CREDENTIAL_ROLES = ("login", "status")  # calls whose refusal is the credential's, not a permission's
#: Calls the agent makes even when an earlier one failed: lift its workspace lock, end its session.
CLOSING_ROLES = ("unlock", "logout")


@dataclass(frozen=True)
class Call:
    """One step of the agent's flow.

    ``role`` says what it proves (login, banner, status, mode, read, lock, write, cleanup, commit,
    unlock, trusthosts-read, trusthosts, logout); ``when`` names the condition a conditional step runs under (see
    :meth:`Conversation.wants`). ``body`` goes as JSON, ``form`` as an urlencoded form.
    """

    role: str
    method: str
    path: str
    body: dict | None = None
    form: dict | None = None
    when: str = ""

    @property
    def label(self) -> str:
        """'GET /api/v2/cmdb/firewall/address', or for JSON-RPC 'get /pm/config/...'."""
        if self.body and "params" in self.body:
            return f"{self.body['method']} {self.body['params'][0]['url']}"
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Agent:
    """The agent's configuration, as far as the flow cares (trust and TLS are the transport's).

    ``auth`` is ``token`` (an API key, in the header or the query), ``password`` (log in as ``user``)
    or ``session`` (keep using ``session``: a FortiManager session id, a FortiOS session key).
    """

    kind: str = "fortigate"
    token: str | None = None
    token_in: str = "header"  # or "query": ?access_token=
    vdom: str | None = None
    adom: str | None = None
    write: bool = False
    auth: str = "token"
    user: str | None = None
    password: str | None = None
    session: str | None = None  # kept from an earlier login
    login: str = "authentication"  # FortiOS: or "logincheck" (the form login only)
    csrf: bool = True  # FortiOS cookie sessions: echo the CSRF token on writes
    accept_banner: bool = False  # FortiOS: accept the post-login disclaimer
    workspace_lock: bool = True  # FortiManager in workspace mode: lock, commit, unlock around writes
    trusthost_user: str | None = None  # FortiManager trusted-hosts mode: this admin's trusted hosts
    probe_name: str = field(default_factory=lambda: PROBE_PREFIX + uuid.uuid4().hex[:8])

    @classmethod
    def from_client(cls, client, kind: str, **changes) -> Agent:
        """The agent a :class:`~mockfgt.ClientSettings` describes (any object with its fields)."""
        auth = getattr(client, "auth", "token")
        kept = getattr(client, "session_key", None)
        if auth == "session":
            kept = client.token
        elif auth == "password" and kept:
            auth = "session"  # a FortiOS agent that keeps its session key logs in no more
        agent = cls(
            kind=kind, token=client.token if auth == "token" else None, token_in=client.token_in,
            vdom=client.vdom, adom=getattr(client, "adom", None), write=client.write, auth=auth,
            user=getattr(client, "user", None) if auth == "password" else None,
            password=getattr(client, "password", None) if auth == "password" else None, session=kept,
            login=getattr(client, "login", "authentication"), csrf=getattr(client, "csrf", True),
            accept_banner=getattr(client, "accept_banner", False),
            workspace_lock=getattr(client, "workspace_lock", True),
            trusthost_user=getattr(client, "trusthost_user", None),
        )
        return replace(agent, **changes)

    @property
    def logs_in(self) -> bool:
        return self.auth == "password"

    def calls(self) -> list[Call]:
        """The agent's calls, in order (conditional ones included: see :meth:`Conversation.wants`)."""
        if self.kind == "fortimanager":
            return fortimanager_calls(self)
        return fortigate_calls(self)


# -- FortiGate ------------------------------------------------------------------------------------
def authentication_body(agent) -> dict:
    """The JSON an agent posts to /api/v2/authentication (field names as Ansible and Terraform send)."""
    return {"username": agent.user, "secretkey": agent.password, "password": agent.password,
            "request_key": True, "ack_pre_disclaimer": True, "ack_post_disclaimer": agent.accept_banner}


def logincheck_form(agent) -> dict:
    return {"username": agent.user or "", "secretkey": agent.password or "", "ajax": "1"}


def fortigate_login_calls(agent: Agent) -> list[Call]:
    """/api/v2/authentication for a session key, else (or when it is missing) the /logincheck form."""
    calls = []
    if agent.login == "authentication":
        calls.append(Call("login", "POST", AUTHENTICATION_PATH, authentication_body(agent)))
    calls.append(Call("login", "POST", LOGINCHECK_PATH, form=logincheck_form(agent), when="logincheck"))
    if agent.accept_banner:  # a key login acknowledges it in its body (ack_post_disclaimer)
        calls.append(Call("banner", "POST", "/logindisclaimer", form={"confirm": "1"}, when="cookie"))
    return calls


def fortigate_calls(agent: Agent) -> list[Call]:
    """Log in, status probe, list addresses, (for a writing agent) create and delete one, log out."""
    address = "/api/v2/cmdb/firewall/address"
    calls = fortigate_login_calls(agent) if agent.logs_in else []
    calls += [Call("status", "GET", "/api/v2/monitor/system/status"), Call("read", "GET", address)]
    if agent.write:
        subnet = "/".join((PROBE_SUBNET[0], "32"))
        calls += [
            Call("write", "POST", address, {"name": agent.probe_name, "subnet": subnet, "comment": COMMENT}),
            Call("cleanup", "DELETE", f"{address}/{quote(agent.probe_name, safe='')}"),
        ]
    if agent.logs_in:
        calls += [Call("logout", "DELETE", AUTHENTICATION_PATH, when="key"),
                  Call("logout", "POST", "/logout", when="cookie")]
    return calls


def session_key_from(body) -> str | None:
    """The ``session_key`` of a LOGIN_SUCCESS answer (status 5 or 6), else None."""
    try:
        answer = json.loads(body)
    except (ValueError, TypeError):
        return None
    if not isinstance(answer, dict) or answer.get("status_message") != "LOGIN_SUCCESS":
        return None
    return answer.get("session_key")


def logincheck_succeeded(body) -> bool:
    """/logincheck answers a body starting with 1 for success, 0 (or 2, 3, 4) otherwise."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text.startswith("1")


def csrf_token_from(cookies) -> str | None:
    """The CSRF token from (name, value) cookie pairs: ccsrftoken, ccsrftoken_<n> or ccsrf_token_<port>_<n>."""
    for name, value in cookies:
        if name == "ccsrftoken" or name.startswith(("ccsrftoken_", "ccsrf_token_")):
            token = (value or "").strip('"')
            if token and token != FAILED_CSRF_COOKIE:
                return token
    return None


# -- FortiManager ---------------------------------------------------------------------------------
def jsonrpc(method: str, url: str, **params) -> dict:
    return {"method": method, "params": [{"url": url, **params}]}


def first_call(agent: Agent) -> Call:
    """A FortiManager agent's first call: its login, or ``/sys/status``."""
    return fortimanager_calls(agent)[0]


def fortimanager_calls(agent: Agent) -> list[Call]:
    """Log in if the agent uses a password, status, workspace mode, the ADOM's addresses; then, for a
    writing agent, add and delete an address (under the ADOM lock in workspace mode); in trusted-hosts
    mode, read an admin's trusted hosts and write them back unchanged; log out."""

    def rpc(role, method, url, when="", **params):
        return Call(role, "POST", "/jsonrpc", jsonrpc(method, url, **params), when=when)

    adom = agent.adom or "root"
    address, workspace = f"/pm/config/adom/{adom}/obj/firewall/address", f"/dvmdb/adom/{adom}/workspace"
    calls = []
    if agent.logs_in:
        credentials = {"user": agent.user, "passwd": agent.password or ""}
        calls.append(rpc("login", "exec", "/sys/login/user", data=credentials))
    calls += [rpc("status", "get", "/sys/status"),
              rpc("mode", "get", "/cli/global/system/global", fields=["workspace-mode", "adom-status"]),
              rpc("read", "get", address)]
    if agent.write:
        data = {"name": agent.probe_name, "subnet": list(PROBE_SUBNET), "comment": COMMENT}
        calls += [rpc("lock", "exec", f"{workspace}/lock", when="workspace"),
                  rpc("write", "add", address, data=data),
                  rpc("cleanup", "delete", f"{address}/{agent.probe_name}"),
                  rpc("commit", "exec", f"{workspace}/commit", when="workspace"),
                  rpc("unlock", "exec", f"{workspace}/unlock", when="locked")]
    if agent.trusthost_user:
        admin = f"/cli/global/system/admin/user/{agent.trusthost_user}"
        calls += [rpc("trusthosts-read", "get", admin), rpc("trusthosts", "update", admin, data={})]
    if agent.logs_in:
        calls.append(rpc("logout", "exec", "/sys/logout", when="logged-in"))
    return calls


# -- judging answers ------------------------------------------------------------------------------
def judge(kind: str, call: Call, status: int, body: bytes) -> str:
    """The code a correct client reports for this answer to this call."""
    if kind == "fortimanager" and status == 200:
        return judge_jsonrpc(call, jsonrpc_status(body))
    if call.role == "login" and call.path == AUTHENTICATION_PATH:
        if status in NO_AUTHENTICATION_API:
            return OK  # no such API on this FortiOS: not a verdict, the agent tries /logincheck
        return _login_verdict(status, session_key_from(body) is not None)
    if call.role == "login" and call.path == LOGINCHECK_PATH:
        return _login_verdict(status, logincheck_succeeded(body))
    return classify_status(status)


def _login_verdict(status: int, succeeded: bool) -> str:
    """A login answered 200 says in its body whether it worked; a login that did not is 202001."""
    if 200 <= status < 300:
        return OK if succeeded else AUTHENTICATION
    verdict = classify_status(status)
    return AUTHENTICATION if verdict == OK else verdict  # a 500 on the login: no session either


def judge_jsonrpc(call: Call, code: int | None) -> str:
    if code is None or code == 0:
        return OK
    credential = "unverified" if call.role in CREDENTIAL_ROLES else "accepted"
    body = call.body or {}
    url = body["params"][0]["url"] if body.get("params") else ""
    return classify_jsonrpc(code, method=body.get("method", "get"), url=url, credential=credential)


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
    if result is None:
        return None
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


def surface(kind: str, status: int, body: bytes, call: Call | None = None) -> str:
    """What the client saw, in a few characters: 'HTTP 401', 'code -11', 'LOGIN_FAILED', 'body 0'."""
    if kind == "fortimanager" and status == 200:
        code = jsonrpc_status(body)
        return f"code {code}" if code is not None else "HTTP 200"
    if call is not None and call.role == "login" and status == 200:
        if call.path == LOGINCHECK_PATH:
            return f"body {body[:1].decode('latin-1')!r}"
        try:
            return str(json.loads(body).get("status_message") or "HTTP 200")
        except (ValueError, AttributeError):
            return "HTTP 200"
    return f"HTTP {status}"


# -- talking to a device --------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """The device's answer to one call, judged: ``seen`` is 'HTTP 401', 'code -11'..."""

    code: str
    status: int
    body: bytes
    seen: str

    @property
    def ok(self) -> bool:
        return self.code == OK


@dataclass
class Memory:
    """What the agent learns as it goes."""

    session: str | None = None  # FortiOS session key (sent as Bearer) or FortiManager session id
    csrf_token: str | None = None
    logged_in: str = ""  # "key", "cookie" (FortiOS) or "jsonrpc" once this flow logged in
    fallback: bool = False  # /api/v2/authentication is missing: the form login it is
    workspace: bool = False
    locked: bool = False
    data: object = None  # the data of the last FortiManager read (trusted-hosts mode writes it back)


def _no_cookies():
    return ()


class Conversation:
    """One agent talking to one device through one transport, remembering what the answers taught.

    ``send(method, path, headers, body) -> (status, body)`` raises when no answer came; ``cookies()``
    returns the (name, value) pairs the transport keeps.
    """

    def __init__(self, agent: Agent, send, cookies=_no_cookies) -> None:
        self.agent, self.send, self.cookies = agent, send, cookies
        self.memory = Memory(session=agent.session)

    def wants(self, call: Call) -> bool:
        """Whether a conditional call runs, given what the agent knows now."""
        m, when = self.memory, call.when
        if when == "logincheck":
            return self.agent.login == "logincheck" or m.fallback
        if when in ("key", "cookie"):
            return m.logged_in == when
        if when == "workspace":
            return m.workspace and self.agent.workspace_lock
        if when == "locked":
            return m.locked
        if when == "logged-in":
            return bool(m.logged_in)
        return True

    def request(self, call: Call, agent: Agent | None = None) -> tuple[str, str, dict, bytes | None]:
        """(method, path with query, headers, body) for one call, as ``agent`` (default: ours) sends it."""
        agent = agent or self.agent
        if agent.kind == "fortimanager":
            return self._jsonrpc_request(call, agent)
        headers: dict[str, str] = {}
        query: dict[str, str] = {}
        if self.memory.session:
            headers["Authorization"] = f"Bearer {self.memory.session}"
        elif agent.token and agent.token_in == "query":
            query["access_token"] = agent.token
        elif agent.token:
            headers["Authorization"] = f"Bearer {agent.token}"
        if call.role not in ("login", "banner", "logout") and agent.csrf and self.memory.csrf_token \
                and call.method in WRITE_METHODS:
            headers["X-CSRFTOKEN"] = self.memory.csrf_token
        if agent.vdom and call.path.startswith("/api/v2/") and call.path != AUTHENTICATION_PATH:
            query["vdom"] = agent.vdom
        data = _encode(call, headers)
        return call.method, call.path + (f"?{urlencode(query)}" if query else ""), headers, data

    def _jsonrpc_request(self, call: Call, agent: Agent):
        headers, query = {}, ""
        if agent.token and agent.token_in == "query":
            query = "?" + urlencode({"access_token": agent.token})
        elif agent.token:
            headers["Authorization"] = f"Bearer {agent.token}"
        body = json.loads(json.dumps(call.body))
        if call.role == "trusthosts" and isinstance(self.memory.data, dict):
            body["params"][0]["data"] = {k: v for k, v in self.memory.data.items() if "trusthost" in k}
        body.update(id=1, verbose=1, **({"session": self.memory.session} if self.memory.session else {}))
        return call.method, call.path + query, headers, _encode(replace(call, body=body), headers)

    def ask(self, call: Call, agent: Agent | None = None) -> Answer:
        """Send one call and judge the answer; raises what the transport raised when none came."""
        agent = agent or self.agent
        status, body = self.send(*self.request(call, agent))
        answer = Answer(judge(agent.kind, call, status, body), status, body, surface(agent.kind, status, body, call))
        if answer.ok:
            self._learn(call, answer)
        elif self._credential_died(call, answer, agent):
            answer = replace(answer, code=AUTHENTICATION)
        return answer

    def _learn(self, call: Call, answer: Answer) -> None:
        m, path = self.memory, call.path
        if call.role == "login" and path == AUTHENTICATION_PATH:
            m.session = session_key_from(answer.body)
            m.fallback, m.logged_in = m.session is None, "key" if m.session else ""
        elif call.role == "login" and path == LOGINCHECK_PATH:
            m.csrf_token, m.logged_in = csrf_token_from(self.cookies()), "cookie"
        elif call.role == "login":
            m.session, m.logged_in = session_of(answer.body), "jsonrpc"
        elif call.role == "lock":
            m.locked = True
        elif call.role == "unlock":
            m.locked = False
        if self.agent.kind == "fortimanager":
            data = (jsonrpc_result(answer.body) or {}).get("data")
            if call.role == "mode" and isinstance(data, dict):
                m.workspace = data.get("workspace-mode") not in ("disabled", 0, None)
            m.data = data

    def _credential_died(self, call: Call, answer: Answer, agent: Agent) -> bool:
        """A -11 after /sys/status took the credential: does /sys/status refuse it now (idled out)?"""
        if agent.kind != "fortimanager" or answer.code != AUTHORIZATION or call.role in CREDENTIAL_ROLES:
            return False
        if jsonrpc_status(answer.body) != JSONRPC_NO_PERMISSION:
            return False
        status_call = next(c for c in fortimanager_calls(agent) if c.role == "status")
        try:
            status, body = self.send(*self.request(status_call, agent))
        except Exception:  # nothing learnt: the first verdict stands
            return False
        return status == 200 and jsonrpc_status(body) == JSONRPC_NO_PERMISSION

    def close(self) -> None:
        """Lift the lock and end the session the flow opened; failures no longer matter here."""
        for call in self.agent.calls():
            if call.role in CLOSING_ROLES and self.wants(call):
                try:
                    self.ask(call)
                except Exception:
                    pass
        self.memory.logged_in = ""


def _encode(call: Call, headers: dict) -> bytes | None:
    if call.form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(call.form).encode()
    if call.body is not None:
        headers["Content-Type"] = "application/json"
        return json.dumps(call.body).encode()
    return None


# -- running a flow -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """How one run of the flow ended: the code, the call that decided it and what the client saw."""

    code: str
    role: str
    surface: str
    label: str = ""  # the deciding call, e.g. 'POST /logincheck' or 'add /pm/config/...'


def run_flow(agent: Agent, send, explain_error, cookies=_no_cookies) -> Outcome:
    """Run the agent's calls through ``send(method, path, headers, body) -> (status, body)``.

    ``explain_error(exc) -> (code, surface)`` classifies what ``send`` raises; the first call that is
    not ``ok`` decides the outcome, as it decides what the agent reports. Whatever the outcome, the
    agent then lifts its workspace lock and ends the session it opened.
    """
    talk, last, ran = Conversation(agent, send, cookies), "nothing sent", 0
    try:
        for call in agent.calls():
            if call.role == "logout" or not talk.wants(call):  # close() logs out, whatever happened
                continue
            try:
                answer = talk.ask(call)
            except Exception as exc:  # each transport raises its own kinds; explain_error knows them
                code, seen = explain_error(exc)
                return Outcome(code, call.role, seen, call.label)
            if not answer.ok:
                return Outcome(answer.code, call.role, answer.seen, call.label)
            last, ran = answer.seen, ran + 1
        return Outcome(OK, "all", last, f"{ran} calls")
    finally:
        talk.close()
