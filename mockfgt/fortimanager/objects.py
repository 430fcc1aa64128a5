"""Firewall objects as FortiManager stores them in an ADOM (``/pm/config/adom/<adom>/obj/...``).

FortiManager's shapes differ from FortiOS's: an address ``subnet`` is a two-item list
``["10.0.0.1", "255.255.255.255"]`` (input may also be ``"10.0.0.1/32"`` or ``"10.0.0.1 255.255.255.255"``),
group members are plain names (``["host_1", "host_2"]``), and every object carries an ``oid``.
Functions here build and merge rows; they raise :class:`ObjectDataError` for data the device refuses
with code -10, and know nothing of ADOMs, locks or permissions.
"""

from __future__ import annotations

import ipaddress
import uuid

from .enums import ENUMS

ADDRESS = "firewall/address"
ADDRGRP = "firewall/addrgrp"
#: Object tables emulated under /pm/config/adom/<adom>/obj/.
OBJECT_TABLES = (ADDRESS, ADDRGRP)
#: Tables a group's members may come from.
MEMBER_TABLES = {ADDRGRP: (ADDRESS, ADDRGRP)}

ADDRESS_TYPES = ("ipmask", "iprange", "fqdn", "wildcard", "geography", "wildcard-fqdn")


class ObjectDataError(ValueError):
    """Data the device refuses for this URL (-10 "The data is invalid for selected url")."""


def normalise_subnet(value) -> list[str]:
    """Any subnet spelling clients send -> ``[address, netmask]``."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        text = f"{value[0]}/{value[1]}"
    elif isinstance(value, str) and value.strip():
        text = "/".join(value.split()) if " " in value.strip() else value.strip()
    else:
        raise ObjectDataError(f"subnet: {value!r} is not an address and mask")
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError as exc:
        raise ObjectDataError(f"subnet: {exc}") from None
    host = text.split("/")[0]  # FortiManager keeps the address as typed, host bits included
    return [host, str(net.netmask)]


def _name(data: dict) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name or len(name) > 79:
        raise ObjectDataError("name: a name of 1 to 79 characters is required")
    return name


def _type(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):  # the numeric form (non-verbose clients)
        for text, number in ENUMS["address"]["type"].items():
            if number == value:
                return text
    if value not in ADDRESS_TYPES:
        raise ObjectDataError(f"type: {value!r} is not one of {', '.join(ADDRESS_TYPES)}")
    return value


def _members(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ObjectDataError("member: expected a list of names")
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise ObjectDataError("member: expected a list of names")
        if name not in names:
            names.append(name)
    return names


def build(path: str, data: dict, oid: int) -> dict:
    """A new row from client data, with the device's defaults; the client's extra attributes are kept."""
    if not isinstance(data, dict):
        raise ObjectDataError("expected an object")
    row = {"name": _name(data), "comment": "", "color": 0, "uuid": str(uuid.uuid4()), "oid": oid}
    if path == ADDRESS:
        row.update({"type": "ipmask", "subnet": ["0.0.0.0", "0.0.0.0"], "associated-interface": []})
    else:
        row.update({"member": [], "exclude": "disable"})
    return merge(path, row, data)


def merge(path: str, row: dict, data: dict) -> dict:
    """``row`` updated with ``data`` (``update`` semantics); ``oid`` and ``uuid`` stay the device's."""
    if not isinstance(data, dict):
        raise ObjectDataError("expected an object")
    out = dict(row)
    for key, value in data.items():
        if key in ("oid",):
            continue
        if key == "name":
            out["name"] = _name(data)
        elif path == ADDRESS and key == "subnet":
            out["subnet"] = normalise_subnet(value)
        elif path == ADDRESS and key == "type":
            out["type"] = _type(value)
        elif path == ADDRGRP and key == "member":
            out["member"] = _members(value)
        elif path == ADDRESS and key == "fqdn":
            if not isinstance(value, str) or not value:
                raise ObjectDataError("fqdn: expected a host name")
            out["fqdn"] = value
        else:
            out[key] = value
    if path == ADDRESS and out["type"] == "fqdn" and not out.get("fqdn"):
        raise ObjectDataError("fqdn: required for type fqdn")
    if path == ADDRGRP and out["name"] in out["member"]:
        raise ObjectDataError("member: a group cannot contain itself")
    return out


def parse_members(value) -> list[str]:
    """The ``data`` of a ``.../addrgrp/<name>/member`` call: a name or a list of names."""
    return _members(value)
