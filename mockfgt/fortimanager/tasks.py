"""Policy packages, installs and the tasks that report them (``/securityconsole/install/...``, ``/task/task``).

An install is a task that stays ``running`` for ``task_polls`` polls and then ends: a line per managed
device, ``error`` for a device that is down. No method takes a lock: the device state calls them under
its own.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

from ..clock import REAL, Clock
from .access import Principal, require, require_api_access
from .devices import ManagedDevice
from .errors import INVALID_DATA, INVALID_URL, NOT_FOUND, WORKSPACE_LOCKED, FMGError
from .workspace import Adom, Workspace


@dataclass
class Task:
    id: int
    title: str
    src: str
    user: str
    adom: Adom
    lines: list[dict]
    polls_left: int
    start_tm: int
    pid: int
    end_tm: int = 0


#: Install tasks whose records the device keeps; older ones are forgotten (and memory stays bounded).
TASKS_KEPT = 1000


class Tasks:
    """Install tasks by id, and the packages an install names."""

    def __init__(self, workspace: Workspace, devices: dict[str, ManagedDevice], settings: dict,
                 profiles: dict[str, dict]) -> None:
        self.workspace, self.devices, self.settings, self.profiles = workspace, devices, settings, profiles
        self.tasks: dict[int, Task] = {}
        self.clock: Clock = REAL  # start and end time stamps; the device sets its own (mockfgt.clock)
        self._ids = itertools.count(1)

    def packages(self, principal: Principal, adom: str) -> list[dict]:
        require(self.profiles, principal, "policy-objects", write=False)
        found = self.workspace.adom(principal, adom, INVALID_URL)
        scope = [{"name": d.name, "vdom": d.vdoms[0]} for d in self.devices.values() if d.adom == adom]
        return [{"name": p, "type": "pkg", "oid": found.oid + 1 + i, "scope member": scope}
                for i, p in enumerate(found.packages)]

    def install(self, principal: Principal, what: str, data) -> int:
        """``exec /securityconsole/install/package|device``: a task that completes after a few polls."""
        require(self.profiles, principal, "deploy-management", write=True)
        if not isinstance(data, dict) or not isinstance(data.get("adom"), str):
            raise FMGError(INVALID_DATA)
        adom = self.workspace.adom(principal, data["adom"])
        if what == "package" and data.get("pkg") not in adom.packages:
            raise FMGError(NOT_FOUND)
        if adom.lock is not None and adom.lock.owner != principal.owner:
            raise FMGError(WORKSPACE_LOCKED)
        lines = [self._install_line(entry) for entry in self._scope(adom, data.get("scope"))]
        task = Task(next(self._ids), f"Install {what.capitalize()}", f"install {what}", principal.name,
                    adom, lines, self.settings["task_polls"], int(self.clock.time()), secrets.randbelow(30000) + 1000)
        self.tasks[task.id] = task
        while len(self.tasks) > TASKS_KEPT:  # the oldest task's record goes, as the device's task log rotates
            del self.tasks[next(iter(self.tasks))]
        return task.id

    def _scope(self, adom: Adom, scope) -> list[dict]:
        if scope is None:
            return [{"name": d.name, "vdom": d.vdoms[0]} for d in self.devices.values() if d.adom == adom.name]
        if isinstance(scope, dict):
            scope = [scope]
        named = isinstance(scope, list) and all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in scope)
        if not named:
            raise FMGError(INVALID_DATA)
        for entry in scope:
            device = self.devices.get(entry["name"])
            if device is None or device.adom != adom.name:
                raise FMGError(INVALID_DATA)
        return scope

    def _install_line(self, entry: dict) -> dict:
        device = self.devices[entry["name"]]
        ok = device.reachable()
        return {"name": device.name, "vdom": entry.get("vdom", device.vdoms[0]), "oid": device.oid, "ip": device.ip,
                "err": 0 if ok else 1, "final_state": "done" if ok else "error",
                "detail": "install and save finished status=OK" if ok else "Device is unreachable"}

    def poll(self, principal: Principal, task_id: int) -> dict:
        """Each poll of an unfinished task moves it on; ``task_polls`` polls see it running."""
        require_api_access(principal)
        task = self.tasks.get(task_id)
        if task is None:
            raise FMGError(NOT_FOUND)
        if task.polls_left == 0 and not task.end_tm:
            task.end_tm = int(self.clock.time())
        view = self._view(task)
        if task.polls_left > 0:
            task.polls_left -= 1
        return view

    def rows(self, principal: Principal) -> list[dict]:
        require_api_access(principal)
        return [self._view(t) for t in self.tasks.values()]

    def delete(self, principal: Principal, task_id: int) -> None:
        require_api_access(principal)
        if self.tasks.pop(task_id, None) is None:
            raise FMGError(NOT_FOUND)

    def _view(self, task: Task) -> dict:
        total = self.settings["task_polls"] + 1
        percent = 100 if task.polls_left == 0 else 100 * (total - task.polls_left) // (total + 1)
        done = percent == 100
        lines = [{**{k: v for k, v in line.items() if k != "final_state"}, "percent": percent,
                  "state": line["final_state"] if done else "running", "err": line["err"] if done else 0,
                  "detail": line["detail"] if done else "start to install"}
                 for line in task.lines]
        errors = sum(line["err"] for line in lines)
        state = ("error" if errors else "done") if done else "running"
        return {
            "id": task.id, "title": task.title, "src": task.src, "user": task.user, "adom": task.adom.oid,
            "state": state, "percent": percent, "tot_percent": percent * len(lines), "num_lines": len(lines),
            "num_done": sum(1 for line in lines if line["state"] == "done"), "num_err": errors, "num_warn": 0,
            "start_tm": task.start_tm, "end_tm": task.end_tm if done else 0, "pid": task.pid, "flags": 0,
            "history": [{"detail": line["detail"], "name": line["name"],
                         "percent": percent, "vdom": line["vdom"]} for line in lines],
            "line": lines,
        }
