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

Everything kind-specific (the calls, their requests, how an answer is judged and what it teaches) is
the kind's client half (:class:`mockfgt.kinds.KindClient`; ``fortios/client.py``,
``fortimanager/client.py``), found by the agent's ``kind`` name in the registry. Judging needs
context, as a good client's does: a FortiGate says what went wrong in the HTTP status except on its
login URLs, a FortiManager answers HTTP 200 with a JSON-RPC code inside.

:func:`run_flow` is one run of a fresh agent (logged in, then out); :class:`KeptFlow` is one agent
instance run again and again, its session kept from run to run, as a polling agent keeps it: what a
phase walk (:mod:`mockfgt.walk`) needs to test recovery rather than a fresh start.

Client side only: nothing here knows the mock, so it works against a real device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from . import kinds
from .agent import PROBE_PREFIX, Agent
from .codes import AUTHENTICATION, OK

__all__ = ["Agent", "Answer", "Call", "Conversation", "KeptFlow", "Memory", "Outcome", "PROBE_PREFIX", "judge",
           "run_flow", "surface"]
PROBE_SUBNET = ("192.0.2.1", "255.255.255.255")  # TEST-NET-1: never a real host
COMMENT = "created by mockfgt; safe to delete"

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


# -- judging answers ------------------------------------------------------------------------------
def judge(kind: str, call: Call, status: int, body: bytes) -> str:
    """The code a correct client reports for this answer to this call, on a device of this kind."""
    return kinds.get(kind).judge(call, status, body)


def surface(kind: str, status: int, body: bytes, call: Call | None = None) -> str:
    """What the client saw, in a few characters: 'HTTP 401', 'code -11', 'LOGIN_FAILED', 'body 0'."""
    return kinds.get(kind).surface(call, status, body)


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
        self.memory = Memory(session=agent.session if agent.auth == "session" else None)

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
        return kinds.get(agent.kind).request(self.memory, call, agent)

    def ask(self, call: Call, agent: Agent | None = None) -> Answer:
        """Send one call and judge the answer; raises what the transport raised when none came."""
        agent = agent or self.agent
        status, body = self.send(*self.request(call, agent))
        kind = kinds.get(agent.kind)
        answer = Answer(kind.judge(call, status, body), status, body, kind.surface(call, status, body))
        if answer.ok:
            kind.learn(self.memory, call, answer, self.cookies)
        elif kind.credential_died(self, call, answer, agent):
            answer = replace(answer, code=AUTHENTICATION)
        return answer

    def close(self) -> None:
        """Lift the lock and end the session the flow opened; failures no longer matter here."""
        for call in self.agent.calls():
            if call.role in CLOSING_ROLES and self.wants(call):
                try:
                    self.ask(call)
                except Exception:
                    pass
        self.memory.logged_in = ""


def encode(call: Call, headers: dict) -> bytes | None:
    """The call's body as bytes, its Content-Type set in ``headers``."""
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


class KeptFlow:
    """One agent instance run again and again, as an agent that polls: what it learnt lives on.

    Its session (a FortiOS session key or cookie session and CSRF token, a FortiManager session id)
    stays open from one :meth:`run` to the next, so it logs in once, and the transport it was given
    keeps its cookies and connections. How it recovers, as a correct agent does:

    - a run that fails on a credential (202001) forgets the session: the device ended it (an idle
      timeout, a reboot, a failover), so the next run logs in again instead of reusing it;
    - a run that fails otherwise ends its session (logout, best effort) and the next run logs in anew;
    - every run lifts the workspace lock it took, failed or not.

    :meth:`reconfigure` gives it new settings (the operator applied a remedy: a new key, say) and
    :meth:`close` logs out. Each run reports, as :func:`run_flow` does, the first failure's code.
    """

    def __init__(self, agent: Agent, send, explain_error, cookies=_no_cookies) -> None:
        self.send, self.explain_error, self.cookies = send, explain_error, cookies
        self.talk = Conversation(agent, send, cookies)
        self.runs = 0

    @property
    def agent(self) -> Agent:
        return self.talk.agent

    def reconfigure(self, agent: Agent) -> None:
        """Run with these settings from now on; the session of the old ones is ended."""
        self.close()
        self.talk = Conversation(agent, self.send, self.cookies)

    def run(self) -> Outcome:
        talk, last, ran = self.talk, "nothing sent", 0
        self.runs += 1
        for call in talk.agent.calls():
            if call.role == "logout" or not talk.wants(call):  # the session stays open for the next run
                continue
            if call.role in ("login", "banner") and talk.memory.logged_in:
                continue  # still logged in from an earlier run
            try:
                answer = talk.ask(call)
            except Exception as exc:
                code, seen = self.explain_error(exc)
                self._failed(code)
                return Outcome(code, call.role, seen, call.label)
            if not answer.ok:
                self._failed(answer.code)
                return Outcome(answer.code, call.role, answer.seen, call.label)
            last, ran = answer.seen, ran + 1
        self._unlock()
        return Outcome(OK, "all", last, f"{ran} calls")

    def close(self) -> None:
        """Lift the lock and log out (best effort); the next run starts with a login."""
        self.talk.close()
        self._forget()

    def _failed(self, code: str) -> None:
        if code == AUTHENTICATION:
            self._unlock()
            self._forget()  # the device no longer knows the session: logging it out would be refused
        else:
            self.close()

    def _unlock(self) -> None:
        for call in self.talk.agent.calls():
            if call.role == "unlock" and self.talk.wants(call):
                try:
                    self.talk.ask(call)
                except Exception:
                    pass

    def _forget(self) -> None:
        agent = self.talk.agent
        self.talk.memory = Memory(session=agent.session if agent.auth == "session" else None)
