"""The FortiManager kind's client half: what a correct agent sends over JSON-RPC, how each answer is
judged, and what ``mockfgt diagnose`` advises when one fails.

A FortiManager answers HTTP 200 and puts a JSON-RPC code inside, judged by
:func:`mockfgt.classify.classify_jsonrpc`: its -11 means a refused credential on the status call, but a
missing permission (rpc-permit, ADOM, profile) on any later call, unless the status call, asked once
more, now gets -11 too (the session died in between).

Client side only: this module imports nothing of the emulation, so it works against a real device.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from .. import schema as s
from ..agent import Agent
from ..classify import classify_jsonrpc, classify_status
from ..codes import AUTHORIZATION, OK
from ..flows import COMMENT, CREDENTIAL_ROLES, PROBE_SUBNET, Answer, Call, Memory, encode
from ..kinds import Ask, KindClient

if TYPE_CHECKING:
    from ..flows import Conversation

JSONRPC_PATH = "/jsonrpc"
JSONRPC_NO_PERMISSION = -11


def jsonrpc(method: str, url: str, **params) -> dict:
    return {"method": method, "params": [{"url": url, **params}]}


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


def judge_jsonrpc(call: Call, code: int | None) -> str:
    if code is None or code == 0:
        return OK
    credential = "unverified" if call.role in CREDENTIAL_ROLES else "accepted"
    body = call.body or {}
    url = body["params"][0]["url"] if body.get("params") else ""
    return classify_jsonrpc(code, method=body.get("method", "get"), url=url, credential=credential)


def _rpc(role: str, method: str, url: str, when: str = "", **params) -> Call:
    return Call(role, "POST", JSONRPC_PATH, jsonrpc(method, url, **params), when=when)


class FortiManagerClient(KindClient):
    """What an address-managing agent does with a FortiManager, and how it judges the answers."""

    display_name = "FortiManager"
    api_name = "FortiManager JSON-RPC"
    status_path = JSONRPC_PATH
    client_fields = {
        "adom": s.Str(None, doc="the ADOM the agent works in (default: root)"),
        "workspace_lock": s.Bool(True, doc="in workspace mode the agent locks the ADOM before writing"),
        "trusthost_user": s.Str(None, doc="trusted-hosts mode: the admin whose trusted-host slots the agent "
                                          "maintains (/cli/global/system/admin/user/<name>)"),
    }

    # -- the agent's calls -----------------------------------------------------------------------
    def calls(self, agent: Agent) -> list[Call]:
        """Log in if the agent uses a password, status, workspace mode, the ADOM's addresses; then, for a
        writing agent, add and delete an address (under the ADOM lock in workspace mode); in trusted-hosts
        mode, read an admin's trusted hosts and write them back unchanged; log out."""
        adom = agent.adom or "root"
        address, workspace = f"/pm/config/adom/{adom}/obj/firewall/address", f"/dvmdb/adom/{adom}/workspace"
        calls = []
        if agent.logs_in:
            credentials = {"user": agent.user, "passwd": agent.password or ""}
            calls.append(_rpc("login", "exec", "/sys/login/user", data=credentials))
        calls += [_rpc("status", "get", "/sys/status"),
                  _rpc("mode", "get", "/cli/global/system/global", fields=["workspace-mode", "adom-status"]),
                  _rpc("read", "get", address)]
        if agent.write:
            data = {"name": agent.probe_name, "subnet": list(PROBE_SUBNET), "comment": COMMENT}
            calls += [_rpc("lock", "exec", f"{workspace}/lock", when="workspace"),
                      _rpc("write", "add", address, data=data),
                      _rpc("cleanup", "delete", f"{address}/{agent.probe_name}"),
                      _rpc("commit", "exec", f"{workspace}/commit", when="workspace"),
                      _rpc("unlock", "exec", f"{workspace}/unlock", when="locked")]
        if agent.trusthost_user:
            admin = f"/cli/global/system/admin/user/{agent.trusthost_user}"
            calls += [_rpc("trusthosts-read", "get", admin), _rpc("trusthosts", "update", admin, data={})]
        if agent.logs_in:
            calls.append(_rpc("logout", "exec", "/sys/logout", when="logged-in"))
        return calls

    def request(self, memory: Memory, call: Call, agent: Agent) -> tuple[str, str, dict, bytes | None]:
        headers: dict[str, str] = {}
        query = ""
        if agent.api_key and agent.token_in == "query":
            query = "?" + urlencode({"access_token": agent.api_key})
        elif agent.api_key:
            headers["Authorization"] = f"Bearer {agent.api_key}"
        body = json.loads(json.dumps(call.body))
        if call.role == "trusthosts" and isinstance(memory.data, dict):
            body["params"][0]["data"] = {k: v for k, v in memory.data.items() if "trusthost" in k}
        body.update(id=1, verbose=1, **({"session": memory.session} if memory.session else {}))
        return call.method, call.path + query, headers, encode(replace(call, body=body), headers)

    # -- judging answers ---------------------------------------------------------------------------
    def judge(self, call: Call, status: int, body: bytes) -> str:
        if status == 200:
            return judge_jsonrpc(call, jsonrpc_status(body))
        return classify_status(status)

    def surface(self, call: Call | None, status: int, body: bytes) -> str:
        if status == 200:
            code = jsonrpc_status(body)
            return f"code {code}" if code is not None else "HTTP 200"
        return f"HTTP {status}"

    def learn(self, memory: Memory, call: Call, answer: Answer, cookies) -> None:
        if call.role == "login":
            memory.session, memory.logged_in = session_of(answer.body), "jsonrpc"
        elif call.role == "lock":
            memory.locked = True
        elif call.role == "unlock":
            memory.locked = False
        data = (jsonrpc_result(answer.body) or {}).get("data")
        if call.role == "mode" and isinstance(data, dict):
            memory.workspace = data.get("workspace-mode") not in ("disabled", 0, None)
        memory.data = data

    def credential_died(self, talk: Conversation, call: Call, answer: Answer, agent: Agent) -> bool:
        """A -11 after /sys/status took the credential: does /sys/status refuse it now (idled out)?"""
        if answer.code != AUTHORIZATION or call.role in CREDENTIAL_ROLES:
            return False
        if jsonrpc_status(answer.body) != JSONRPC_NO_PERMISSION:
            return False
        status_call = next(c for c in self.calls(agent) if c.role == "status")
        try:
            status, body = talk.send(*talk.request(status_call, agent))
        except Exception:  # nothing learnt: the first verdict stands
            return False
        return status == 200 and jsonrpc_status(body) == JSONRPC_NO_PERMISSION

    # -- the banner ----------------------------------------------------------------------------------
    def banner_lines(self, url: str) -> list[str]:
        return [f"  JSON-RPC   {url}{JSONRPC_PATH}"]

    # -- diagnose ------------------------------------------------------------------------------------
    def read_calls(self, agent: Agent) -> list[Call]:
        """The workspace mode as the agent reads it (a /cli/global/system table: a least-privilege
        profile without System Settings read is refused there), then the ADOM's addresses and groups."""
        adom = agent.adom or "root"
        mode = next(c for c in self.calls(agent) if c.role == "mode")
        return [mode, *(_rpc("read", "get", f"/pm/config/adom/{adom}/obj/firewall/{table}")
                        for table in ("address", "addrgrp"))]

    def data_of(self, body: bytes) -> object:
        return (jsonrpc_result(body) or {}).get("data")

    def speaks_the_api(self, body: bytes) -> bool:
        return jsonrpc_result(body) is not None

    def status_details(self, body: bytes) -> dict[str, str]:
        data = (jsonrpc_result(body) or {}).get("data") or {}
        if not isinstance(data, dict):
            return {}
        keys = {"hostname": "Hostname", "model": "Platform Type", "version": "Version", "serial": "Serial Number"}
        return {label: str(data[key]) for label, key in keys.items() if key in data}

    def after_status(self, agent: Agent, ask: Ask) -> dict[str, str]:
        """Workspace mode as the agent learns it (a locking agent then locks the ADOM to write)."""
        call = next(c for c in self.calls(agent) if c.role == "mode")
        answer = ask(call, None)
        data = (jsonrpc_result(answer.body) or {}).get("data") if answer and answer.ok else None
        if not isinstance(data, dict):
            return {}
        return {"workspace": str(data.get("workspace-mode", "?")), "ADOMs": str(data.get("adom-status", "?"))}

    def scope(self, agent: Agent) -> str:
        return f"ADOM {agent.adom or 'root'}"

    def login_detail(self, memory: Memory, agent: Agent) -> str:
        return f"{agent.user}: session from exec /sys/login/user"

    def refusal_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        if call.role == "login" or seen == "code -22":
            return "The login failed: check the user name and password (and that the admin has rpc-permit)."
        if agent.auth == "session":
            return ("The session id the agent kept is refused (-11): it idled out (idle_timeout_api) or was logged "
                    "out. Log in again (exec /sys/login/user; here: --user and --password) whenever a session that "
                    "worked gets -11.")
        return ("FortiManager answers -11 for an unknown or regenerated API key, an expired session, a key sent in "
                "the URL (7.4.7/7.6.2 and later) and an admin without rpc-permit: compare the key with the device's.")

    def permission_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        if call.role == "mode":
            return ("The admin's profile cannot read System Settings (/cli/global/system/...): set system-setting "
                    "read in its admin profile.")
        if seen == "code -20055":
            return ("Another administrator holds the ADOM's workspace lock (the GUI, another script): wait until "
                    "they unlock it or their session idles out, then retry the lock; reads still work.")
        if seen == "code -10147":
            return "Workspace mode is on: lock the ADOM before writing, then commit and unlock."
        if call.role in ("write", "cleanup"):
            return "The admin's rpc-permit allows reads only: set rpc-permit read-write."
        return f"The admin's profile lacks ADOM '{agent.adom or 'root'}' (or rpc-permit): grant it."
