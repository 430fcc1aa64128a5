"""Enumerated fields: strings with ``"verbose": 1``, integers without (reference B.1).

FortiManager answers ``"conn_status": "up"`` to a verbose request and ``"conn_status": 1`` otherwise.
The state keeps the strings; the wire layer calls :func:`render` with the table for the kind of data it
answers (fields named ``type`` or ``state`` mean different things in different tables).
"""

from __future__ import annotations

ENUMS: dict[str, dict[str, dict[str, int]]] = {
    "address": {
        "type": {"ipmask": 0, "iprange": 1, "fqdn": 2, "wildcard": 3, "geography": 6, "wildcard-fqdn": 7},
    },
    "device": {
        "conn_status": {"UNKNOWN": 0, "up": 1, "down": 2},
        "conf_status": {"unknown": 0, "insync": 1, "outofsync": 2},
        "os_type": {"fos": 0, "fsw": 1, "foc": 2, "fml": 3, "faz": 4},
        "mgmt_mode": {"unreg": 0, "fmg": 1, "faz": 2, "fmgfaz": 3},
        "os_ver": {f"{major}.0": major for major in range(10)},
    },
    "adom": {
        "state": {"disable": 0, "enable": 1},
        "mode": {"ems": 0, "gms": 1, "provider": 2, "normal": 3, "backup": 4},
        "workspace_mode": {"disabled": 0, "normal": 1, "workflow": 2},
        "os_ver": {f"{major}.0": major for major in range(10)},
    },
    "global": {
        "workspace-mode": {"disabled": 0, "normal": 1, "workflow": 2},
        "adom-status": {"disable": 0, "enable": 1},
        "adom-mode": {"normal": 0, "advanced": 1},
    },
    "admin": {
        "user_type": {"local": 0, "radius": 1, "ldap": 2, "tacacs-plus": 3, "pki-auth": 4, "group": 5, "sso": 6,
                      "api": 7},
        "rpc-permit": {"read-write": 0, "none": 1, "read": 2},
    },
    "task": {
        "state": {"pending": 0, "running": 1, "cancelling": 2, "cancelled": 3, "done": 4, "error": 5,
                  "aborting": 6, "aborted": 7, "warning": 8, "to_continue": 9, "unknown": 10},
    },
}


def render(data, table: str | None, verbose: bool):
    """``data`` as the device sends it: enum strings become integers unless the request was verbose."""
    if verbose or table is None or table not in ENUMS:
        return data
    fields = ENUMS[table]
    if isinstance(data, list):
        return [render(item, table, verbose) for item in data]
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in fields and isinstance(value, str) and value in fields[key]:
                out[key] = fields[key][value]
            elif isinstance(value, (dict, list)):
                out[key] = render(value, table, verbose)
            else:
                out[key] = value
        return out
    return data
