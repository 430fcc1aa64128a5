"""FortiManager administrators: ``config system admin user`` and ``config system admin profile``.

An admin is a login (``user_type = "local"``, with a password) or an API user (``"api"``, with a key);
either has a profile, an ``rpc-permit`` (JSON-RPC access: none, read, read-write), an ADOM list and
ten IPv4 plus ten IPv6 trusted-host slots. A slot at 0.0.0.0/0 (or ::/0) is empty, and a family with
every slot empty admits any source of that family.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..kernel import parse_network, random_key, source_address
from .errors import INVALID_DATA, NOT_FOUND, FMGError

ACCESS_LEVELS = ("none", "read", "read-write")
RPC_PERMITS = ACCESS_LEVELS
USER_TYPES = ("api", "local")
ALL_ADOMS = "all_adoms"
#: Permission groups of an admin profile that the emulation checks, and what each one guards.
PERMISSION_GROUPS = {
    "system-setting": "admin users and global settings (/cli/global/system/...)",
    "device-manager": "managed devices (/dvmdb/device) and /sys/proxy/json",
    "policy-objects": "firewall objects (/pm/config/adom/<adom>/obj/...) and ADOM locks",
    "deploy-management": "installs (/securityconsole/install/...)",
}
BUILTIN_PROFILES = {
    "Super_User": {g: "read-write" for g in PERMISSION_GROUPS},
    "Standard_User": {**{g: "read-write" for g in PERMISSION_GROUPS}, "system-setting": "read"},
    "Restricted_User": {**{g: "read" for g in PERMISSION_GROUPS}, "system-setting": "none"},
    "Package_User": {"system-setting": "read", "device-manager": "read", "policy-objects": "read-write",
                     "deploy-management": "read-write"},
    "No_Permission_User": {g: "none" for g in PERMISSION_GROUPS},
}
TRUSTHOST_SLOTS = 10
EMPTY_V4 = ipaddress.IPv4Network("0.0.0.0/0")
EMPTY_V6 = ipaddress.IPv6Network("::/0")
TOKEN_ALPHABET = string.ascii_letters + string.digits
KEY_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> str:
    """An API key as FortiManager prints one (``New API key: 33fzwipq...``): 32 of [a-z0-9] (reference H.13)."""
    return random_key(32, KEY_ALPHABET)


def new_password() -> str:
    """A local admin's generated password: 16 of [A-Za-z0-9], so no agent's command line takes one
    that starts with '-' for an option (token_urlsafe did, 1 time in 64)."""
    return random_key(16, TOKEN_ALPHABET)


def new_session_id() -> str:
    """A session id shaped like the captured ones: 64 random bytes, base64 (88 characters, '==' at the end)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


parse_trusthost = parse_network  # FortiManager takes every form, the allow-all one included


def place_trusthosts(values: list) -> tuple[list, list]:
    """Fill the ten IPv4 and ten IPv6 slots in order; the rest stay empty (0.0.0.0/0, ::/0)."""
    nets = [parse_trusthost(v) for v in values]
    v4 = [n for n in nets if n.version == 4 and n != EMPTY_V4]
    v6 = [n for n in nets if n.version == 6 and n != EMPTY_V6]
    if len(v4) > TRUSTHOST_SLOTS or len(v6) > TRUSTHOST_SLOTS:
        raise ValueError(f"at most {TRUSTHOST_SLOTS} IPv4 and {TRUSTHOST_SLOTS} IPv6 trusted hosts")
    return (v4 + [EMPTY_V4] * (TRUSTHOST_SLOTS - len(v4)), v6 + [EMPTY_V6] * (TRUSTHOST_SLOTS - len(v6)))


@dataclass
class Admin:
    """``config system admin user``: a login (``local``, with a password) or an API user (with a key)."""

    name: str
    user_type: str
    profile: str
    rpc_permit: str
    adoms: list[str]
    trusthost: list = field(default_factory=lambda: [EMPTY_V4] * TRUSTHOST_SLOTS)
    ip6_trusthost: list = field(default_factory=lambda: [EMPTY_V6] * TRUSTHOST_SLOTS)
    password: str | None = None
    token: str | None = None
    number: int = 0  # the lock owner id of requests made with the key
    login_max: int = 32  # sessions the admin may hold at once (set login-max; default 32)

    def trusts(self, peer: str) -> bool:
        """A family whose slots are all empty admits any address of that family (as 0.0.0.0/0 does)."""
        ip = source_address(peer)
        slots = self.trusthost if ip.version == 4 else self.ip6_trusthost
        empty = EMPTY_V4 if ip.version == 4 else EMPTY_V6
        set_slots = [n for n in slots if n != empty]
        return not set_slots or any(ip in n for n in set_slots)

    def may_use(self, adom: str) -> bool:
        return ALL_ADOMS in self.adoms or adom in self.adoms


def trusthost_slot(key: str) -> tuple[int, int] | None:
    """``trusthost3`` -> (4, 2); ``ip6-trusthost10`` -> (6, 9); anything else -> None."""
    for prefix, family in (("ip6-trusthost", 6), ("trusthost", 4)):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            index = int(key[len(prefix):]) - 1
            if 0 <= index < TRUSTHOST_SLOTS:
                return family, index
    return None


class AdminBook:
    """``config system admin user`` and ``profile``: the admins, the deleted ones and their retired keys.

    Scenario operations and ``/cli/global/system/admin/user`` change admins here; who may call what is
    :mod:`mockfgt.fortimanager.access`. No method takes a lock: the device state calls them under its own.
    """

    def __init__(self, admins: list[Admin], profiles: dict[str, dict], numbers: Iterator[int]) -> None:
        self.profiles = {**BUILTIN_PROFILES, **profiles}
        self.admins: dict[str, Admin] = {}
        for admin in admins:
            admin.number = next(numbers)  # the lock owner id of requests made with its key
            self.admins[admin.name] = admin
        self.deleted: dict[str, Admin] = {}
        self.retired_tokens: dict[str, str | None] = {}

    def get(self, name: str) -> Admin:
        try:
            return self.admins[name]
        except KeyError:
            raise FMGError(NOT_FOUND) from None

    def regenerate_key(self, name: str) -> str:
        """``execute api-user generate-key``: the old key fails with -11 from the next request."""
        admin = self.get(name)
        if admin.user_type != "api":
            raise FMGError(INVALID_DATA, f"{name} is not an API user")
        self.retired_tokens[name] = admin.token
        admin.token = new_token()
        return admin.token

    def delete(self, name: str) -> None:
        admin = self.admins.pop(name)
        self.deleted[name] = admin
        if admin.token:
            self.retired_tokens[name] = admin.token

    def recreate(self, name: str) -> None:
        """Bring back a deleted admin with its old settings (and a new key for an API user)."""
        admin = self.deleted.pop(name)
        if admin.user_type == "api":
            admin.token = new_token()
        self.admins[name] = admin

    def set_profile(self, name: str, profile: str) -> None:
        if profile not in self.profiles:
            raise FMGError(INVALID_DATA, f"no profile {profile}")
        self.get(name).profile = profile

    def set_trusthosts(self, name: str, trusthosts: list) -> None:
        admin = self.get(name)
        admin.trusthost, admin.ip6_trusthost = place_trusthosts(trusthosts)

    def rows(self) -> list[dict]:
        return [self._row(a) for a in self.admins.values()]

    def row(self, name: str) -> dict:
        return self._row(self.get(name))

    def update(self, name: str, data) -> str:
        """``set``/``update`` on ``/cli/global/system/admin/user/<name>``: all changes or none (-10)."""
        admin = self.get(name)
        if not isinstance(data, dict):
            raise FMGError(INVALID_DATA)
        for attr, value in self._changes(admin, data).items():
            setattr(admin, attr, value)
        return admin.name

    def _changes(self, admin: Admin, data: dict) -> dict:
        v4, v6 = list(admin.trusthost), list(admin.ip6_trusthost)
        changes: dict = {}
        try:
            for key, value in data.items():
                slot = trusthost_slot(key)
                if slot is not None:
                    family, index = slot
                    net = parse_trusthost(value)
                    if net.version != family:
                        raise ValueError(f"{key} needs an IPv{family} address")
                    (v4 if family == 4 else v6)[index] = net
                elif key == "rpc-permit" and value in RPC_PERMITS:
                    changes["rpc_permit"] = value
                elif key == "profileid" and value in self.profiles:
                    changes["profile"] = value
                elif key == "adom" and isinstance(value, list):
                    changes["adoms"] = [a.get("adom-name") if isinstance(a, dict) else a for a in value]
                elif key in ("rpc-permit", "profileid", "adom") or key.startswith(("trusthost", "ip6-trusthost")) \
                        or (key == "userid" and value != admin.name):
                    raise ValueError(f"{key}: {value!r}")
        except ValueError as exc:
            raise FMGError(INVALID_DATA) from exc
        changes.update(trusthost=v4, ip6_trusthost=v6)
        return changes

    @staticmethod
    def _row(admin: Admin) -> dict:
        row = {"userid": admin.name, "user_type": admin.user_type, "profileid": admin.profile,
               "rpc-permit": admin.rpc_permit, "adom": [{"adom-name": a} for a in admin.adoms]}
        for i, net in enumerate(admin.trusthost, 1):
            row[f"trusthost{i}"] = [str(net.network_address), str(net.netmask)]
        for i, net in enumerate(admin.ip6_trusthost, 1):
            row[f"ip6-trusthost{i}"] = str(net)
        return row
