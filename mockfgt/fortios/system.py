"""The device-wide endpoints clients read when they connect (reference G.9), answered from the state.

``cmdb/system/global``, ``cmdb/system/dns``, ``cmdb/system/status`` before 7.4 (singletons: ``results``
is an object),
``cmdb/system/vdom`` (a table), ``monitor/license/status`` and ``monitor/system/interface``.
They are read-only views: nothing in a scenario changes them except what the state already knows
(host name, VDOMs, lockout settings, the URL-query token setting, the emulated version).

Each entry names the accprofile group that guards it, as the FNDN "Access Group" lines and the
fortigate_exporter permission table give it (``any``: every API user may read it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from .models import FortiOSState


@dataclass(frozen=True)
class SystemView:
    """One read-only endpoint: who may read it, what it answers and (for CMDB) its schema."""

    group: str
    read: Callable[[FortiOSState], dict | list]
    help: str = ""
    singleton: bool = True
    #: The first version without the endpoint (None: every version has it).
    until: tuple[int, int, int] | None = None

    def exists(self, state: FortiOSState) -> bool:
        return self.until is None or state.version < self.until


def global_settings(state: FortiOSState) -> dict:
    settings = state.settings
    row = {
        "hostname": state.hostname,
        "alias": f"FortiGate-{state.status()['model_number']}",
        "timezone": "04",
        "language": "english",
        "admintimeout": 5,
        "admin-sport": 443,
        "admin-port": 80,
        "admin-https-redirect": "enable",
        # 7.2.1 replaced the self-signed admin certificate with Fortinet_GUI_Server (reference C.1).
        "admin-server-cert": "Fortinet_GUI_Server" if state.version >= (7, 2, 1) else "self-sign",
        "admin-lockout-threshold": settings["admin_lockout_threshold"],
        "admin-lockout-duration": settings["admin_lockout_duration"],
        "vdom-mode": "multi-vdom" if len(state.vdoms) > 1 else "no-vdom",
    }
    if state.version >= (7, 4, 5):  # the setting exists from 7.4.5 (reference A.1.1)
        row["rest-api-key-url-query"] = "enable" if settings["rest_api_key_url_query"] else "disable"
    return row


def dns_settings(state: FortiOSState) -> dict:
    """FortiGuard DNS, the factory default."""
    return {
        "primary": "96.45.45.45", "secondary": "96.45.46.46", "protocol": "cleartext",
        "ssl-certificate": "Fortinet_Factory", "server-hostname": [], "domain": [],
        "ip6-primary": "::", "ip6-secondary": "::", "timeout": 5, "retry": 2,
        "dns-cache-limit": 5000, "dns-cache-ttl": 1800, "cache-notfound-responses": "disable",
        "source-ip": "0.0.0.0", "interface-select-method": "auto", "interface": "",
        "server-select-method": "least-rtt", "alt-primary": "0.0.0.0", "alt-secondary": "0.0.0.0",
    }


def vdom_rows(state: FortiOSState) -> list[dict]:
    return [{"name": v, "q_origin_key": v, "short-name": v, "vcluster-id": 0, "flag": 0} for v in state.vdoms]


def license_status(state: FortiOSState) -> dict:
    """The ``vdom`` entry has the captured shape (fortigate_exporter); the others name a licensed VM."""
    return {
        "forticare": {"type": "downloaded", "status": "registered"},
        "vm": {"type": "platform", "status": "valid"},
        "vdom": {"type": "platform", "can_upgrade": False, "used": len(state.vdoms), "max": 10},
    }


def interfaces(state: FortiOSState) -> dict:
    """Two ports of a VM, keyed by name, in the monitor's shape (fortigate_exporter interface capture)."""
    digest = hashlib.sha256(state.serial.encode()).digest()
    ports = {"port1": ("192.168.1.99", 24, True), "port2": ("0.0.0.0", 0, False)}
    out = {}
    for i, (name, (ip, mask, link)) in enumerate(ports.items()):
        mac = ":".join(f"{b:02x}" for b in (0x00, 0x0C, 0x29, digest[0], digest[1], i + 1))
        out[name] = {
            "id": name, "name": name, "alias": "", "mac": mac, "ip": ip, "mask": mask, "link": link,
            "speed": 10000.0 if link else 0, "duplex": 1 if link else 0, "tx_packets": 0, "rx_packets": 0,
            "tx_bytes": 0, "rx_bytes": 0, "tx_errors": 0, "rx_errors": 0,
        }
    return out


#: CMDB endpoints by table path.
CMDB: dict[str, SystemView] = {
    "system/global": SystemView("sysgrp", global_settings, "Configure global attributes."),
    # sysgrp per the 6.4 API specification's "Access Group" line (ref H.5).
    "system/dns": SystemView("sysgrp", dns_settings, "Configure DNS."),
    "system/vdom": SystemView("sysgrp", vdom_rows, "Configure virtual domain.", singleton=False),
    # Gone from 7.4 (ref H.6); with ?global=1 it answers an array whose [0] carries "version".
    "system/status": SystemView("any", lambda state: state.status(), "System status.", until=(7, 4, 0)),
}

#: Monitor GET endpoints by (path, name).
MONITOR: dict[tuple[str, str], SystemView] = {
    ("system", "status"): SystemView("any", lambda state: state.status()),
    ("license", "status"): SystemView("any", license_status),
    ("system", "interface"): SystemView("netgrp", interfaces),
}


def schema(path: str, state: FortiOSState) -> dict:
    """``?action=schema`` for a system CMDB endpoint: singletons are 'complex', tables have an mkey."""
    view = CMDB[path]
    sample = view.read(state)
    row = sample if view.singleton else sample[0]
    assert isinstance(row, dict), "a view reads one row (a singleton) or a list of rows"
    children = {name: _field_schema(name, value) for name, value in row.items() if name != "q_origin_key"}
    out: dict[str, object] = {"name": path.split("/")[1], "category": "complex" if view.singleton else "table", "help": view.help}
    if not view.singleton:
        out.update(mkey="name", mkey_type="string")
    out.update(access_group=view.group, children=children)
    return out


def _field_schema(name: str, value) -> dict:
    if isinstance(value, list):
        return {"name": name, "category": "table", "mkey": "name", "mkey_type": "string", "children": {}}
    kind = "integer" if isinstance(value, int) and not isinstance(value, bool) else "string"
    return {"name": name, "category": "unitary", "type": kind}
