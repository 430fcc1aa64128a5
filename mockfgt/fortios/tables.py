"""CMDB tables the mock FortiGate emulates: their defaults, value checks and access group.

A row is stored the way the device answers it: every field present (defaults included), lists of
names as ``[{"name": ..., "q_origin_key": ...}]``, subnets in the dotted-mask form. Values that the
device would refuse raise :class:`~mockfgt.fortios.models.FortiOSError` with its error code.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from .errors import FortiOSError


def _error(code: int, text: str) -> FortiOSError:
    return FortiOSError(500, code, text)


def _ipv4_subnet(value) -> str:
    """'10.0.0.1/32', '10.0.0.1 255.255.255.255' or ['10.0.0.1', '255.255.255.255'] -> dotted form."""
    if isinstance(value, list) and len(value) == 2:
        value = " ".join(str(v) for v in value)
    if not isinstance(value, str):
        raise _error(-651, "subnet: Input value is invalid")
    text = value.strip().replace(" ", "/", 1) if " " in value.strip() else value.strip()
    try:
        net = ipaddress.IPv4Network(text, strict=False)
        host = ipaddress.IPv4Address(text.split("/")[0])
    except ValueError:
        raise _error(-8, "subnet: Invalid IP Address") from None
    return f"{host} {net.netmask}"


def _ipv6_prefix(value) -> str:
    try:
        iface = ipaddress.IPv6Interface(str(value).strip())
    except ValueError:
        raise _error(-8, "ip6: Invalid IP Address") from None
    return f"{iface.ip}/{iface.network.prefixlen}"


def _enum(*allowed: str) -> Callable:
    def check(value, name):
        if value not in allowed:
            raise _error(-651, f"{name}: Input value is invalid")
        return value

    check.options = allowed  # type: ignore[attr-defined]  # a function attribute, read by TableSpec.schema()
    return check


def _text(limit: int) -> Callable:
    def check(value, name):
        if not isinstance(value, str) or len(value) > limit:
            raise _error(-72 if isinstance(value, str) else -651, f"{name}: Input value is invalid")
        return value

    check.size = limit  # type: ignore[attr-defined]  # a function attribute, read by TableSpec.schema()
    return check


def _color(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 32:
        raise _error(-650, f"{name}: The integer value is not within valid range")
    return value


def _names(value, name):
    """Member lists: [{"name": "a"}], ["a"] or "a b" (the CLI form) all become [{"name", "q_origin_key"}]."""
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        raise _error(-651, f"{name}: Input value is invalid")
    names = []
    for item in value:
        item_name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(item_name, str) or not item_name:
            raise _error(-651, f"{name}: Input value is invalid")
        if item_name not in names:
            names.append(item_name)
    return [{"name": n, "q_origin_key": n} for n in names]


@dataclass(frozen=True)
class TableSpec:
    """One CMDB table: its access group, default row, per-field checks and member datasources."""

    path: str
    group: str
    defaults: dict
    checks: dict[str, Callable] = field(default_factory=dict)
    member_tables: tuple[str, ...] = ()
    finish: Callable[[dict], None] = lambda row: None
    help: str = ""
    #: FortiOS value types of fields whose default does not tell (addresses, prefixes).
    types: dict[str, str] = field(default_factory=dict)

    def build(self, data: dict, allow_empty_members: bool) -> dict:
        row = {"name": None, "q_origin_key": None, "uuid": str(uuid.uuid4()), **_deep_copy(self.defaults)}
        return self.merge(row, data, allow_empty_members)

    def merge(self, row: dict, data: dict, allow_empty_members: bool) -> dict:
        row = _deep_copy(row)
        for key, value in data.items():
            if key in ("q_origin_key", "uuid"):
                continue
            if key == "name":
                row["name"] = _text(79)(value, "name")
                if not value:
                    raise _error(-651, "name: Input value is invalid")
            elif key in self.checks:
                row[key] = self.checks[key](value, key)
            elif key in self.defaults:
                row[key] = value
            # Unknown attributes are ignored, as the device ignores fields of other versions.
        row["q_origin_key"] = row["name"]
        if self.member_tables and not row["member"] and not allow_empty_members:
            raise _error(-56, "member: Empty values are not allowed")
        self.finish(row)
        return row

    def default_row(self) -> dict:
        """What ``?action=default`` answers: a row of defaults, before a name or uuid is assigned."""
        return {"name": "", "q_origin_key": "", "uuid": "00000000-0000-0000-0000-000000000000",
                **_deep_copy(self.defaults)}

    def schema(self) -> dict:
        """What ``?action=schema`` answers: the table's mkey, access group and one entry per field."""
        fields = {"name": None, "uuid": None, **self.defaults}
        children = {name: self._field_schema(name, default) for name, default in fields.items()}
        return {
            "name": self.path.split("/")[1], "category": "table", "help": self.help,
            "mkey": "name", "mkey_type": "string", "access_group": self.group, "children": children,
        }

    def _field_schema(self, name: str, default) -> dict:
        if isinstance(default, list):
            datasource = [f"{t.replace('/', '.')}.name" for t in self.member_tables] if name == "member" else []
            child = {"name": "name", "category": "unitary", "type": "string", "size": 79}
            if datasource:
                child["datasource"] = datasource
            return {"name": name, "category": "table", "mkey": "name", "mkey_type": "string",
                    "children": {"name": child}}
        check = self.checks.get(name)
        out: dict[str, object] = {"name": name, "category": "unitary", "type": self._type_of(name, default, check)}
        size, options = getattr(check, "size", None), getattr(check, "options", None)  # see _text, _enum
        if name == "name":
            out["size"] = 79
        elif size is not None:
            out["size"] = size
        if options is not None:
            out["options"] = [{"name": option} for option in options]
        if default is not None:
            out["default"] = default
        return out

    def _type_of(self, name: str, default, check) -> str:
        if name in self.types:
            return self.types[name]
        if name == "uuid":
            return "uuid"
        if hasattr(check, "options"):
            return "option"
        if isinstance(default, int) and not isinstance(default, bool):
            return "integer"
        return "string"


def _deep_copy(value):
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _finish_address(row: dict) -> None:
    # For ipmask objects the device mirrors the subnet into start-ip/end-ip and wildcard.
    if row["type"] == "ipmask":
        address, mask = row["subnet"].split()
        row["start-ip"], row["end-ip"] = address, mask
        row["wildcard"] = row["subnet"]


_COMMON = {"comment": "", "color": 0, "fabric-object": "disable", "tagging": []}
_COMMON_CHECKS = {"comment": _text(255), "color": _color, "fabric-object": _enum("enable", "disable")}

TABLES: dict[str, TableSpec] = {
    "firewall/address": TableSpec(
        path="firewall/address",
        group="fwgrp",
        defaults={
            "subnet": "0.0.0.0 0.0.0.0", "type": "ipmask", "route-tag": 0, "sub-type": "sdn",
            "clearpass-spt": "unknown", "macaddr": [], "start-ip": "0.0.0.0", "end-ip": "0.0.0.0",
            "fqdn": "", "country": "", "wildcard-fqdn": "", "cache-ttl": 0, "wildcard": "0.0.0.0 0.0.0.0",
            "sdn": "", "fsso-group": [], "interface": "", "tag-detection-level": "", "tag-type": "",
            "hw-vendor": "", "hw-model": "", "os": "", "sw-version": "", "obj-type": "ip",
            "sdn-addr-type": "private", "node-ip-only": "disable", "obj-id": "", "list": [],
            "associated-interface": "", "filter": "", "allow-routing": "disable", **_COMMON,
        },
        checks={
            "subnet": lambda v, n: _ipv4_subnet(v),
            "type": _enum("ipmask", "iprange", "fqdn", "geography", "wildcard", "dynamic",
                          "interface-subnet", "mac", "route-tag"),
            "fqdn": _text(255),
            "allow-routing": _enum("enable", "disable"),
            **_COMMON_CHECKS,
        },
        finish=_finish_address,
        help="Configure IPv4 addresses.",
        types={"subnet": "ipv4-classnet-any", "start-ip": "ipv4-address-any", "end-ip": "ipv4-address-any",
               "wildcard": "ipv4-classnet-any"},
    ),
    "firewall/address6": TableSpec(
        path="firewall/address6",
        group="fwgrp",
        defaults={
            "type": "ipprefix", "route-tag": 0, "macaddr": [], "sdn": "", "ip6": "::/0",
            "start-ip": "::", "end-ip": "::", "fqdn": "", "country": "", "cache-ttl": 0,
            "obj-id": "", "list": [], "template": "", "subnet-segment": [], "host-type": "any",
            "host": "::", **_COMMON,
        },
        checks={
            "ip6": lambda v, n: _ipv6_prefix(v),
            "type": _enum("ipprefix", "iprange", "fqdn", "geography", "dynamic", "template", "mac", "route-tag"),
            "fqdn": _text(255),
            **_COMMON_CHECKS,
        },
        help="Configure IPv6 firewall addresses.",
        types={"ip6": "ipv6-network", "start-ip": "ipv6-ip", "end-ip": "ipv6-ip", "host": "ipv6-ip"},
    ),
    "firewall/addrgrp": TableSpec(
        path="firewall/addrgrp",
        group="fwgrp",
        defaults={
            "type": "default", "category": "default", "member": [], "exclude": "disable",
            "exclude-member": [], "allow-routing": "disable", **_COMMON,
        },
        checks={"member": _names, "exclude-member": _names, "type": _enum("default", "folder"), **_COMMON_CHECKS},
        member_tables=("firewall/address", "firewall/addrgrp"),
        help="Configure IPv4 address groups.",
    ),
    "firewall/addrgrp6": TableSpec(
        path="firewall/addrgrp6",
        group="fwgrp",
        defaults={"member": [], "exclude": "disable", "exclude-member": [], **_COMMON},
        checks={"member": _names, "exclude-member": _names, **_COMMON_CHECKS},
        member_tables=("firewall/address6", "firewall/addrgrp6"),
        help="Configure IPv6 address groups.",
    ),
}

#: Fields of a table that are member sub-tables with their own URLs (``.../addrgrp/<grp>/member``, ref H.15).
SUBTABLES: dict[str, tuple[str, ...]] = {
    "firewall/addrgrp": ("member", "exclude-member"),
    "firewall/addrgrp6": ("member", "exclude-member"),
}

_OFFICE_365 = ("login.microsoftonline.com", "login.microsoft.com", "login.windows.net")
_G_SUITE = ("gmail.com", "wildcard.google.com")

#: What a factory-fresh FortiGate holds in every VDOM (ref H.4): ``(since version, table, row)``.
#: ``all`` and ``none`` are in the reference; the others are the objects of factory configurations
#: and their first versions as far as public configs show them (a choice, docs/fortios.md).
FACTORY: tuple[tuple[tuple[int, int, int], str, dict], ...] = (
    ((0, 0, 0), "firewall/address", {"name": "none", "subnet": "0.0.0.0 255.255.255.255"}),
    ((0, 0, 0), "firewall/address", {"name": "all"}),
    ((0, 0, 0), "firewall/address", {"name": "SSLVPN_TUNNEL_ADDR1", "type": "iprange",
                                     "start-ip": "10.212.134.200", "end-ip": "10.212.134.210"}),
    ((6, 0, 0), "firewall/address", {"name": "FIREWALL_AUTH_PORTAL_ADDRESS"}),
    ((6, 4, 0), "firewall/address", {"name": "FABRIC_DEVICE", "comment": "IPv4 addresses of Fabric Devices."}),
    *(((6, 2, 0), "firewall/address", {"name": fqdn, "type": "fqdn", "fqdn": fqdn}) for fqdn in (*_OFFICE_365, "gmail.com")),
    ((6, 2, 0), "firewall/address", {"name": "wildcard.google.com", "type": "fqdn", "fqdn": "*.google.com"}),
    ((6, 2, 0), "firewall/address", {"name": "wildcard.dropbox.com", "type": "fqdn", "fqdn": "*.dropbox.com"}),
    ((6, 2, 0), "firewall/addrgrp", {"name": "G Suite", "member": list(_G_SUITE)}),
    ((6, 2, 0), "firewall/addrgrp", {"name": "Microsoft Office 365", "member": list(_OFFICE_365)}),
    ((0, 0, 0), "firewall/address6", {"name": "all"}),
    ((0, 0, 0), "firewall/address6", {"name": "none", "ip6": "::/128"}),
    ((0, 0, 0), "firewall/address6", {"name": "SSLVPN_TUNNEL_IPv6_ADDR1", "ip6": "fdff:ffff::/120"}),
)


@cache
def _factory_built(version: tuple[int, int, int]) -> tuple[tuple[str, dict, tuple[str, ...]], ...]:
    # Built once per version: a full row costs a deep copy of the defaults, and every start and swap seeds.
    built = []
    for since, path, row in FACTORY:
        if version >= since:
            stored = TABLES[path].build(_deep_copy(row), True)
            built.append((path, stored, tuple(k for k, v in stored.items() if isinstance(v, list))))
    return tuple(built)


def factory_rows(version: tuple[int, int, int]) -> list[tuple[str, dict]]:
    """The factory objects of a version as stored rows, each with its own uuid (members before groups)."""
    rows = []
    for path, stored, lists in _factory_built(version):
        row = dict(stored)  # strings and numbers are shared; lists (of flat dicts) are copied
        for key in lists:
            row[key] = [dict(item) for item in stored[key]]
        row["uuid"] = str(uuid.uuid4())
        rows.append((path, row))
    return rows
