"""The FortiGates a mock FortiManager manages: ``/dvmdb/device`` rows and their answers through ``/sys/proxy/json``.

A managed device is not a second emulator: it answers proxied FortiOS REST calls with a plausible
envelope (identity fields, ``status``/``http_status``) so that a client can walk ``data[]`` and find
the device whose inner result failed. ``conn_status = "down"`` makes the FortiManager report the
device unreachable; ``proxy_status`` makes the device itself answer with that HTTP status.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs

#: Code and message FortiManager puts in a target's own status when it cannot reach the device.
UNREACHABLE = (-20042, "Device is unreachable")


@dataclass
class ManagedDevice:
    name: str
    serial: str
    ip: str
    adom: str
    platform: str
    version: tuple[int, int, int]
    build: int
    vdoms: list[str]
    conn_status: str = "up"
    proxy_status: int = 200
    oid: int = 0
    revision_seed: str = field(default_factory=lambda: secrets.token_hex(8))
    revisions: int = 0

    @property
    def version_string(self) -> str:
        return "v{}.{}.{}".format(*self.version)

    def row(self) -> dict:
        """The ``/dvmdb/device`` entry (enum fields as strings; the wire layer renders them)."""
        major, minor, patch = self.version
        return {
            "name": self.name, "oid": self.oid, "sn": self.serial, "ip": self.ip, "hostname": self.name,
            "platform_str": self.platform, "os_type": "fos", "os_ver": f"{major}.0", "mr": minor,
            "patch": patch, "build": self.build, "conn_status": self.conn_status, "conf_status": "insync",
            "db_status": "nomod", "dev_status": "installed", "conn_mode": "passive", "mgmt_mode": "fmg",
            "ha_mode": "standalone", "ha_slave": None, "adm_usr": "admin",
            "adm_pass": ["ENC", hashlib.sha256(self.serial.encode()).hexdigest()[:40]], "desc": "",
            "vdom": [{"name": v, "oid": 3 + i, "status": None} for i, v in enumerate(self.vdoms)],
        }

    def reachable(self) -> bool:
        return self.conn_status == "up"

    def rest_answer(self, action: str, resource: str, payload) -> dict:
        """What the FortiGate answers a proxied REST call: a FortiOS v2 envelope."""
        path, _, query = resource.partition("?")
        parts = [p for p in path.split("/") if p][2:]  # drop 'api', 'v2'
        tree = parts[0] if parts else ""
        vdom = parse_qs(query).get("vdom", [self.vdoms[0]])[0]
        env: dict = {"http_method": action.upper()}
        if len(parts) >= 3:
            env.update(path=parts[1], name=parts[2])
        if tree == "monitor" and len(parts) > 3:
            env["action"] = "/".join(parts[3:])
        if self.proxy_status != 200:
            env.update(status="error", http_status=self.proxy_status)
        elif tree == "cmdb" and action != "get":
            self.revisions += 1
            old = hashlib.md5(f"{self.revision_seed}{self.revisions - 1}".encode()).hexdigest()
            new = hashlib.md5(f"{self.revision_seed}{self.revisions}".encode()).hexdigest()
            env.update(revision=new, old_revision=old, revision_changed=True, status="success", http_status=200)
            if isinstance(payload, dict) and "name" in payload:
                env["mkey"] = payload["name"]
        else:
            env.update(results=self._results(parts), status="success")
        env.update(vdom=vdom, serial=self.serial, version=self.version_string, build=self.build)
        return env

    def _results(self, parts: list[str]):
        if parts[:3] == ["monitor", "system", "status"]:
            return {"model_name": "FortiGate", "model_number": "VM64", "model": "FGVM64", "hostname": self.name,
                    "log_disk_status": "available"}
        return []
