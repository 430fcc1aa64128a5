"""The FortiGate kind's client half: what a correct agent sends to a FortiOS REST API v2, how each answer
is judged, and what ``mockfgt diagnose`` advises when one fails.

Client side only: this module imports nothing of the emulation (models, wire), so it works the same
against a real FortiGate. :class:`mockfgt.fortios.kind.FortiGateKind` inherits it.
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import quote, urlencode

from .. import schema as s
from ..agent import Agent
from ..classify import classify_status
from ..codes import AUTHENTICATION, OK
from ..flows import COMMENT, PROBE_SUBNET, Answer, Call, Memory, encode
from ..kinds import Ask, KindClient

AUTHENTICATION_PATH = "/api/v2/authentication"
LOGINCHECK_PATH = "/logincheck"
STATUS_PATH = "/api/v2/monitor/system/status"
ADDRESS_PATH = "/api/v2/cmdb/firewall/address"
NO_AUTHENTICATION_API = (401, 404)  # FortiOS before 6.4.2: the agent falls back to /logincheck
# The client side keeps its own copy of the server's fortios.WRITE_METHODS on purpose: these flows
# also check real devices, so they share nothing with the emulation.
WRITE_METHODS = ("POST", "PUT", "DELETE")
FAILED_CSRF_COOKIE = "0%260"


def authentication_body(agent) -> dict:
    """The JSON an agent posts to /api/v2/authentication (field names as Ansible and Terraform send)."""
    return {"username": agent.user, "secretkey": agent.password, "password": agent.password,
            "request_key": True, "ack_pre_disclaimer": True, "ack_post_disclaimer": agent.accept_banner}


def logincheck_form(agent) -> dict:
    return {"username": agent.user or "", "secretkey": agent.password or "", "ajax": "1"}


def login_calls(agent: Agent) -> list[Call]:
    """/api/v2/authentication for a session key, else (or when it is missing) the /logincheck form."""
    calls = []
    if agent.login == "authentication":
        calls.append(Call("login", "POST", AUTHENTICATION_PATH, authentication_body(agent)))
    calls.append(Call("login", "POST", LOGINCHECK_PATH, form=logincheck_form(agent), when="logincheck"))
    if agent.accept_banner:  # a key login acknowledges it in its body (ack_post_disclaimer)
        calls.append(Call("banner", "POST", "/logindisclaimer", form={"confirm": "1"}, when="cookie"))
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


def _login_verdict(status: int, succeeded: bool) -> str:
    """A login answered 200 says in its body whether it worked; a login that did not is 202001."""
    if 200 <= status < 300:
        return OK if succeeded else AUTHENTICATION
    verdict = classify_status(status)
    return AUTHENTICATION if verdict == OK else verdict  # a 500 on the login: no session either


class FortiGateClient(KindClient):
    """What an address-managing agent does with a FortiGate, and how it judges the answers."""

    display_name = "FortiGate"
    api_name = "FortiOS REST"
    status_path = STATUS_PATH
    session_in_header = True
    client_fields = {
        "vdom": s.Str(None, doc="the VDOM the agent works in (?vdom=)"),
        "login": s.Str("authentication", choices=("authentication", "logincheck"),
                       doc="POST /api/v2/authentication for a session key (falling back to /logincheck on 401/404), "
                           "or only the legacy /logincheck form with cookies"),
        "csrf": s.Bool(True, doc="with cookie sessions, the agent echoes the CSRF token in X-CSRFTOKEN on writes"),
        "accept_banner": s.Bool(False, doc="the agent accepts the post-login disclaimer"),
        "session": s.Str("fresh", choices=("fresh", "expired"),
                         doc="log in at start, or keep using a session key the device has since timed out"),
    }

    def check_client(self, client: dict, key: str) -> None:
        if client["session"] == "expired" and (client["auth"], client["login"]) != ("password", "authentication"):
            raise s.SchemaError(f"{key}.session" if key else "session",
                                "'expired' is a session key the agent kept, so it needs auth = 'password' and "
                                "login = 'authentication'")

    # -- the agent's calls -----------------------------------------------------------------------
    def calls(self, agent: Agent) -> list[Call]:
        """Log in, status probe, list addresses, (for a writing agent) create and delete one, log out."""
        calls = login_calls(agent) if agent.logs_in else []
        calls += [Call("status", "GET", STATUS_PATH), Call("read", "GET", ADDRESS_PATH)]
        if agent.write:
            subnet = "/".join((PROBE_SUBNET[0], "32"))
            calls += [
                Call("write", "POST", ADDRESS_PATH, {"name": agent.probe_name, "subnet": subnet, "comment": COMMENT}),
                Call("cleanup", "DELETE", f"{ADDRESS_PATH}/{quote(agent.probe_name, safe='')}"),
            ]
        if agent.logs_in:
            calls += [Call("logout", "DELETE", AUTHENTICATION_PATH, when="key"),
                      Call("logout", "POST", "/logout", when="cookie")]
        return calls

    def request(self, memory: Memory, call: Call, agent: Agent) -> tuple[str, str, dict, bytes | None]:
        headers: dict[str, str] = {}
        query: dict[str, str] = {}
        if memory.session:
            headers["Authorization"] = f"Bearer {memory.session}"
        elif agent.api_key and agent.token_in == "query":
            query["access_token"] = agent.api_key
        elif agent.api_key:
            headers["Authorization"] = f"Bearer {agent.api_key}"
        if call.role not in ("login", "banner", "logout") and agent.csrf and memory.csrf_token \
                and call.method in WRITE_METHODS:
            headers["X-CSRFTOKEN"] = memory.csrf_token
        if agent.vdom and call.path.startswith("/api/v2/") and call.path != AUTHENTICATION_PATH:
            query["vdom"] = agent.vdom
        data = encode(call, headers)
        return call.method, call.path + (f"?{urlencode(query)}" if query else ""), headers, data

    # -- judging answers ---------------------------------------------------------------------------
    def judge(self, call: Call, status: int, body: bytes) -> str:
        """A FortiGate says what went wrong in the HTTP status, except on its login URLs (in the body)."""
        if call.role == "login" and call.path == AUTHENTICATION_PATH:
            if status in NO_AUTHENTICATION_API:
                return OK  # no such API on this FortiOS: not a verdict, the agent tries /logincheck
            return _login_verdict(status, session_key_from(body) is not None)
        if call.role == "login" and call.path == LOGINCHECK_PATH:
            return _login_verdict(status, logincheck_succeeded(body))
        return classify_status(status)

    def surface(self, call: Call | None, status: int, body: bytes) -> str:
        if call is not None and call.role == "login" and status == 200:
            if call.path == LOGINCHECK_PATH:
                return f"body {body[:1].decode('latin-1')!r}"
            try:
                return str(json.loads(body).get("status_message") or "HTTP 200")
            except (ValueError, AttributeError):
                return "HTTP 200"
        return f"HTTP {status}"

    def learn(self, memory: Memory, call: Call, answer: Answer, cookies) -> None:
        if call.role == "login" and call.path == AUTHENTICATION_PATH:
            memory.session = session_key_from(answer.body)
            memory.fallback, memory.logged_in = memory.session is None, "key" if memory.session else ""
        elif call.role == "login" and call.path == LOGINCHECK_PATH:
            memory.csrf_token, memory.logged_in = csrf_token_from(cookies()), "cookie"

    # -- diagnose ------------------------------------------------------------------------------------
    def read_calls(self, agent: Agent) -> list[Call]:
        return [Call("read", "GET", f"/api/v2/cmdb/firewall/{table}") for table in ("address", "addrgrp")]

    def data_of(self, body: bytes) -> object:
        try:
            envelope = json.loads(body)
        except ValueError:
            return None
        return envelope.get("results") if isinstance(envelope, dict) else None

    def speaks_the_api(self, body: bytes) -> bool:
        try:
            envelope = json.loads(body)
        except ValueError:
            return False
        return isinstance(envelope, dict) and "results" in envelope

    def status_details(self, body: bytes) -> dict[str, str]:
        try:
            envelope = json.loads(body)
        except ValueError:
            return {}
        if not isinstance(envelope, dict):
            return {}
        results = envelope["results"] if isinstance(envelope.get("results"), dict) else {}
        details = {"hostname": results.get("hostname"), "model": results.get("model") or results.get("model_name"),
                   "version": envelope.get("version") and f"{envelope['version']} build {envelope.get('build', '?')}",
                   "serial": envelope.get("serial")}
        return {k: str(v) for k, v in details.items() if v}

    def scope(self, agent: Agent) -> str:
        return f"VDOM {agent.vdom}" if agent.vdom else "the API user's default VDOM"

    def login_detail(self, memory: Memory, agent: Agent) -> str:
        if memory.logged_in == "key":
            return f"{agent.user}: session key from /api/v2/authentication"
        banner = ", post-login disclaimer accepted" if agent.accept_banner else ""
        return f"{agent.user}: cookie session from /logincheck (CSRF token echoed on writes){banner}"

    def refusal_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        if call.role == "login":
            return (f"The login as {agent.user} failed ({seen}): check the admin's user name and password, and "
                    "that the agent's address is among the admin's trusted hosts. After three failures in a "
                    "minute the device blocks the address (HTTP 429).")
        if agent.auth == "session":
            return ("The device refuses the session key the agent kept: sessions end after admintimeout of "
                    "idleness, at logout and at reboot. Log in again when a call answers 401 (here: --user and "
                    "--password), or use an API token.")
        if memory.logged_in:
            return ("The login succeeded, yet the device refuses the session: a post-login disclaimer "
                    "(post-login-banner) waits to be accepted. Accept it after logging in (POST /logindisclaimer "
                    "confirm=1, or ack_post_disclaimer in /api/v2/authentication; here: --accept-banner), or "
                    "disable post-login-banner on the device.")
        return ("FortiOS answers the same 401 for an unknown, regenerated or deleted token and for a source address "
                "outside the API user's trusted hosts (mind NAT): compare the token, then the trusted hosts.")

    def permission_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        if call.method in WRITE_METHODS and memory.logged_in == "cookie":
            sent = "sent no X-CSRFTOKEN" if not agent.csrf else "sent the CSRF token"
            return (f"The write of this cookie session (/logincheck) {sent}: FortiOS answers a write without the "
                    "token with the same 403 as a missing permission. Echo the ccsrftoken cookie's value (quotes "
                    "stripped) in X-CSRFTOKEN on every POST, PUT and DELETE, or log in with /api/v2/authentication "
                    "for a session key; then check the admin profile's firewall access.")
        if call.role in ("write", "cleanup"):
            return "The API user's admin profile has firewall read only: give it firewall read-write (fwgrp)."
        return "The API user's admin profile gives no firewall access: grant firewall read-write (fwgrp)."

    def read_refusal_advice(self, agent: Agent, memory: Memory, call: Call, seen: str, ask: Ask) -> str:
        if agent.vdom:
            retry = ask(call, dataclasses.replace(agent, vdom=None))
            if retry is not None and retry.ok:
                return (f"The same read works without ?vdom=: the VDOM '{agent.vdom}' is not assigned to the API "
                        "user. Assign it (config system api-user, set vdom).")
        return self.permission_advice(agent, memory, call, seen)
