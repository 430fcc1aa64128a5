"""Toybox: a toy REST device kind, defined outside mockfgt to prove a kind needs nothing inside it.

Registered by the entry point ``toybox`` of the group ``mockfgt.kinds`` (the dist-info folder next to
this file makes it a distribution once this folder is on PYTHONPATH). Its API:

    GET    /api/status          {"hostname": ..., "model": "Toybox"}       401 without a valid key
    GET    /api/objects         {"objects": [{"name": ...}, ...]}
    POST   /api/objects         {"name": ...} -> 201                        403 for a read-only user
    DELETE /api/objects/<name>  200, 404 when there is none                 403 for a read-only user

A user's key travels as ``Authorization: Bearer``. The kind's whole code is this file: the server half
(state, operations, a plain WSGI app) and the client half (the agent's calls and how answers are judged).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from mockfgt import schema as s
from mockfgt.agent import Agent
from mockfgt.classify import classify_status
from mockfgt.flows import Call, Memory, encode
from mockfgt.kinds import DeviceKind, Operation

ACCESS = ("read", "read-write")


def new_key() -> str:
    return secrets.token_hex(12)


@dataclass
class ToyState:
    hostname: str
    serial: str
    users: dict[str, dict]  # name -> {"token": ..., "access": ...}
    retired: dict[str, str] = field(default_factory=dict)
    objects: dict[str, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def user_of(self, token: str | None) -> dict | None:
        with self.lock:
            return next((u for u in self.users.values() if token and u["token"] == token), None)


def _regenerate(state: ToyState, op: dict) -> None:
    with state.lock:
        user = state.users[op["user"]]
        state.retired[op["user"]], user["token"] = user["token"], new_key()


def _set_access(state: ToyState, op: dict) -> None:
    with state.lock:
        state.users[op["user"]]["access"] = op["access"]


def _answer(start_response, status: str, payload: dict) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _app(get_state):
    def app(environ, start_response):
        state: ToyState = get_state()
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        header = environ.get("HTTP_AUTHORIZATION", "")
        user = state.user_of(header[7:] if header.startswith("Bearer ") else None)
        if not path.startswith("/api/"):
            return _answer(start_response, "404 Not Found", {"error": "no such page"})
        if user is None:
            return _answer(start_response, "401 Unauthorized", {"error": "who are you?"})
        if path == "/api/status" and method == "GET":
            return _answer(start_response, "200 OK", {"hostname": state.hostname, "model": "Toybox",
                                                      "serial": state.serial})
        if method != "GET" and user["access"] != "read-write":
            return _answer(start_response, "403 Forbidden", {"error": "read-only"})
        if path == "/api/objects" and method == "GET":
            with state.lock:
                return _answer(start_response, "200 OK", {"objects": list(state.objects.values())})
        if path == "/api/objects" and method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            item = json.loads(environ["wsgi.input"].read(size) or b"{}")
            with state.lock:
                state.objects[item["name"]] = item
            return _answer(start_response, "201 Created", item)
        if path.startswith("/api/objects/") and method == "DELETE":
            with state.lock:
                gone = state.objects.pop(unquote(path.removeprefix("/api/objects/")), None)
            return _answer(start_response, "200 OK" if gone else "404 Not Found", {})
        return _answer(start_response, "404 Not Found", {"error": "no such endpoint"})

    return app


class ToyKind(DeviceKind):
    name = "toybox"
    display_name = "Toybox"
    api_name = "Toybox REST"
    status_path = "/api/status"

    # -- server half ---------------------------------------------------------------------------------
    @property
    def DEVICE(self) -> s.Table:
        return s.Table(fields={
            "kind": s.Str(self.name),
            "hostname": s.HostName("toy-mock"),
            "serial": s.Str("TOY0000001"),
            "users": s.List(lambda: [{"name": "agent", "access": "read-write", "token": None}], item=s.Table(
                fields={"name": s.Str(), "access": s.Str("read-write", choices=ACCESS), "token": s.Str(None)},
                required=("name",))),
        })

    @property
    def OPERATIONS(self) -> dict[str, Operation]:
        user = s.Str(doc="user name")
        return {
            "regenerate-key": (s.Table(fields={"user": user}, required=("user",)), _regenerate),
            "set-access": (s.Table(fields={"user": user, "access": s.Str(choices=ACCESS)}, required=("user", "access")),
                           _set_access),
        }

    def build_state(self, device: dict) -> ToyState:
        users = {u["name"]: {"token": u["token"] or new_key(), "access": u["access"]} for u in device["users"]}
        return ToyState(hostname=device["hostname"], serial=device["serial"], users=users)

    def apply(self, state: ToyState, op: dict) -> None:
        try:
            super().apply(state, op)
        except KeyError as exc:
            raise ValueError(f"operation {op['op']}: no such user {exc}") from None

    def create_app(self, get_state):
        return _app(get_state)

    def users(self, state: ToyState) -> list[str]:
        return list(state.users)

    def live_tokens(self, state: ToyState) -> dict[str, str]:
        with state.lock:
            return {name: u["token"] for name, u in state.users.items()}

    def token_for(self, state: ToyState, user: str, which: str) -> str | None:
        if which == "none":
            return None
        if which == "unknown":
            return new_key()
        if which == "stale":
            return state.retired.get(user)
        return state.users[user]["token"]

    # -- client half ---------------------------------------------------------------------------------
    def calls(self, agent: Agent) -> list[Call]:
        calls = [Call("status", "GET", "/api/status"), Call("read", "GET", "/api/objects")]
        if agent.write:
            calls += [Call("write", "POST", "/api/objects", {"name": agent.probe_name}),
                      Call("cleanup", "DELETE", f"/api/objects/{quote(agent.probe_name, safe='')}")]
        return calls

    def request(self, memory: Memory, call: Call, agent: Agent) -> tuple[str, str, dict, bytes | None]:
        headers = {"Authorization": f"Bearer {agent.api_key}"} if agent.api_key else {}
        return call.method, call.path, headers, encode(call, headers)

    def judge(self, call: Call, status: int, body: bytes) -> str:
        return classify_status(status)

    def data_of(self, body: bytes) -> object:
        try:
            return json.loads(body).get("objects")
        except (ValueError, AttributeError):
            return None

    def speaks_the_api(self, body: bytes) -> bool:
        try:
            return json.loads(body).get("model") == "Toybox"
        except (ValueError, AttributeError):
            return False

    def status_details(self, body: bytes) -> dict[str, str]:
        answer = json.loads(body)
        return {"hostname": answer["hostname"], "model": answer["model"], "serial": answer["serial"]}

    def permission_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        return "The agent's user is read-only: give it read-write access (set-access)."
