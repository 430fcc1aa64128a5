"""The managed FortiGates as FortiManager shows them: ``/dvmdb/device`` rows and ``/sys/proxy/json``.

A proxied FortiOS REST call fans out to the targets (one device, an ADOM's or every device of the
group ``All_FortiGate``); each target answers with its own status and response. No method takes a
lock: the device state calls them under its own.
"""

from __future__ import annotations

from .access import Principal, require
from .devices import UNREACHABLE, ManagedDevice
from .errors import INVALID_DATA, NOT_FOUND, OK, FMGError
from .workspace import Workspace


class Fleet:
    """The managed devices, their rows and the proxy fan-out."""

    def __init__(self, devices: dict[str, ManagedDevice], workspace: Workspace, profiles: dict[str, dict]) -> None:
        self.devices, self.workspace, self.profiles = devices, workspace, profiles

    def rows(self, principal: Principal, adom: str | None = None) -> list[dict]:
        require(self.profiles, principal, "device-manager", write=False)
        if adom is not None:
            self.workspace.adom(principal, adom)
        return [d.row() for d in self.devices.values() if principal.admin.may_use(d.adom) and adom in (None, d.adom)]

    def row(self, principal: Principal, name: str, adom: str | None = None) -> dict:
        for row in self.rows(principal, adom):
            if row["name"] == name:
                return row
        raise FMGError(NOT_FOUND)

    def set(self, name: str, conn_status: str | None = None, proxy_status: int | None = None) -> None:
        device = self.devices.get(name)
        if device is None:
            raise FMGError(NOT_FOUND, f"no managed device {name}")
        device.conn_status = conn_status or device.conn_status
        device.proxy_status = proxy_status or device.proxy_status

    def proxy(self, principal: Principal, data) -> list[dict]:
        """Fan a FortiOS REST call out: one entry per device, each with its own status and response."""
        if not isinstance(data, dict) or data.get("action") not in ("get", "post", "put", "delete"):
            raise FMGError(INVALID_DATA)
        resource, targets = data.get("resource"), data.get("target")
        if not isinstance(resource, str) or not resource.startswith("/api/v2/") or not isinstance(targets, list):
            raise FMGError(INVALID_DATA)
        require(self.profiles, principal, "device-manager", write=data["action"] != "get")
        devices: list[ManagedDevice] = []
        for target in targets:
            for device in self._targets(principal, target):
                if device not in devices:
                    devices.append(device)
        return [_proxied(d, data["action"], resource, data.get("payload")) for d in devices]

    def _targets(self, principal: Principal, target) -> list[ManagedDevice]:
        """``adom/<a>/device/<d>``, ``adom/<a>/group/All_FortiGate``, ``device/<d>``, ``group/All_FortiGate``."""
        parts = [p for p in target.split("/") if p] if isinstance(target, str) else []
        adom = None
        if parts[:1] == ["adom"] and len(parts) == 4:
            adom = self.workspace.adom(principal, parts[1]).name
            parts = parts[2:]
        if len(parts) != 2 or parts[0] not in ("device", "group"):
            raise FMGError(INVALID_DATA)
        usable = [d for d in self.devices.values() if principal.admin.may_use(d.adom) and adom in (None, d.adom)]
        if parts[0] == "group":
            if parts[1] != "All_FortiGate":
                raise FMGError(INVALID_DATA)
            return usable
        found = [d for d in usable if d.name == parts[1]]
        if not found:
            raise FMGError(INVALID_DATA)
        return found


def _proxied(device: ManagedDevice, action: str, resource: str, payload) -> dict:
    if not device.reachable():
        return {"status": {"code": UNREACHABLE[0], "message": UNREACHABLE[1]}, "target": device.name}
    return {"response": device.rest_answer(action, resource, payload), "status": {"code": OK, "message": "OK"},
            "target": device.name}
