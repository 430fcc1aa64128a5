"""The FortiManager device kind (:data:`KIND`): its scenario ``[device]`` section, its state builder and
its operations.

The generic scenario engine (:mod:`mockfgt.scenario`) and :class:`mockfgt.Device` know nothing about
FortiManager; they ask this kind object (see :mod:`mockfgt.kinds`). A scenario's ``[device]`` for this kind looks like::

    [device]
    kind = "fortimanager"
    version = "7.4.5"
    adoms = ["root", "customer"]
    settings = { workspace_mode = "normal", idle_timeout_api = 900 }

    [[device.admins]]            # an API user: Authorization: Bearer <key>
    name = "agent"
    profile = "Super_User"
    rpc_permit = "read-write"
    adoms = ["root"]

    [[device.admins]]            # a login: exec /sys/login/user
    name = "admin"
    user_type = "local"
    password = "s3cret"

    [[device.devices]]           # managed FortiGates
    name = "fgt-branch-01"
    adom = "root"
"""

from __future__ import annotations

from .. import schema as s
from ..kernel import parse_version
from ..kinds import DeviceKind, Operation, PasswordLogins
from .admins import (
    ACCESS_LEVELS,
    ALL_ADOMS,
    BUILTIN_PROFILES,
    PERMISSION_GROUPS,
    RPC_PERMITS,
    USER_TYPES,
    Admin,
    new_password,
    new_session_id,
    new_token,
    place_trusthosts,
)
from .client import FortiManagerClient
from .devices import ManagedDevice
from .models import FMGError, FortiManagerState
from .objects import OBJECT_TABLES
from .workspace import GLOBAL

NAME = "fortimanager"

# (build, release date) seen in captures (reference B.4); other versions get plausible numbers.
KNOWN_BUILDS = {"7.2.2": (1317, "230107"), "7.4.3": (2487, "240124")}
#: The highest ``login_max`` a scenario may give (the device's own range is unconfirmed).
LOGIN_MAX = 1024
#: What a login beyond ``login_max`` answers: -22 "Login fail" (the choice) or -11 (docs/fortimanager.md).
LOGIN_MAX_CODES = (-22, -11)
SESSION_VIA = ("jsonrpc", "gui")
FORTIGATE_BUILDS = {"7.0.2": 234, "7.2.2": 1255, "7.2.4": 1396, "7.4.5": 2702, "7.6.3": 3510}


def _version(default="7.4.5", doc=""):
    return s.Parsed(default, doc=doc, parse=parse_version, what="a version like 7.4.5")


def _trusthost():
    return s.Parsed(parse=lambda value: place_trusthosts([value]),
                    what="a trusted host like 10.0.0.0/8 or 2001:db8::/32")


_ADMIN = s.Table(
    fields={
        "name": s.Str(),
        "user_type": s.Str("api", choices=USER_TYPES, doc="api: key in Authorization: Bearer; local: password login"),
        "profile": s.Str("Super_User", doc="Super_User, Standard_User, Restricted_User, Package_User, "
                                           "No_Permission_User or one of device.profiles"),
        "rpc_permit": s.Str("read-write", choices=RPC_PERMITS, doc="JSON-RPC access: none, read or read-write"),
        "adoms": s.List(lambda: [ALL_ADOMS], item=s.Str(), nonempty=True,
                        doc="ADOMs the admin may use, or all_adoms"),
        "trusthosts": s.List(list, item=_trusthost(), doc="up to 10 IPv4 and 10 IPv6 networks; none = anywhere"),
        "password": s.Str(None, doc="a local admin's password (default: a random one at every start)"),
        "token": s.Str(None, doc="an API user's fixed key (default: a fresh key of 32 [a-z0-9] at every start)"),
        "login_max": s.Int(32, min=1, max=LOGIN_MAX, doc="sessions the admin may hold at once (set login-max)"),
    },
    required=("name",),
)

_MANAGED = s.Table(
    fields={
        "name": s.Str(),
        "serial": s.Str(None),
        "ip": s.Str("192.0.2.1"),
        "adom": s.Str("root"),
        "platform": s.Str("FortiGate-VM64"),
        "version": _version("7.4.5"),
        "build": s.Int(None, min=1),
        "vdoms": s.List(lambda: ["root"], item=s.Str(), nonempty=True, unique=True),
        "conn_status": s.Str("up", choices=("up", "down"), doc="down: proxied calls report the device unreachable"),
        "proxy_status": s.Int(200, min=200, max=599, doc="HTTP status the FortiGate answers proxied calls with"),
    },
    required=("name",),
)


def _check_device(device: dict, key: str) -> None:
    code = device["settings"]["login_max_code"]
    if code not in LOGIN_MAX_CODES:
        raise s.SchemaError(f"{key}.settings.login_max_code" if key else "settings.login_max_code",
                            f"{code} is not allowed; allowed: {', '.join(map(str, LOGIN_MAX_CODES))}")
    _check_profiles(device, key)
    _check_admins(device, key)
    adoms = device["adoms"]
    objects_in = [*adoms, GLOBAL] if device["settings"]["global_adom"] else adoms
    names = [d["name"] for d in device["devices"]]
    if len(set(names)) != len(names):
        raise s.SchemaError(f"{key}.devices", "two managed devices share a name")
    for i, managed in enumerate(device["devices"]):
        if managed["adom"] not in adoms:
            raise s.SchemaError(f"{key}.devices[{i}].adom",
                                f"'{managed['adom']}' is not in device.adoms ({', '.join(adoms)})")
    for path, rows in device["objects"].items():
        if path not in OBJECT_TABLES:
            raise s.SchemaError(f"{key}.objects.{path}", f"unknown table; emulated: {', '.join(OBJECT_TABLES)}"
                                                         f"{s.suggest(path, OBJECT_TABLES)}")
        for i, row in enumerate(rows):
            if row.get("adom", adoms[0]) not in objects_in:
                raise s.SchemaError(f"{key}.objects.{path}[{i}].adom", f"'{row['adom']}' is not in device.adoms"
                                    f"{'' if objects_in is adoms else f' nor {GLOBAL}'}")


def _check_profiles(device: dict, key: str) -> None:
    for name, groups in device["profiles"].items():
        for group in groups:
            if group not in PERMISSION_GROUPS:
                raise s.SchemaError(f"{key}.profiles.{name}.{group}", f"unknown permission group; known: "
                                    f"{', '.join(PERMISSION_GROUPS)}{s.suggest(group, PERMISSION_GROUPS)}")


def _check_admins(device: dict, key: str) -> None:
    profiles = {**BUILTIN_PROFILES, **device["profiles"]}
    names = [a["name"] for a in device["admins"]]
    if len(set(names)) != len(names):
        raise s.SchemaError(f"{key}.admins", "two admins share a name")
    for i, admin in enumerate(device["admins"]):
        where = f"{key}.admins[{i}]"
        if admin["profile"] not in profiles:
            raise s.SchemaError(f"{where}.profile", f"'{admin['profile']}' is not a profile; known: "
                                f"{', '.join(profiles)}{s.suggest(admin['profile'], profiles)}")
        for adom in admin["adoms"]:
            if adom != ALL_ADOMS and adom not in device["adoms"]:
                raise s.SchemaError(f"{where}.adoms",
                                    f"'{adom}' is not in device.adoms ({', '.join(device['adoms'])}) nor {ALL_ADOMS}")
        if admin["user_type"] == "api" and admin["password"] is not None:
            raise s.SchemaError(f"{where}.password", "an API user has a key, not a password (user_type = \"local\")")
        if admin["user_type"] == "local" and admin["token"] is not None:
            raise s.SchemaError(f"{where}.token",
                                "a local admin logs in with a password, not a key (user_type = \"api\")")
        try:
            place_trusthosts(admin["trusthosts"])
        except ValueError as exc:
            raise s.SchemaError(f"{where}.trusthosts", str(exc)) from None


_ACCESS = s.MapOf(value=s.Str(choices=ACCESS_LEVELS))

DEVICE = s.Table(
    fields={
        "kind": s.Str(NAME),
        "version": _version("7.4.5", doc="emulated FortiManager version, e.g. 7.4.5"),
        "build": s.Int(None, min=1),
        "hostname": s.HostName("fmg-mock"),
        "serial": s.Str("FMVMELTM24000001"),
        "adoms": s.List(lambda: ["root"], item=s.Str(), unique=True, nonempty=True),
        "settings": s.Table(fields={
            "workspace_mode": s.Str("disabled", choices=("disabled", "normal", "workflow"),
                                    doc="normal: writes need the ADOM lock (exec .../workspace/lock)"),
            "adom_status": s.Bool(True, doc="ADOMs enabled (adom-status in /cli/global/system/global)"),
            "idle_timeout_api": s.Float(900.0, doc="seconds a login session may stay unused before it expires"),
            "idle_timeout_gui": s.Float(900.0, doc="seconds a GUI session (lock-adom via gui) may stay unused"),
            "login_max_code": s.Int(-22, min=-1000000, max=0,
                                    doc="status of a login beyond the admin's login_max: -22 or -11"),
            "parallel_key_conflict": s.Bool(False, doc="-11 for a key request while another with the same key "
                                                       "is in flight (FortiManager 7.4.x before 7.4.8)"),
            "keyed_call_hold_ms": s.Int(0, min=0, max=60000, doc="milliseconds the device holds each key request"),
            "access_token_query": s.Bool(None, doc="accept ?access_token= (default: before 7.4.7 / 7.6.2 only)"),
            "task_polls": s.Int(1, min=0, max=100, doc="polls of /task/task/<id> that see an install still running"),
            "global_adom": s.Bool(True, doc="the global ADOM exists next to device.adoms (/dvmdb/global, "
                                            "/pm/config/global/obj/...)"),
        }),
        "profiles": s.MapOf(value=_ACCESS, doc="custom admin profiles: permission group -> none/read/read-write"),
        "admins": s.List(lambda: [_ADMIN.check({"name": "agent", "adoms": ["root"]}, "")], item=_ADMIN),
        "devices": s.List(lambda: [_MANAGED.check({"name": "fgt-branch-01"}, "")], item=_MANAGED),
        "objects": s.MapOf(value=s.List(item=s.MapOf(value=s.Any_())),
                           doc="seed objects per table (firewall/address, firewall/addrgrp); 'adom' picks the ADOM"),
    },
    validate=_check_device,
)

_USER = s.Str(doc="admin name")


def _set_setting(key: str, field: str):
    def run(state: FortiManagerState, op: dict) -> None:
        state.settings[key] = op[field]
    return run


OPERATIONS: dict[str, Operation] = {
    "regenerate-key": (s.Table(fields={"user": _USER}, required=("user",)),
                       lambda state, op: state.regenerate_key(op["user"])),
    "delete-admin": (s.Table(fields={"user": _USER}, required=("user",)),
                     lambda state, op: state.delete_admin(op["user"])),
    "recreate-admin": (s.Table(fields={"user": _USER}, required=("user",)),
                       lambda state, op: state.recreate_admin(op["user"])),
    "set-rpc-permit": (s.Table(fields={"user": _USER, "rpc_permit": s.Str(choices=RPC_PERMITS)},
                               required=("user", "rpc_permit")),
                       lambda state, op: state.set_rpc_permit(op["user"], op["rpc_permit"])),
    "set-profile": (s.Table(fields={"user": _USER, "profile": s.Str()}, required=("user", "profile")),
                    lambda state, op: state.set_profile(op["user"], op["profile"])),
    "set-permission": (s.Table(fields={"profile": s.Str(doc="a built-in or device.profiles profile"),
                                       "group": s.Str(choices=tuple(PERMISSION_GROUPS)),
                                       "level": s.Str(choices=ACCESS_LEVELS)}, required=("profile", "group", "level")),
                       lambda state, op: state.set_permission(op["profile"], op["group"], op["level"])),
    "assign-adom": (s.Table(fields={"user": _USER, "adom": s.Str()}, required=("user", "adom")),
                    lambda state, op: state.assign_adom(op["user"], op["adom"])),
    "set-trusthosts": (s.Table(fields={"user": _USER, "trusthosts": s.List(item=_trusthost())},
                               required=("user", "trusthosts")),
                       lambda state, op: state.set_trusthosts(op["user"], op["trusthosts"])),
    "set-workspace-mode": (s.Table(fields={"mode": s.Str(choices=("disabled", "normal", "workflow"))},
                                   required=("mode",)),
                           lambda state, op: state.set_workspace_mode(op["mode"])),
    "set-idle-timeout": (s.Table(fields={"seconds": s.Float()}, required=("seconds",)),
                         _set_setting("idle_timeout_api", "seconds")),
    "set-query-token": (s.Table(fields={"enabled": s.Bool()}, required=("enabled",)),
                        _set_setting("access_token_query", "enabled")),
    "login": (s.Table(fields={"user": _USER, "count": s.Int(1, min=1, max=LOGIN_MAX)}, required=("user",)),
              lambda state, op: state.open_session(op["user"], op["count"])),
    "set-login-max": (s.Table(fields={"user": _USER, "count": s.Int(min=1, max=LOGIN_MAX)},
                              required=("user", "count")),
                      lambda state, op: state.set_login_max(op["user"], op["count"])),
    "set-parallel-key-conflict": (s.Table(fields={"enabled": s.Bool()}, required=("enabled",)),
                                  _set_setting("parallel_key_conflict", "enabled")),
    "expire-sessions": (s.Table(fields={"user": s.Str(None, doc="only this admin's sessions (default: everyone's)")}),
                        lambda state, op: state.expire_sessions(op["user"])),
    "lock-adom": (s.Table(fields={"user": _USER, "adom": s.Str("root"),
                                  "via": s.Str("jsonrpc", choices=SESSION_VIA,
                                               doc="gui: the lock holder's session idles out after idle_timeout_gui")},
                          required=("user",)),
                  lambda state, op: state.lock_as(op["user"], op["adom"], op["via"])),
    "unlock-adom": (s.Table(fields={"adom": s.Str("root")}), lambda state, op: state.release_adom(op["adom"])),
    "set-device": (s.Table(fields={"device": s.Str(), "conn_status": s.Str(None, choices=("up", "down")),
                                   "proxy_status": s.Int(None, min=200, max=599)}, required=("device",)),
                   lambda state, op: state.set_device(op["device"], op["conn_status"], op["proxy_status"])),
}


def _query_token_default(version: tuple[int, int, int]) -> bool:
    """``?access_token=`` was removed in 7.4.7 and in 7.6.2."""
    return version < (7, 4, 7) or (7, 6, 0) <= version < (7, 6, 2)


def _build_and_date(version: str) -> tuple[int, str]:
    if version in KNOWN_BUILDS:
        return KNOWN_BUILDS[version]
    major, minor, patch = parse_version(version)
    return 1000 + 300 * minor + 50 * patch, f"{20 + minor:02d}{patch % 12 + 1:02d}15"


def _admin(spec: dict) -> Admin:
    v4, v6 = place_trusthosts(spec["trusthosts"])
    api = spec["user_type"] == "api"
    return Admin(
        name=spec["name"], user_type=spec["user_type"], profile=spec["profile"], rpc_permit=spec["rpc_permit"],
        adoms=list(spec["adoms"]), trusthost=v4, ip6_trusthost=v6,
        password=None if api else (spec["password"] or new_password()),
        token=(spec["token"] or new_token()) if api else None, login_max=spec["login_max"],
    )


def _managed(spec: dict, index: int) -> ManagedDevice:
    version = parse_version(spec["version"])
    return ManagedDevice(
        name=spec["name"], serial=spec["serial"] or f"FGVM02TM2400{index + 1:04d}", ip=spec["ip"], adom=spec["adom"],
        platform=spec["platform"], version=version,
        build=spec["build"] or FORTIGATE_BUILDS.get(spec["version"], 1000 + 100 * version[1] + version[2]),
        vdoms=list(spec["vdoms"]), conn_status=spec["conn_status"], proxy_status=spec["proxy_status"],
    )


def build_state(device: dict) -> FortiManagerState:
    version = parse_version(device["version"])
    settings = dict(device["settings"])
    if settings["access_token_query"] is None:
        settings["access_token_query"] = _query_token_default(version)
    build, date = _build_and_date(device["version"])
    state = FortiManagerState(
        hostname=device["hostname"], serial=device["serial"], version=device["version"],
        build=device["build"] or build, release_date=date, settings=settings, profiles=device["profiles"],
        admins=[_admin(a) for a in device["admins"]], adoms=device["adoms"],
        devices=[_managed(d, i) for i, d in enumerate(device["devices"])],
    )
    for path, rows in device["objects"].items():
        for row in rows:
            row = dict(row)
            state.seed_object(row.pop("adom", device["adoms"][0]), path, row)
    return state


def _reason(exc: Exception) -> str:
    if isinstance(exc, FMGError):
        return exc.message if exc.code != -3 else "no such admin, ADOM or device"
    return f"no such admin ({exc})"


class FortiManagerKind(FortiManagerClient, DeviceKind, PasswordLogins):
    """A FortiManager: JSON-RPC on /jsonrpc, API users with keys, local admins with sessions."""

    name = NAME

    @property
    def DEVICE(self) -> s.Table:
        return DEVICE

    @property
    def OPERATIONS(self) -> dict[str, Operation]:
        return OPERATIONS

    def build_state(self, device: dict) -> FortiManagerState:
        return build_state(device)

    def apply(self, state: FortiManagerState, op: dict) -> None:
        """Run one device operation from a scenario's setup or remedy (or the control API)."""
        try:
            with state.lock:
                super().apply(state, op)
        except (KeyError, FMGError) as exc:
            raise ValueError(f"operation {op['op']}: {_reason(exc)}") from None

    def create_app(self, get_state):
        from .wire import create_app  # Flask loads only when a device serves

        return create_app(get_state)

    def users(self, state: FortiManagerState) -> list[str]:
        return list(state.admins) + list(state.deleted_admins)

    def live_tokens(self, state: FortiManagerState) -> dict[str, str]:
        """The API users that exist now and their keys."""
        with state.lock:
            return {name: a.token for name, a in state.admins.items() if a.user_type == "api" and a.token}

    def token_for(self, state: FortiManagerState, user: str, which: str) -> str | None:
        """The credential an agent holds: an API user's key, or a local admin's session id.

        ``current``: the live key (or the newest live session); ``stale``: the key before the last
        regeneration or deletion (or the last session that ended); ``unknown``: a stranger's; ``none``.
        """
        admin = state.admins.get(user) or state.deleted_admins.get(user)
        local = admin is not None and admin.user_type == "local"
        if which == "none":
            return None
        if which == "unknown":
            return new_session_id() if local else new_token()
        if local:
            return state.live_session(user) if which == "current" else state.ended_sessions.get(user)
        if which == "stale" or user not in state.admins:
            return state.retired_tokens.get(user)
        assert admin is not None, "user is in state.admins"
        return admin.token

    # -- password logins ---------------------------------------------------------------------------
    def admins(self, state: FortiManagerState) -> list[str]:
        """Admins who log in with a password (local users), in scenario order."""
        return [name for name, admin in state.admins.items() if admin.password is not None]

    def password_for(self, state: FortiManagerState, admin: str) -> str | None:
        """A local admin's current password; None for API users."""
        found = state.admins.get(admin) or state.deleted_admins.get(admin)
        return None if found is None else found.password

    def expired_session_for(self, state: FortiManagerState, admin: str) -> None:
        """A FortiManager agent keeps a session id through ``auth = "session"`` instead (see token_for)."""
        return None


KIND = FortiManagerKind()
