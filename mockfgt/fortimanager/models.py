"""The state of a mock FortiManager: admins and their sessions, ADOMs with workspace locks, objects,
managed devices and install tasks.

Plain Python objects behind one lock, with no HTTP in sight. Everything FortiManager decides (who may
call what, which status code a refusal carries, whether a write needs the ADOM lock) is decided here;
:mod:`mockfgt.fortimanager.wire` only translates JSON-RPC to these calls and :class:`FMGError` to
``result[i].status``. The scenario operations, the control API and the requests all change the same state.

Who is asking is a :class:`Principal`: an admin plus the owner id that holds workspace locks (the
session's number after ``exec /sys/login/user``; a fixed number per API key, since "the same user
account will always share the same session").
"""

from __future__ import annotations

import copy
import hmac
import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

from . import objects
from .admins import (
    BUILTIN_PROFILES,
    RPC_PERMITS,
    Admin,
    new_session_id,
    new_token,
    parse_trusthost,
    parse_version,
    place_trusthosts,
    trusthost_slot,
)
from .devices import UNREACHABLE, ManagedDevice
from .objects import ADDRGRP, MEMBER_TABLES, OBJECT_TABLES, ObjectDataError

# -- status codes (reference B.3) -----------------------------------------------------------------
OK = 0
INTERNAL_ERROR = -1
ALREADY_EXISTS = -2
NOT_FOUND = -3
INVALID_URL = -6
NOT_IN_WORKSPACE_MODE = -9
INVALID_DATA = -10
NO_PERMISSION = -11
LOGIN_FAILED = -22
IN_USE = -10131
NO_WRITE_PERMISSION = -10147
WORKSPACE_LOCKED = -20055

MESSAGES = {
    OK: "OK",
    INTERNAL_ERROR: "Internal error",
    ALREADY_EXISTS: "Object already exists",
    NOT_FOUND: "Object does not exist",
    INVALID_URL: "Invalid url",
    NOT_IN_WORKSPACE_MODE: "current adom is not in the workspace mode",
    INVALID_DATA: "The data is invalid for selected url",
    NO_PERMISSION: "No permission for the resource",
    LOGIN_FAILED: "Login fail",
    IN_USE: "Used by other objects",
    NO_WRITE_PERMISSION: "no write permission",
    WORKSPACE_LOCKED: "Workspace is locked by other user",
    UNREACHABLE[0]: UNREACHABLE[1],
}


class FMGError(Exception):
    """A refusal answered in ``result[i].status`` (HTTP 200 all the same)."""

    def __init__(self, code: int, message: str | None = None):
        self.code, self.message = code, message or MESSAGES.get(code, "Error")
        super().__init__(f"{code} {self.message}")


@dataclass
class Session:
    sid: str
    number: int
    admin: str
    last_used: float


@dataclass(frozen=True)
class Principal:
    admin: Admin
    owner: int
    session: str | None = None

    @property
    def name(self) -> str:
        return self.admin.name


@dataclass
class AdomLock:
    owner: int
    user: str
    since: int


class Adom:
    """One ADOM: committed objects, and while locked in workspace mode the lock holder's working copy."""

    def __init__(self, name: str, oid: int, os_ver: str, mr: int) -> None:
        self.name, self.oid, self.os_ver, self.mr = name, oid, os_ver, mr
        self.uuid = str(uuid.uuid4())
        self.committed: dict[str, dict[str, dict]] = {path: {} for path in OBJECT_TABLES}
        self.working: dict[str, dict[str, dict]] | None = None
        self.lock: AdomLock | None = None
        self.dirty = False
        self.packages = ["default"]

    def tables_for(self, owner: int | None) -> dict[str, dict[str, dict]]:
        """What a caller sees: its own uncommitted work if it holds the lock, the committed objects otherwise."""
        if self.lock is not None and self.lock.owner == owner and self.working is not None:
            return self.working
        return self.committed


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


# -- the state -------------------------------------------------------------------------------------
class FortiManagerState:
    """Everything a mock FortiManager remembers. Thread-safe: every public method takes the lock."""

    def __init__(self, *, hostname: str, serial: str, version: str, build: int, release_date: str,
                 settings: dict, profiles: dict[str, dict], admins: list[Admin], adoms: list[str],
                 devices: list[ManagedDevice]) -> None:
        self.lock = threading.RLock()
        self.hostname, self.serial, self.build, self.release_date = hostname, serial, build, release_date
        self.version = parse_version(version)
        self.settings = dict(settings)
        self.profiles = {**BUILTIN_PROFILES, **profiles}
        self._numbers = itertools.count(13807)  # session numbers look like captured ones
        self._oids = itertools.count(3000)
        self._task_ids = itertools.count(1)
        self.admins: dict[str, Admin] = {}
        for admin in admins:
            admin.number = next(self._numbers)
            self.admins[admin.name] = admin
        self.deleted_admins: dict[str, Admin] = {}
        self.retired_tokens: dict[str, str | None] = {}
        self.sessions: dict[str, Session] = {}
        self.ended_sessions: dict[str, str] = {}  # admin -> the id of its last session that ended
        self.adoms: dict[str, Adom] = {}
        for name in adoms:
            self.adoms[name] = Adom(name, next(self._oids), f"{self.version[0]}.0", self.version[1])
        self.devices: dict[str, ManagedDevice] = {}
        for device in devices:
            device.oid = next(self._oids)
            self.devices[device.name] = device
        self.tasks: dict[int, Task] = {}

    # -- identity ------------------------------------------------------------------------------
    @property
    def version_string(self) -> str:
        return "v{}.{}.{}".format(*self.version)

    def status(self) -> dict:
        """``/sys/status``: human-readable keys, ``Version`` like ``v7.4.3-build2487 240124 (GA)``."""
        major, minor, patch = self.version
        return {
            "Admin Domain Configuration": "Enabled" if self.settings["adom_status"] else "Disabled",
            "BIOS version": "04000002",
            "Branch Point": str(self.build),
            "Build": self.build,
            "Current Time": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()),
            "Daylight Time Saving": "Yes",
            "FIPS Mode": "Disabled",
            "HA Mode": "Stand Alone",
            "Hostname": self.hostname,
            "License Status": "Valid",
            "Major": major,
            "Max Number of Admin Domains": 10,
            "Max Number of Device Groups": 10000,
            "Minor": minor,
            "Offline Mode": "Disabled",
            "Patch": patch,
            "Platform Full Name": "FortiManager-VM64-KVM",
            "Platform Type": "FMG-VM64-KVM",
            "Release Version Information": " (GA)",
            "Serial Number": self.serial,
            "TZ": "UTC",
            "Time Zone": "(GMT) Greenwich Mean Time.",
            "Version": f"{self.version_string}-build{self.build:04d} {self.release_date} (GA)",
            "x86-64 Applications": "Yes",
        }

    def system_global(self) -> dict:
        """``/cli/global/system/global``: clients read ``workspace-mode`` and ``adom-status`` after login."""
        return {
            "hostname": self.hostname,
            "workspace-mode": self.settings["workspace_mode"],
            "adom-status": "enable" if self.settings["adom_status"] else "disable",
            "adom-mode": "normal",
            "admintimeout": max(1, int(self.settings["idle_timeout_api"] // 60)),
            "timezone": "00",
        }

    def workspace_enabled(self) -> bool:
        return self.settings["workspace_mode"] != "disabled"

    # -- authentication ------------------------------------------------------------------------
    def api_keys_supported(self) -> bool:
        """API keys exist from FortiManager 7.2.2 on; before that a Bearer header means nothing."""
        return self.version >= (7, 2, 2)

    def query_token_allowed(self) -> bool:
        """``?access_token=`` was removed in 7.4.7 / 7.6.2 (scenario setting ``access_token_query``)."""
        return bool(self.settings["access_token_query"]) and self.api_keys_supported()

    def authenticate_key(self, token: str, peer: str) -> Principal:
        with self.lock:
            found = None
            for admin in self.admins.values():  # compare with every key: no early exit
                if admin.token and hmac.compare_digest(admin.token.encode(), token.encode()):
                    found = admin
            if found is None or found.user_type != "api" or not found.trusts(peer):
                raise FMGError(NO_PERMISSION)
            return Principal(found, found.number)

    def authenticate_session(self, sid, peer: str) -> Principal:
        """A live session, touched; a missing, expired or logged-out one is -11 like any other refusal."""
        with self.lock:
            self._expire_idle()
            session = self.sessions.get(sid) if isinstance(sid, str) else None
            admin = self.admins.get(session.admin) if session else None
            if session is None or admin is None or not admin.trusts(peer):
                raise FMGError(NO_PERMISSION)
            session.last_used = time.monotonic()
            return Principal(admin, session.number, session.sid)

    def login(self, user, passwd, peer: str | None) -> str:
        """``exec /sys/login/user``: -22 for a wrong name, password or source; -11 without API access."""
        with self.lock:
            admin = self.admins.get(user) if isinstance(user, str) else None
            password_ok = (admin is not None and admin.user_type == "local" and isinstance(passwd, str)
                           and admin.password is not None  # a local admin's is set (the schema)
                           and hmac.compare_digest(admin.password.encode(), passwd.encode()))
            if admin is None or not password_ok or (peer is not None and not admin.trusts(peer)):
                raise FMGError(LOGIN_FAILED)
            if admin.rpc_permit == "none":
                raise FMGError(NO_PERMISSION)
            session = Session(new_session_id(), next(self._numbers), admin.name, time.monotonic())
            self.sessions[session.sid] = session
            return session.sid

    def logout(self, principal: Principal) -> None:
        with self.lock:
            if principal.session is not None:
                self._end_session(principal.session)

    def _expire_idle(self) -> None:
        timeout, now = self.settings["idle_timeout_api"], time.monotonic()
        for sid in [s.sid for s in self.sessions.values() if now - s.last_used >= timeout]:
            self._end_session(sid)

    def _end_session(self, sid: str) -> None:
        """A session ends: its locks go, and with them the work it never committed."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        self.ended_sessions[session.admin] = sid
        for adom in self.adoms.values():
            if adom.lock is not None and adom.lock.owner == session.number:
                self._release(adom)

    def expire_sessions(self) -> None:
        """Every login session ends, as the idle timeout would end them."""
        with self.lock:
            for sid in list(self.sessions):
                self._end_session(sid)

    def open_session(self, user: str) -> str:
        """A session for ``user`` as if it had logged in (scenario operation ``login``)."""
        with self.lock:
            admin = self.admin(user)
            session = Session(new_session_id(), next(self._numbers), admin.name, time.monotonic())
            self.sessions[session.sid] = session
            return session.sid

    def live_session(self, user: str) -> str | None:
        with self.lock:
            self._expire_idle()
            mine = [s for s in self.sessions.values() if s.admin == user]
            return mine[-1].sid if mine else None

    # -- permissions ---------------------------------------------------------------------------
    def _require(self, principal: Principal, group: str, write: bool) -> None:
        """rpc-permit first, then the profile's group: both refusals are -11."""
        admin = principal.admin
        if admin.rpc_permit == "none" or (write and admin.rpc_permit != "read-write"):
            raise FMGError(NO_PERMISSION)
        level = self.profiles.get(admin.profile, {}).get(group, "none")
        if level == "none" or (write and level != "read-write"):
            raise FMGError(NO_PERMISSION)

    def require_api_access(self, principal: Principal) -> None:
        """Any call at all needs rpc-permit read or read-write."""
        if principal.admin.rpc_permit == "none":
            raise FMGError(NO_PERMISSION)

    def _adom(self, principal: Principal, name: str, missing: int = NOT_FOUND) -> Adom:
        """An ADOM the admin may use: -11 outside its ADOM list (existing or not), then ``missing``."""
        if not principal.admin.may_use(name):
            raise FMGError(NO_PERMISSION)
        adom = self.adoms.get(name)
        if adom is None:
            raise FMGError(missing)
        return adom

    # -- admin administration (scenario operations and /cli/global/system/admin/user) -----------
    def admin(self, name: str) -> Admin:
        try:
            return self.admins[name]
        except KeyError:
            raise FMGError(NOT_FOUND) from None

    def regenerate_key(self, name: str) -> str:
        """``execute api-user generate-key``: the old key fails with -11 from the next request."""
        with self.lock:
            admin = self.admin(name)
            if admin.user_type != "api":
                raise FMGError(INVALID_DATA, f"{name} is not an API user")
            self.retired_tokens[name] = admin.token
            admin.token = new_token()
            return admin.token

    def delete_admin(self, name: str) -> None:
        with self.lock:
            admin = self.admins.pop(name)
            self.deleted_admins[name] = admin
            if admin.token:
                self.retired_tokens[name] = admin.token
            for sid in [s.sid for s in self.sessions.values() if s.admin == name]:
                self._end_session(sid)

    def recreate_admin(self, name: str) -> None:
        """Bring back a deleted admin with its old settings (and a new key for an API user)."""
        with self.lock:
            admin = self.deleted_admins.pop(name)
            if admin.user_type == "api":
                admin.token = new_token()
            self.admins[name] = admin

    def set_rpc_permit(self, name: str, permit: str) -> None:
        with self.lock:
            self.admin(name).rpc_permit = permit

    def set_profile(self, name: str, profile: str) -> None:
        with self.lock:
            if profile not in self.profiles:
                raise FMGError(INVALID_DATA, f"no profile {profile}")
            self.admin(name).profile = profile

    def assign_adom(self, name: str, adom: str) -> None:
        with self.lock:
            admin = self.admin(name)
            if adom not in self.adoms:
                raise FMGError(NOT_FOUND, f"no ADOM {adom}")
            if not admin.may_use(adom):
                admin.adoms.append(adom)

    def set_trusthosts(self, name: str, trusthosts: list) -> None:
        with self.lock:
            admin = self.admin(name)
            admin.trusthost, admin.ip6_trusthost = place_trusthosts(trusthosts)

    def admin_user_rows(self, principal: Principal) -> list[dict]:
        with self.lock:
            self._require(principal, "system-setting", write=False)
            return [self._admin_row(a) for a in self.admins.values()]

    def admin_user_row(self, principal: Principal, name: str) -> dict:
        with self.lock:
            self._require(principal, "system-setting", write=False)
            return self._admin_row(self.admin(name))

    def update_admin_user(self, principal: Principal, name: str, data) -> str:
        """``set``/``update`` on ``/cli/global/system/admin/user/<name>``: only a Super_User-like profile may."""
        with self.lock:
            self._require(principal, "system-setting", write=True)
            admin = self.admin(name)
            if not isinstance(data, dict):
                raise FMGError(INVALID_DATA)
            changes = self._admin_changes(admin, data)
            for attr, value in changes.items():
                setattr(admin, attr, value)
            return admin.name

    def _admin_changes(self, admin: Admin, data: dict) -> dict:
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
    def _admin_row(admin: Admin) -> dict:
        row = {"userid": admin.name, "user_type": admin.user_type, "profileid": admin.profile,
               "rpc-permit": admin.rpc_permit, "adom": [{"adom-name": a} for a in admin.adoms]}
        for i, net in enumerate(admin.trusthost, 1):
            row[f"trusthost{i}"] = [str(net.network_address), str(net.netmask)]
        for i, net in enumerate(admin.ip6_trusthost, 1):
            row[f"ip6-trusthost{i}"] = str(net)
        return row

    # -- global settings -----------------------------------------------------------------------
    def global_settings(self, principal: Principal) -> dict:
        with self.lock:
            self.require_api_access(principal)
            return self.system_global()

    def update_global(self, principal: Principal, data) -> None:
        with self.lock:
            self._require(principal, "system-setting", write=True)
            if not isinstance(data, dict):
                raise FMGError(INVALID_DATA)
            mode = data.get("workspace-mode", self.settings["workspace_mode"])
            status = data.get("adom-status", "enable" if self.settings["adom_status"] else "disable")
            if mode not in ("disabled", "normal", "workflow") or status not in ("enable", "disable"):
                raise FMGError(INVALID_DATA)
            self.set_workspace_mode(mode)
            self.settings["adom_status"] = status == "enable"
            self.hostname = data.get("hostname", self.hostname)

    def set_workspace_mode(self, mode: str) -> None:
        with self.lock:
            self.settings["workspace_mode"] = mode
            if mode == "disabled":  # leaving workspace mode drops every lock, as the GUI warns
                for adom in self.adoms.values():
                    self._release(adom)

    # -- ADOMs and devices -----------------------------------------------------------------------
    def adom_rows(self, principal: Principal) -> list[dict]:
        with self.lock:
            self.require_api_access(principal)
            return [self._adom_row(a) for a in self.adoms.values() if principal.admin.may_use(a.name)]

    def adom_row(self, principal: Principal, name: str) -> dict:
        with self.lock:
            self.require_api_access(principal)
            return self._adom_row(self._adom(principal, name))

    def _adom_row(self, adom: Adom) -> dict:
        return {"name": adom.name, "oid": adom.oid, "desc": "", "flags": 0, "mode": "gms", "os_ver": adom.os_ver,
                "mr": adom.mr, "restricted_prds": "fos", "state": "enable", "uuid": adom.uuid,
                "workspace_mode": self.settings["workspace_mode"], "tab_status": "", "log_db_retention_hours": 1440}

    def device_rows(self, principal: Principal, adom: str | None = None) -> list[dict]:
        with self.lock:
            self._require(principal, "device-manager", write=False)
            if adom is not None:
                self._adom(principal, adom)
            return [d.row() for d in self.devices.values()
                    if principal.admin.may_use(d.adom) and adom in (None, d.adom)]

    def device_row(self, principal: Principal, name: str, adom: str | None = None) -> dict:
        for row in self.device_rows(principal, adom):
            if row["name"] == name:
                return row
        raise FMGError(NOT_FOUND)

    def set_device(self, name: str, conn_status: str | None = None, proxy_status: int | None = None) -> None:
        with self.lock:
            device = self.devices.get(name)
            if device is None:
                raise FMGError(NOT_FOUND, f"no managed device {name}")
            device.conn_status = conn_status or device.conn_status
            device.proxy_status = proxy_status or device.proxy_status

    def packages(self, principal: Principal, adom: str) -> list[dict]:
        with self.lock:
            self._require(principal, "policy-objects", write=False)
            found = self._adom(principal, adom, INVALID_URL)
            scope = [{"name": d.name, "vdom": d.vdoms[0]} for d in self.devices.values() if d.adom == adom]
            return [{"name": p, "type": "pkg", "oid": found.oid + 1 + i, "scope member": scope}
                    for i, p in enumerate(found.packages)]

    # -- objects -----------------------------------------------------------------------------------
    def objects(self, principal: Principal, adom: str, path: str) -> list[dict]:
        with self.lock:
            tables = self._readable(principal, adom)
            return [copy.deepcopy(row) for row in tables[path].values()]

    def object(self, principal: Principal, adom: str, path: str, name: str) -> dict:
        with self.lock:
            row = self._readable(principal, adom)[path].get(name)
            if row is None:
                raise FMGError(NOT_FOUND)
            return copy.deepcopy(row)

    def add_object(self, principal: Principal, adom: str, path: str, data) -> str:
        """``add``: -2 if the name exists."""
        with self.lock:
            tables = self._writable(principal, adom)
            row = self._build(path, data)
            if row["name"] in tables[path]:
                raise FMGError(ALREADY_EXISTS)
            self._check_members(tables, path, row)
            tables[path][row["name"]] = row
            return row["name"]

    def set_object(self, principal: Principal, adom: str, path: str, data, name: str | None = None) -> str:
        """``set``: add or overwrite (defaults plus ``data``); on an object URL a new ``name`` renames it."""
        with self.lock:
            tables = self._writable(principal, adom)
            if not isinstance(data, dict):
                raise FMGError(INVALID_DATA)
            target = name if name is not None else data.get("name")
            old = tables[path].get(target) if isinstance(target, str) else None
            row = self._build(path, {"name": target, **data}, oid=old["oid"] if old else None)
            if old is not None and "uuid" not in data:
                row["uuid"] = old["uuid"]
            return self._store(tables, path, target if old is not None else None, row)

    def update_object(self, principal: Principal, adom: str, path: str, data, name: str | None = None) -> str:
        """``update``: change the attributes given; -3 if the object does not exist."""
        with self.lock:
            tables = self._writable(principal, adom)
            if not isinstance(data, dict):
                raise FMGError(INVALID_DATA)
            name = name if name is not None else data.get("name")
            old = tables[path].get(name) if isinstance(name, str) else None
            if old is None:
                raise FMGError(NOT_FOUND)
            try:
                row = objects.merge(path, old, data)
            except ObjectDataError as exc:
                raise FMGError(INVALID_DATA) from exc
            return self._store(tables, path, name, row)

    def delete_object(self, principal: Principal, adom: str, path: str, name: str) -> None:
        with self.lock:
            tables = self._writable(principal, adom)
            if name not in tables[path]:
                raise FMGError(NOT_FOUND)
            if self._referenced(tables, path, name):
                raise FMGError(IN_USE)
            del tables[path][name]

    def clone_object(self, principal: Principal, adom: str, path: str, name: str, data) -> str:
        with self.lock:
            original = self.object(principal, adom, path, name)
            original.pop("uuid")
            return self.add_object(principal, adom, path, {**original, **(data if isinstance(data, dict) else {})})

    def change_members(self, principal: Principal, adom: str, name: str, how: str, data=None) -> None:
        """The ``.../addrgrp/<name>/member`` sub-URL: ``add`` / ``delete`` / ``set`` names, ``unset`` all."""
        with self.lock:
            tables = self._writable(principal, adom)
            group = tables[ADDRGRP].get(name)
            if group is None:
                raise FMGError(NOT_FOUND)
            try:
                names = objects.parse_members(data) if how != "unset" else []
            except ObjectDataError as exc:
                raise FMGError(INVALID_DATA) from exc
            current = group["member"]
            new = {"add": current + [n for n in names if n not in current],
                   "delete": [n for n in current if n not in names],
                   "set": names, "unset": []}[how]
            row = {**group, "member": new}
            self._check_members(tables, ADDRGRP, row)
            tables[ADDRGRP][name] = row

    def seed_object(self, adom: str, path: str, data: dict) -> None:
        """An object present before the scenario starts (``[device.objects]``), committed."""
        with self.lock:
            tables = self.adoms[adom].committed
            row = self._build(path, data)
            if row["name"] in tables[path]:
                raise FMGError(ALREADY_EXISTS, f"{path} {row['name']} is listed twice")
            self._check_members(tables, path, row)
            tables[path][row["name"]] = row

    def _readable(self, principal: Principal, adom: str) -> dict:
        self._require(principal, "policy-objects", write=False)
        return self._adom(principal, adom, INVALID_URL).tables_for(principal.owner)

    def _writable(self, principal: Principal, adom_name: str) -> dict:
        """In workspace mode only the lock holder writes (-10147 for everyone else), into its working copy."""
        self._require(principal, "policy-objects", write=True)
        adom = self._adom(principal, adom_name, INVALID_URL)
        if not self.workspace_enabled():
            return adom.committed
        if adom.lock is None or adom.lock.owner != principal.owner:
            raise FMGError(NO_WRITE_PERMISSION)
        assert adom.working is not None, "a locked ADOM has its working copy"
        adom.dirty = True
        return adom.working

    def _build(self, path: str, data, oid: int | None = None) -> dict:
        try:
            return objects.build(path, data, oid if oid is not None else next(self._oids))
        except ObjectDataError as exc:
            raise FMGError(INVALID_DATA) from exc

    def _store(self, tables: dict, path: str, old_name: str | None, row: dict) -> str:
        new_name = row["name"]
        if old_name is not None and new_name != old_name:
            if new_name in tables[path]:
                raise FMGError(ALREADY_EXISTS)
            self._rename_references(tables, path, old_name, new_name)
            del tables[path][old_name]
        self._check_members(tables, path, row)
        tables[path][new_name] = row
        return new_name

    @staticmethod
    def _check_members(tables: dict, path: str, row: dict) -> None:
        """A member must exist in the same view of the ADOM (-10 otherwise)."""
        for member in row.get("member", []) if path in MEMBER_TABLES else []:
            if not any(member in tables[t] for t in MEMBER_TABLES[path]):
                raise FMGError(INVALID_DATA)

    @staticmethod
    def _referenced(tables: dict, path: str, name: str) -> bool:
        return any(name in g["member"] for group_path, members in MEMBER_TABLES.items() if path in members
                   for g in tables[group_path].values())

    @staticmethod
    def _rename_references(tables: dict, path: str, old: str, new: str) -> None:
        for group_path, members in MEMBER_TABLES.items():
            if path in members:
                for group in tables[group_path].values():
                    group["member"] = [new if m == old else m for m in group["member"]]

    # -- workspace -----------------------------------------------------------------------------
    def _workspace_adom(self, principal: Principal, name: str, write: bool) -> Adom:
        self._require(principal, "policy-objects", write=write)
        adom = self._adom(principal, name, INVALID_URL)
        if not self.workspace_enabled():
            raise FMGError(NOT_IN_WORKSPACE_MODE)
        return adom

    def lock_adom(self, principal: Principal, name: str) -> None:
        """``exec .../workspace/lock``: refused while another session holds it; again by the holder is fine."""
        with self.lock:
            adom = self._workspace_adom(principal, name, write=True)
            if adom.lock is not None and adom.lock.owner != principal.owner:
                raise FMGError(WORKSPACE_LOCKED)
            if adom.lock is None:
                adom.lock = AdomLock(principal.owner, principal.name, int(time.time()))
                adom.working, adom.dirty = copy.deepcopy(adom.committed), False

    def unlock_adom(self, principal: Principal, name: str) -> None:
        """``exec .../workspace/unlock``: uncommitted changes are discarded."""
        with self.lock:
            adom = self._workspace_adom(principal, name, write=True)
            if adom.lock is not None and adom.lock.owner != principal.owner:
                raise FMGError(WORKSPACE_LOCKED)
            self._release(adom)

    def commit_adom(self, principal: Principal, name: str) -> None:
        with self.lock:
            adom = self._workspace_adom(principal, name, write=True)
            if adom.lock is None or adom.lock.owner != principal.owner:
                raise FMGError(NO_WRITE_PERMISSION)
            assert adom.working is not None, "a locked ADOM has its working copy"
            adom.committed, adom.dirty = copy.deepcopy(adom.working), False

    def lock_info(self, principal: Principal, name: str) -> list[dict] | None:
        """``get .../workspace/lockinfo``: the lock entries, or nothing at all while unlocked."""
        with self.lock:
            adom = self._workspace_adom(principal, name, write=False)
            if adom.lock is None:
                return None
            return [{"adom_dirty": int(adom.dirty), "db_mode": 0, "dev_oid": 0, "dirty": int(adom.dirty),
                     "flags": 0, "lock_sid": adom.lock.owner, "lock_time": adom.lock.since,
                     "lock_user": adom.lock.user, "obj_cat": 0, "obj_oid": adom.oid,
                     "obj_url": f"/dvmdb/adom/{adom.name}", "type": "adom", "wfsid": 0}]

    def dirty(self, principal: Principal, name: str) -> dict:
        """``get .../workspace/dirty``: only the caller's own uncommitted work counts."""
        with self.lock:
            adom = self._workspace_adom(principal, name, write=False)
            mine = adom.lock is not None and adom.lock.owner == principal.owner
            return {"dirty": int(mine and adom.dirty)}

    def lock_as(self, user: str, adom: str) -> None:
        """Another admin's session locks the ADOM (scenario operation ``lock-adom``)."""
        with self.lock:
            sid = self.open_session(user)
            session = self.sessions[sid]
            self.lock_adom(Principal(self.admin(user), session.number, sid), adom)

    def release_adom(self, name: str) -> None:
        """An administrator force-unlocks the ADOM (scenario operation ``unlock-adom``)."""
        with self.lock:
            if name not in self.adoms:
                raise FMGError(NOT_FOUND, f"no ADOM {name}")
            self._release(self.adoms[name])

    @staticmethod
    def _release(adom: Adom) -> None:
        adom.lock, adom.working, adom.dirty = None, None, False

    # -- installs and tasks ------------------------------------------------------------------------
    def install(self, principal: Principal, what: str, data) -> int:
        """``exec /securityconsole/install/package|device``: a task that completes after a few polls."""
        with self.lock:
            self._require(principal, "deploy-management", write=True)
            if not isinstance(data, dict) or not isinstance(data.get("adom"), str):
                raise FMGError(INVALID_DATA)
            adom = self._adom(principal, data["adom"])
            if what == "package" and data.get("pkg") not in adom.packages:
                raise FMGError(NOT_FOUND)
            if adom.lock is not None and adom.lock.owner != principal.owner:
                raise FMGError(WORKSPACE_LOCKED)
            lines = [self._install_line(adom, entry) for entry in self._scope(adom, data.get("scope"))]
            task = Task(next(self._task_ids), f"Install {what.capitalize()}", f"install {what}", principal.name,
                        adom, lines, self.settings["task_polls"], int(time.time()), secrets.randbelow(30000) + 1000)
            self.tasks[task.id] = task
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

    def _install_line(self, adom: Adom, entry: dict) -> dict:
        device = self.devices[entry["name"]]
        ok = device.reachable()
        return {"name": device.name, "vdom": entry.get("vdom", device.vdoms[0]), "oid": device.oid, "ip": device.ip,
                "err": 0 if ok else 1, "final_state": "done" if ok else "error",
                "detail": "install and save finished status=OK" if ok else "Device is unreachable"}

    def task(self, principal: Principal, task_id: int) -> dict:
        """Each poll of an unfinished task moves it on; ``task_polls`` polls see it running."""
        with self.lock:
            self.require_api_access(principal)
            task = self.tasks.get(task_id)
            if task is None:
                raise FMGError(NOT_FOUND)
            if task.polls_left == 0 and not task.end_tm:
                task.end_tm = int(time.time())
            view = self._task_view(task)
            if task.polls_left > 0:
                task.polls_left -= 1
            return view

    def task_rows(self, principal: Principal) -> list[dict]:
        with self.lock:
            self.require_api_access(principal)
            return [self._task_view(t) for t in self.tasks.values()]

    def delete_task(self, principal: Principal, task_id: int) -> None:
        with self.lock:
            self.require_api_access(principal)
            if self.tasks.pop(task_id, None) is None:
                raise FMGError(NOT_FOUND)

    def _task_view(self, task: Task) -> dict:
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

    # -- /sys/proxy/json ---------------------------------------------------------------------------
    def proxy(self, principal: Principal, data) -> list[dict]:
        """Fan a FortiOS REST call out: one entry per device, each with its own status and response."""
        with self.lock:
            if not isinstance(data, dict) or data.get("action") not in ("get", "post", "put", "delete"):
                raise FMGError(INVALID_DATA)
            resource, targets = data.get("resource"), data.get("target")
            if not isinstance(resource, str) or not resource.startswith("/api/v2/") or not isinstance(targets, list):
                raise FMGError(INVALID_DATA)
            self._require(principal, "device-manager", write=data["action"] != "get")
            devices: list[ManagedDevice] = []
            for target in targets:
                for device in self._targets(principal, target):
                    if device not in devices:
                        devices.append(device)
            return [self._proxied(d, data["action"], resource, data.get("payload")) for d in devices]

    def _targets(self, principal: Principal, target) -> list[ManagedDevice]:
        """``adom/<a>/device/<d>``, ``adom/<a>/group/All_FortiGate``, ``device/<d>``, ``group/All_FortiGate``."""
        parts = [p for p in target.split("/") if p] if isinstance(target, str) else []
        adom = None
        if parts[:1] == ["adom"] and len(parts) == 4:
            adom = self._adom(principal, parts[1]).name
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

    @staticmethod
    def _proxied(device: ManagedDevice, action: str, resource: str, payload) -> dict:
        if not device.reachable():
            return {"status": {"code": UNREACHABLE[0], "message": UNREACHABLE[1]}, "target": device.name}
        return {"response": device.rest_answer(action, resource, payload), "status": {"code": OK, "message": "OK"},
                "target": device.name}
