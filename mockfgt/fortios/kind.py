"""The FortiGate device kind (:data:`KIND`): its scenario ``[device]`` section, its state builder and
its operations.

The generic scenario engine (:mod:`mockfgt.scenario`) and :class:`mockfgt.Device` know nothing about
FortiOS; they ask this kind object (see :mod:`mockfgt.kinds`).
"""

from __future__ import annotations

from .. import schema as s
from ..kernel import parse_version
from ..kinds import DeviceKind, Operation, PasswordLogins
from .client import FortiGateClient
from .models import (
    ACCESS_GROUPS,
    ACCESS_LEVELS,
    TABLE_MAX_ENTRIES,
    AccProfile,
    ApiUser,
    FortiOSError,
    FortiOSState,
    new_token,
    parse_trusthost,
)
from .schedules import DAYS, Schedule, parse_time_of_day, parse_wall_time
from .sessions import ADMIN_LOGIN_MAX, DEFAULT_ADMIN_TIMEOUT, Admin, parse_admin_trusthost
from .tables import TABLES, factory_rows

NAME = "fortigate"

# Builds seen in captures (reference A.2); other versions get a plausible number.
KNOWN_BUILDS = {"6.0.4": 231, "6.2.3": 1066, "6.2.4": 1112, "7.2.4": 1396, "7.2.6": 1575, "7.4.5": 2702}

BUILTIN_PROFILES = {
    "super_admin": {g: "read-write" for g in ACCESS_GROUPS},
    "prof_admin": {g: "read-write" for g in ACCESS_GROUPS},
    "super_admin_readonly": {g: "read" for g in ACCESS_GROUPS},
    "admin_no_access": {},
}


def _version(default=None, doc=""):
    return s.Parsed(default, doc=doc, parse=parse_version, what="a FortiOS version like 7.4.5")


def _trusthost():
    return s.Parsed(parse=parse_trusthost, what="a usable trusted host")


def _admin_trusthost():
    return s.Parsed(parse=parse_admin_trusthost, what="a usable trusted host")


def _check_device(device: dict, key: str) -> None:
    profiles = {**BUILTIN_PROFILES, **DEFAULT_PROFILES, **device["accprofiles"]}
    _check_accounts(device, f"{key}.api_users", device["api_users"], profiles, "API users")
    _check_accounts(device, f"{key}.admins", device["admins"], profiles, "admins")
    api_names = {u["name"] for u in device["api_users"]}
    for i, admin in enumerate(device["admins"]):
        if admin["name"] in api_names:
            raise s.SchemaError(f"{key}.admins[{i}].name",
                                f"'{admin['name']}' is already an API user; admins and API users need distinct names")
    for i, user in enumerate(device["api_users"]):
        if user["schedule"] and user["schedule"] not in device["schedules"]:
            raise s.SchemaError(f"{key}.api_users[{i}].schedule", f"'{user['schedule']}' is not in device.schedules "
                                f"({', '.join(device['schedules']) or 'none'})")
    for path in device["cmdb"]:
        if path not in TABLES:
            raise s.SchemaError(f"{key}.cmdb.{path}", f"unknown table; emulated: {', '.join(TABLES)}{s.suggest(path, TABLES)}")


def _check_accounts(device: dict, key: str, accounts: list[dict], profiles: dict, what: str) -> None:
    """API users and admins alike: unique names, a known profile, VDOMs the device has."""
    names = [a["name"] for a in accounts]
    if len(set(names)) != len(names):
        raise s.SchemaError(key, f"two {what} share a name")
    for i, account in enumerate(accounts):
        if account["accprofile"] not in profiles:
            raise s.SchemaError(f"{key}[{i}].accprofile",
                                f"'{account['accprofile']}' is not a profile; known: {', '.join(profiles)}"
                                f"{s.suggest(account['accprofile'], profiles)}")
        for vdom in account["vdoms"]:
            if vdom not in device["vdoms"]:
                raise s.SchemaError(f"{key}[{i}].vdoms", f"'{vdom}' is not in device.vdoms ({', '.join(device['vdoms'])})")


_ACCESS = s.MapOf(value=s.Str(choices=ACCESS_LEVELS))

DEVICE = s.Table(
    fields={
        "kind": s.Str(NAME),
        "version": _version("7.4.5", doc="emulated FortiOS version, e.g. 7.4.5"),
        "build": s.Int(None, min=1),
        "hostname": s.HostName("fgt-mock"),
        "serial": s.Str("FGVM02TM24000001"),
        "vdoms": s.List(lambda: ["root"], item=s.Str(), unique=True, nonempty=True),
        "settings": s.Table(fields={
            "rest_api_key_url_query": s.Bool(None, doc="accept ?access_token= (default: on before 7.4.5, off from 7.4.5)"),
            "admin_lockout_threshold": s.Int(3, min=0, max=10, doc="failed logins before a source is locked out; 0 = never"),
            "admin_lockout_duration": s.Int(60, min=1),
            "lockout_counts_no_credential": s.Bool(False, doc="a request with no credential at all counts as a "
                                                    "failure toward lockout (the reference's guess is no)"),
            "admin_timeout": s.Int(DEFAULT_ADMIN_TIMEOUT, min=1, max=480 * 60,
                                   doc="seconds of idleness before an admin session ends (FortiOS admintimeout, 5 min)"),
            "post_login_banner": s.Bool(False, doc="admins must accept the post-login disclaimer before any API call"),
            "admin_login_max": s.Int(ADMIN_LOGIN_MAX, min=1, max=ADMIN_LOGIN_MAX,
                                     doc="config system global admin-login-max: admin sessions open at once; a "
                                         "login past it is refused as a failed login is, without counting toward "
                                         "a lockout"),
            "table_max_entries": s.Int(TABLE_MAX_ENTRIES, min=1, max=TABLE_MAX_ENTRIES * 10,
                                       doc="entries a CMDB table holds; a POST past it answers error -4, "
                                           "'Maximum number of entries has been reached'"),
            "password_expire_days": s.Int(None, min=1, max=999, doc="config system password-policy expire-day: an "
                                          "admin password this old (device clock) must be changed at login"),
            "system_time": s.Parsed(None, parse=parse_wall_time, what="an ISO date and time like 2026-01-05T09:00:00",
                                    doc="the device's wall time at start (execute date/time), read by schedules; "
                                        "it then runs with the device clock (default: the real time)"),
            "slow_paths": s.MapOf(value=s.Float(min=0, max=3600), doc="URL path prefix -> seconds its authenticated "
                                  "answers take (a slow endpoint; the answer is dropped if the client leaves first)"),
        }),
        "accprofiles": s.MapOf(value=_ACCESS),
        # config firewall schedule recurring: name -> weekdays, start and end time of day.
        "schedules": s.MapOf(value=s.Table(
            fields={"days": s.List(item=s.Str(choices=DAYS), unique=True, nonempty=True),
                    "start": s.Parsed(parse=parse_time_of_day, what="a time of day like 08:00"),
                    "end": s.Parsed(parse=parse_time_of_day, what="a time of day like 18:00")},
            required=("days", "start", "end"))),
        "api_users": s.List(
            lambda: [{"name": "agent", "accprofile": "agent_rw", "vdoms": ["root"], "trusthosts": [],
                      "enabled": True, "token": None, "comments": "", "scope": "global",
                      "schedule": ""}],
            item=s.Table(
                fields={
                    "name": s.Str(),
                    "accprofile": s.Str("agent_rw"),
                    "vdoms": s.List(lambda: ["root"], item=s.Str(), nonempty=True),
                    "trusthosts": s.List(list, item=_trusthost()),
                    "enabled": s.Bool(True),
                    "token": s.Str(None, doc="fixed API key; by default a fresh 30-character key at every start"),
                    "comments": s.Str(""),
                    "schedule": s.Str("", max_length=35, doc="a recurring schedule of device.schedules: "
                                                              "outside it the key is refused (401)"),
                    "scope": s.Str("global", choices=("global", "vdom"),
                                   doc="the scope of its admin profile: 'vdom' refuses global-scope calls "
                                       "(?scope=global) with 403"),
                },
                required=("name",),
            ),
        ),
        "admins": s.List(
            list,
            item=s.Table(
                fields={
                    "name": s.Str(doc="administrator name (logs in with a password)"),
                    "password": s.Str(doc="the admin's password"),
                    "accprofile": s.Str("agent_rw"),
                    "vdoms": s.List(lambda: ["root"], item=s.Str(), nonempty=True),
                    "trusthosts": s.List(list, item=_admin_trusthost()),
                },
                required=("name", "password"),
            ),
        ),
        "factory_defaults": s.Bool(True, doc="start with the factory objects (addresses all, none, ...); "
                                   "false: empty tables, only device.cmdb"),
        "cmdb": s.MapOf(value=s.List(item=s.MapOf(value=s.Any_()))),
        "external_resources": s.List(list, item=s.Str(), unique=True),
    },
    validate=_check_device,
)

# The profile the default API user has: what an address-managing agent needs.
DEFAULT_PROFILES = {"agent_rw": {"fwgrp": "read-write", "sysgrp": "read"}}

_USER = s.Str(doc="API user name")


def _set_setting(key: str, field: str):
    def run(state: FortiOSState, op: dict) -> None:
        with state.lock:
            state.settings[key] = op[field]
    return run


def build_number(version: str, build: int | None = None) -> int:
    """The build a version reports: the scenario's, the one seen in captures, else a plausible number."""
    parsed = parse_version(version)
    return build or KNOWN_BUILDS.get(version, 1000 + 100 * parsed[1] + parsed[2])


def _set_version(state: FortiOSState, op: dict) -> None:
    state.upgrade(op["version"], build_number(op["version"], op.get("build")))


OPERATIONS: dict[str, Operation] = {
    "regenerate-key": (s.Table(fields={"user": _USER}, required=("user",)),
                       lambda state, op: state.regenerate_key(op["user"])),
    "delete-api-user": (s.Table(fields={"user": _USER}, required=("user",)),
                        lambda state, op: state.delete_api_user(op["user"])),
    "recreate-api-user": (s.Table(fields={"user": _USER}, required=("user",)),
                          lambda state, op: state.recreate_api_user(op["user"])),
    "set-trusthosts": (s.Table(fields={"user": _USER, "trusthosts": s.List(item=_trusthost())},
                               required=("user", "trusthosts")),
                       lambda state, op: state.set_trusthosts(op["user"], op["trusthosts"])),
    "set-access": (s.Table(fields={"profile": s.Str(), "group": s.Str(choices=ACCESS_GROUPS),
                                   "access": s.Str(choices=ACCESS_LEVELS)}, required=("profile", "group", "access")),
                   lambda state, op: state.set_access(op["profile"], op["group"], op["access"])),
    "assign-vdom": (s.Table(fields={"user": _USER, "vdom": s.Str()}, required=("user", "vdom")),
                    lambda state, op: state.assign_vdom(op["user"], op["vdom"])),
    "set-query-token": (s.Table(fields={"enabled": s.Bool()}, required=("enabled",)),
                        _set_setting("rest_api_key_url_query", "enabled")),
    "lock-out": (s.Table(fields={"address": s.Str(), "seconds": s.Float(None, doc="how long (default: the device's "
                                                                               "admin-lockout-duration)")},
                         required=("address",)),
                 lambda state, op: state.lock_out(op["address"], op.get("seconds"))),
    "clear-lockouts": (s.Table(), lambda state, op: state.clear_lockouts()),
    "failed-attempts": (s.Table(fields={"address": s.Str(doc="the source address the attempts come from"),
                                        "count": s.Int(3, min=1, max=100, doc="how many")},
                                required=("address",)),
                        lambda state, op: state.failed_attempts(op["address"], op["count"])),
    "set-slow-path": (s.Table(fields={"prefix": s.Str(doc="a URL path prefix, e.g. /api/v2/cmdb/firewall/address"),
                                      "seconds": s.Float(min=0, max=3600, doc="how long its answers take; 0: at once")},
                              required=("prefix", "seconds")),
                      lambda state, op: state.set_slow_path(op["prefix"], op["seconds"])),
    "set-system-time": (s.Table(fields={"time": s.Parsed(parse=parse_wall_time, what="an ISO date and time")},
                                required=("time",)),
                        lambda state, op: state.set_system_time(op["time"])),
    "set-schedule": (s.Table(fields={"user": _USER, "schedule": s.Str(doc="a schedule of device.schedules; '' removes it")},
                             required=("user", "schedule")),
                     lambda state, op: state.set_schedule(op["user"], op["schedule"])),
    "set-version": (s.Table(fields={"version": _version(doc="the FortiOS version after the upgrade, e.g. 7.4.5"),
                                    "build": s.Int(None, min=1)}, required=("version",)),
                    _set_version),
    "set-admin-password": (s.Table(fields={"admin": s.Str(doc="admin name"), "password": s.Str()},
                                   required=("admin", "password")),
                           lambda state, op: state.sessions.set_password(op["admin"], op["password"])),
    "set-banner": (s.Table(fields={"post_login": s.Bool()}, required=("post_login",)),
                   _set_setting("post_login_banner", "post_login")),
    "expire-sessions": (s.Table(), lambda state, op: state.sessions.expire_all()),
    # Every admin password as old as the password policy allows, and every session idled out: what
    # expire-day days on the clock do, for a phase told to start early.
    "expire-passwords": (s.Table(), lambda state, op: state.sessions.expire_passwords()),
}


def build_state(device: dict) -> FortiOSState:
    version = parse_version(device["version"])
    settings = dict(device["settings"])
    if settings["rest_api_key_url_query"] is None:
        settings["rest_api_key_url_query"] = version < (7, 4, 5)
    profiles = {**BUILTIN_PROFILES, **DEFAULT_PROFILES, **device["accprofiles"]}
    state = FortiOSState(
        hostname=device["hostname"],
        serial=device["serial"],
        version=device["version"],
        build=build_number(device["version"], device["build"]),
        settings=settings,
        accprofiles={name: AccProfile(name, dict(access)) for name, access in profiles.items()},
        api_users=[
            ApiUser(
                name=u["name"], accprofile=u["accprofile"], vdoms=list(u["vdoms"]),
                token=u["token"] or new_token(), trusthosts=[parse_trusthost(t) for t in u["trusthosts"]],
                enabled=u["enabled"], comments=u["comments"], scope=u["scope"], schedule=u["schedule"],
            )
            for u in device["api_users"]
        ],
        vdoms=device["vdoms"],
        schedules=[Schedule(name, tuple(sc["days"]), parse_time_of_day(sc["start"]), parse_time_of_day(sc["end"]))
                   for name, sc in device["schedules"].items()],
        external_resources=device["external_resources"],
        admins=[
            Admin(name=a["name"], password=a["password"], accprofile=a["accprofile"], vdoms=list(a["vdoms"]),
                  trusthosts=[parse_admin_trusthost(t) for t in a["trusthosts"]])
            for a in device["admins"]
        ],
    )
    if device["factory_defaults"]:
        for vdom in state.vdoms:
            for path, row in factory_rows(state.version):
                state.add_factory_row(vdom, path, row)
    for path, rows in device["cmdb"].items():
        for i, row in enumerate(rows):
            _seed(state, device, f"device.cmdb.{path}[{i}]", path, dict(row))
    return state


def _seed(state: FortiOSState, device: dict, key: str, path: str, row: dict) -> None:
    """Create one seed object; a refusal names the object and says what the device said."""
    vdom = row.pop("vdom", device["vdoms"][0])
    if vdom not in state.vdoms:
        raise s.SchemaError(f"{key}.vdom", f"'{vdom}' is not in device.vdoms ({', '.join(state.vdoms)})")
    try:
        state.seed(vdom, path, row)  # a factory object of the same name is replaced
    except FortiOSError as exc:
        what = exc.cli_error.strip().splitlines()[0] if exc.cli_error else "duplicate name" if exc.error == -5 else ""
        raise s.SchemaError(key, f"the device refuses this object (error {exc.error}: {what})") from None


def _check_names(state: FortiOSState, op: dict) -> None:
    """An operation naming a user or profile the device does not have fails with the names it has."""
    user = op.get("user")
    if user is not None:
        known = state.deleted_users if op["op"] == "recreate-api-user" else state.api_users
        if user not in known:
            which = "a deleted API user" if op["op"] == "recreate-api-user" else "an API user"
            raise s.SchemaError("user", f"'{user}' is not {which} of this device; known: "
                                f"{', '.join(known) or 'none'}{s.suggest(user, known)}")
    profile = op.get("profile")
    if profile is not None and profile not in state.accprofiles:
        raise s.SchemaError("profile", f"'{profile}' is not an access profile; known: "
                            f"{', '.join(state.accprofiles)}{s.suggest(profile, state.accprofiles)}")


class FortiGateKind(FortiGateClient, DeviceKind, PasswordLogins):
    """A FortiGate: FortiOS REST API v2, API users with tokens, admins with password sessions."""

    name = NAME
    actions = ("login", "logout", "write")  # a FortiGate has no workspace to lock

    @property
    def DEVICE(self) -> s.Table:
        return DEVICE

    @property
    def OPERATIONS(self) -> dict[str, Operation]:
        return OPERATIONS

    def build_state(self, device: dict) -> FortiOSState:
        return build_state(device)

    def apply(self, state: FortiOSState, op: dict) -> None:
        """Run one device operation from a scenario's setup or remedy (or the control API)."""
        _check_names(state, op)
        try:
            super().apply(state, op)
        except (KeyError, FortiOSError) as exc:
            raise ValueError(f"operation {op['op']}: no such user, admin or profile ({exc})") from None

    def create_app(self, get_state):
        from .wire import create_app  # Flask loads only when a device serves

        return create_app(get_state)

    def users(self, state: FortiOSState) -> list[str]:
        return list(state.api_users) + list(state.deleted_users)

    def live_tokens(self, state: FortiOSState) -> dict[str, str]:
        """The API users that exist now and their keys (deleted users are gone, with their keys)."""
        with state.lock:
            return {name: user.token for name, user in state.api_users.items()}

    def token_for(self, state: FortiOSState, user: str, which: str) -> str | None:
        """The key an agent holds: the user's current one, the one it had before a change, or a stranger's."""
        if which == "none":
            return None
        if which == "unknown":
            return new_token()
        if which == "stale":
            return state.retired_tokens.get(user)
        live = state.api_users.get(user)
        return live.token if live else state.retired_tokens.get(user)

    # -- password logins ---------------------------------------------------------------------------
    def admins(self, state: FortiOSState) -> list[str]:
        """Administrators who can log in with a password, in scenario order."""
        return list(state.sessions.admins)

    def password_for(self, state: FortiOSState, admin: str) -> str:
        """The admin's current password (what a correctly configured agent sends)."""
        return state.sessions.admins[admin].password

    def expired_session_for(self, state: FortiOSState, admin: str) -> str:
        """The session key an agent kept from an earlier login that the device has since timed out."""
        return state.sessions.expired_session_key(admin)


KIND = FortiGateKind()
