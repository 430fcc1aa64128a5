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
from dataclasses import dataclass, field

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


def new_token() -> str:
    """An API key as clients expect one: 30 characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(30))


def new_password() -> str:
    """A local admin's generated password: 16 of [A-Za-z0-9], so no agent's command line takes one
    that starts with '-' for an option (token_urlsafe did, 1 time in 64)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(16))


def new_session_id() -> str:
    """A session id shaped like the captured ones: 64 random bytes, base64 (88 characters, '==' at the end)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def parse_version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lstrip("v").split(".")]
    return tuple((parts + [0, 0, 0])[:3])  # type: ignore[return-value]


def parse_trusthost(value) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network from ``["10.0.0.0", "255.0.0.0"]``, ``"10.0.0.0 255.0.0.0"``, ``"10.0.0.0/8"``,
    ``"2001:db8::/32"`` or a bare address."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        text = f"{value[0]}/{value[1]}"
    elif isinstance(value, str):
        text = "/".join(value.split())
    else:
        raise ValueError(f"{value!r} is not an address with a mask")
    return ipaddress.ip_network(text, strict=False)


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

    def trusts(self, peer: str) -> bool:
        """A family whose slots are all empty admits any address of that family (as 0.0.0.0/0 does)."""
        ip = ipaddress.ip_address(peer.split("%")[0])
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
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
