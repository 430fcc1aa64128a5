"""Steps 4 and 5: the agent's credential and permissions, through its own calls (:mod:`mockfgt.flows`)."""

from __future__ import annotations

import dataclasses
import http.cookiejar
import urllib.error
import urllib.request

from .. import kinds
from ..agent import Agent
from ..codes import AUTHENTICATION, CONNECTION, TIMEOUT, TLS
from ..flows import Answer, Call, Conversation
from ..kinds import DeviceKind
from .advice import _classify, _client_cert_note, _credential_word, _short, _what
from .certificates import _agent_context
from .report import Step


class ApiSteps:
    """Steps 4 and 5 of the probe (see :class:`mockfgt.diagnose.Probe`)."""

    target: Agent
    agent: Agent
    kind: DeviceKind
    jar: http.cookiejar.CookieJar
    talk: Conversation

    # -- 4. authentication -----------------------------------------------------------------------
    def authentication(self, step: Step) -> Step:
        t = self.target
        check = dataclasses.replace(self.agent, vdom=None, write=False)  # the credential alone
        for call in self._pending("login", "banner"):
            answer = self._call(step, call)
            if answer is None or not answer.ok:
                return self._credential_refused(step, check, call, answer)
        if self.talk.memory.logged_in:
            step.details["login"] = self.kind.login_detail(self.talk.memory, self.agent)
        if t.auth == "token" and not t.token:
            step.notes.append("No credential was given (--token, or --user and --password).")
        status_call = next(c for c in self.agent.calls() if c.role == "status")
        answer = self._call(step, status_call, check)
        if answer is None or not answer.ok:
            return self._credential_refused(step, check, status_call, answer)
        if not self.kind.speaks_the_api(answer.body):
            others = [kinds.get(n) for n in kinds.names() if n != t.kind]
            instead = " or ".join(f"a {k.display_name} (--kind {k.name})" for k in others)
            return step.fail(CONNECTION, f"the port answers HTTP, but not the {self.kind.api_name} API ({answer.seen})",
                             "Check the port (another service answers here)"
                             + (f", or whether the device is {instead}." if instead else "."))
        step.details.update(self.kind.status_details(answer.body))
        step.details.update(self.kind.after_status(self.agent, self._ask))
        if t.token_in == "query" and t.auth == "token":
            step.notes.append("The token travels in the URL (?access_token=): FortiOS 7.4.5+ and FortiManager "
                              "7.4.7/7.6.2+ refuse that by default. Prefer Authorization: Bearer.")
        who = {"token": "the API key" if t.token else "no credential", "password": "the login",
               "session": "the kept session"}[t.auth]
        return step.ok(f"{who} is accepted ({answer.seen})")

    def _pending(self, *roles: str):
        """The agent's calls of these roles that it makes, decided one by one as it learns."""
        for call in self.agent.calls():
            if call.role in roles and self.talk.wants(call):
                yield call

    def _credential_refused(self, step: Step, agent: Agent, call: Call, answer: Answer | None) -> Step:
        if answer is None:  # a transport failure, already recorded in the step
            return step
        t, seen = self.target, answer.seen
        if answer.code == AUTHENTICATION:
            step.fail(answer.code, f"the device refused the {_credential_word(call)} ({seen})",
                      self._refusal_advice(call, seen))
            if t.token and t.token_in == "query" and self._works_as_bearer(agent, call):
                step.notes.append("The same token works as Authorization: Bearer: this device refuses a token in "
                                  "the URL (?access_token=). Send it in the header instead.")
            return step
        what = "the login" if call.role in ("login", "banner") else "the status call"
        return step.fail(answer.code, f"{what} was refused ({seen})", self._permission_advice(call, seen))

    def _works_as_bearer(self, agent: Agent, call: Call) -> bool:
        answer = self._call(Step("retry"), call, dataclasses.replace(agent, token_in="header"))
        return answer is not None and answer.ok

    def _ask(self, call: Call, agent: Agent | None = None) -> Answer | None:
        """One more call a kind makes to learn something; a failure here decides nothing."""
        return self._call(Step(call.role), call, agent)

    def _refusal_advice(self, call: Call, seen: str) -> str:
        if seen == "HTTP 429":
            return ("The device has blocked this source address for a while after repeated failed logins "
                    "(admin-lockout-threshold / admin-lockout-duration). Wait, then fix the credential.")
        return self.kind.refusal_advice(self.agent, self.talk.memory, call, seen)

    def _permission_advice(self, call: Call, seen: str) -> str:
        return self.kind.permission_advice(self.agent, self.talk.memory, call, seen)

    # -- 5. authorization ------------------------------------------------------------------------
    def authorization(self, step: Step) -> Step:
        t = self.target
        for call in self.kind.read_calls(self.agent):
            answer = self._call(step, call)
            if answer is None:
                return step
            if not answer.ok:
                return step.fail(answer.code, f"reading {_what(call)} was refused ({answer.seen})",
                                 self._read_refusal_advice(call, answer.seen))
            data = self.kind.data_of(answer.body)
            step.details[_what(call)] = f"{len(data)} readable" if isinstance(data, list) else "readable"
        if t.write and not self._write_check(step):
            return step
        if t.trusthost_user and not self._trusthost_check(step):
            return step
        if t.write:
            return step.ok("the agent may read and write address objects")
        return step.ok(f"address objects and groups are readable in {self.kind.scope(self.agent)} (writes not checked: --write-check)")

    def _write_check(self, step: Step) -> bool:
        """Create the clearly named test address, then delete it (under the ADOM lock in workspace mode)."""
        name = self.agent.probe_name
        for call in self._pending("lock", "write", "cleanup", "commit", "unlock"):
            answer = self._call(step, call)
            if answer is None:
                return False
            did = {"write": "created", "cleanup": "deleted"}.get(call.role)
            if not answer.ok:
                what = f"the test address {name} could not be {did}" if did else f"{call.label} was refused"
                leftover = f"Delete {name} by hand." if call.role in ("cleanup", "commit") else ""
                step.fail(answer.code, f"{what} ({answer.seen})", self._permission_advice(call, answer.seen), leftover)
                return False
            key = f"test address {did}" if did else f"workspace {call.role}"
            step.details[key] = f"{name} ({answer.seen})" if did else answer.seen
        return True

    def _trusthost_check(self, step: Step) -> bool:
        """Read the admin's trusted hosts and write them back unchanged, as trusted-hosts mode does."""
        for call in self._pending("trusthosts-read", "trusthosts"):
            answer = self._call(step, call)
            if answer is None:
                return False
            if not answer.ok:
                step.fail(answer.code, f"{call.label} was refused ({answer.seen})",
                          f"Changing the trusted hosts of admin {self.target.trusthost_user} needs the Super_User "
                          "profile: give the API user Super_User (or maintain trusted hosts by hand).")
                return False
            step.details[f"trusted hosts ({call.role.replace('trusthosts', '').strip('-') or 'written back'})"] = answer.seen
        return True

    def _read_refusal_advice(self, call: Call, seen: str) -> str:
        return self.kind.read_refusal_advice(self.agent, self.talk.memory, call, seen, self._ask)

    def logout(self) -> None:
        """Lift a workspace lock left behind and end the session the login opened."""
        self.talk.close()

    # -- HTTP ------------------------------------------------------------------------------------
    def _call(self, step: Step, call: Call, agent: Agent | None = None) -> Answer | None:
        """Send one call as the agent would; None when it failed below HTTP (recorded in ``step``)."""
        try:
            return self.talk.ask(call, agent)
        except Exception as exc:  # what the agent would meet: classified, explained, never raised
            self._transport_failed(step, call, exc)
            return None

    def _send(self, method: str, path: str, headers: dict, body: bytes | None) -> tuple[int, bytes]:
        handlers = [urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar)]
        if self.target.url.startswith("https:"):  # the agent connects directly, trusting what it trusts
            handlers.append(urllib.request.HTTPSHandler(context=_agent_context(self.target)))
        request = urllib.request.Request(self.target.base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.build_opener(*handlers).open(request, timeout=self.target.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:  # an answer: judged like any other
            return exc.code, exc.read()

    def _transport_failed(self, step: Step, call: Call, exc: BaseException) -> None:
        t, code = self.target, _classify(exc)
        reason = (getattr(getattr(exc, "reason", None), "reason", None) or getattr(exc, "reason", "") or "")
        if code == TIMEOUT:
            step.fail(TIMEOUT, f"no HTTP answer to the {call.role} call within {t.timeout:g} s",
                      "TLS went through, but the device did not answer in time: it may be overloaded (CPU, "
                      "memory, conserve mode).")
        elif code == TLS and "CERTIFICATE_REQUIRED" in str(reason).upper():
            step.fail(TLS, "the device ended the TLS session: it requires a client certificate",
                      "TLS 1.3 reports a missing client certificate only after the handshake.", _client_cert_note(t))
        else:
            step.fail(code, f"the {call.role} call failed: {_short(exc)}")
