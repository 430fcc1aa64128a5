"""The state of a mock FortiGate: identity, REST API users, access profiles, VDOMs and their CMDB.

Plain Python objects behind one lock. The wire layer (:mod:`mockfgt.fortios.wire`) only translates
HTTP to calls here and back; everything FortiOS decides (who may do what, which write is refused and
with which error code) is decided here, so the control API, the remedies and the HTTP requests all
change the same state.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import secrets
import threading
from dataclasses import dataclass, field

from ..clock import REAL, Clock
from ..kernel import parse_version
from .access import new_token, parse_trusthost, trusted
from .errors import AuthFailure, FortiOSError
from .schedules import Schedule, WallTime, parse_wall_time
from .sessions import AdminSessions
from .tables import TABLES, TableSpec, factory_rows

ACCESS_LEVELS = ("none", "read", "read-write")
#: Access groups of a FortiOS accprofile that the emulation checks.
ACCESS_GROUPS = ("fwgrp", "sysgrp", "netgrp", "loggrp", "authgrp", "utmgrp", "vpngrp", "wanoptgrp", "wifi")


@dataclass
class AccProfile:
    name: str
    access: dict[str, str] = field(default_factory=dict)

    def level(self, group: str) -> str:
        if group == "any":
            return "read-write"
        return self.access.get(group, "none")


@dataclass
class ApiUser:
    name: str
    accprofile: str
    vdoms: list[str]
    token: str
    trusthosts: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    enabled: bool = True
    comments: str = ""
    #: The scope of its admin profile (FortiOS ``config system accprofile / set scope``): "global" may
    #: make global-scope calls (``?scope=global``), "vdom" works only inside its VDOMs.
    scope: str = "global"
    #: A recurring schedule's name (:mod:`mockfgt.fortios.schedules`): outside it the key is refused.
    schedule: str = ""

    def trusts(self, address: str) -> bool:
        """No trusthost entries means any source may use the key."""
        return trusted(self.trusthosts, address)


class Vdom:
    """One VDOM's CMDB: tables keyed by path ('firewall/address'), rows keyed by name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tables: dict[str, dict[str, dict]] = {path: {} for path in TABLES}


#: Entries a CMDB table holds at most (a model's table size: mid-range FortiGates allow about 10,000
#: addresses; the exact figure is per model and unconfirmed). Also what keeps a device's memory bounded.
TABLE_MAX_ENTRIES = 10_000
#: Above this many sources with failures or lockouts on record, the stale ones are forgotten.
SOURCES_KEPT = 1024


class FortiOSState:
    """Everything a mock FortiGate remembers. Thread-safe: every public method takes the lock."""

    def __init__(
        self,
        *,
        hostname: str,
        serial: str,
        version: str,
        build: int,
        settings: dict,
        accprofiles: dict[str, AccProfile],
        api_users: list[ApiUser],
        vdoms: list[str],
        external_resources: list[str],
        admins: list | None = None,
        schedules: list[Schedule] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.schedules: dict[str, Schedule] = {sc.name: sc for sc in schedules or []}
        start = settings.get("system_time")
        self._system_time = parse_wall_time(start) if start else None
        #: The device's clock (lockouts, admin sessions); a device sets its own, see mockfgt.clock.
        self.clock = REAL
        self.hostname, self.serial, self.build = hostname, serial, build
        self.version = parse_version(version)
        self.settings = dict(settings)
        self.accprofiles = dict(accprofiles)
        self.api_users: dict[str, ApiUser] = {u.name: u for u in api_users}
        self.deleted_users: dict[str, ApiUser] = {}
        self.retired_tokens: dict[str, str | None] = {}
        self.vdoms: dict[str, Vdom] = {name: Vdom(name) for name in vdoms}
        self.external_resources: dict[str, list[str]] = {name: [] for name in external_resources}
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self.sessions = AdminSessions(self, admins or [])
        self._revision_seed = secrets.token_hex(8)
        self._revisions = itertools.count(1)
        self.revision = self._next_revision()

    # -- time ----------------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        """The device sets its own clock after building the state; the wall time (schedules) starts
        then, at ``settings.system_time`` if the scenario set one."""
        self._clock = clock
        self.wall = WallTime(clock, self._system_time)
        self.started = clock.monotonic()  # passwords set by the scenario date from here (password expiry)

    def set_system_time(self, moment: str) -> None:
        """``execute date`` / ``execute time``: the wall time moves forward to ``moment`` (never back)."""
        with self.lock:
            self.wall.move_to(parse_wall_time(moment))

    def set_schedule(self, user: str, schedule: str) -> None:
        """Give an API user a schedule ('' removes it: the key works at any time)."""
        with self.lock:
            if schedule and schedule not in self.schedules:
                raise KeyError(schedule)
            self.user(user).schedule = schedule

    def in_schedule(self, user: ApiUser) -> bool:
        with self.lock:
            schedule = self.schedules.get(user.schedule) if user.schedule else None
            return schedule is None or schedule.contains(self.wall.now())

    # -- identity -----------------------------------------------------------------------------
    @property
    def version_string(self) -> str:
        return "v{}.{}.{}".format(*self.version)

    def _next_revision(self) -> str:
        return hashlib.md5(f"{self._revision_seed}{next(self._revisions)}".encode()).hexdigest()

    def bump_revision(self) -> tuple[str, str]:
        """Every CMDB write changes the revision; returns (old, new)."""
        old, self.revision = self.revision, self._next_revision()
        return old, self.revision

    # -- authentication -----------------------------------------------------------------------
    def query_token_allowed(self) -> bool:
        """``?access_token=`` works only where ``rest-api-key-url-query`` is enabled (off from 7.4.5)."""
        return bool(self.settings["rest_api_key_url_query"])

    def authenticate(self, token: str | None, peer: str) -> ApiUser:
        """Map a token and the real peer address to an API user, or refuse as FortiOS does."""
        with self.lock:
            self.refuse_if_locked_out(peer)
            if not token:  # no credential at all is no failed attempt (ref H.14, a guess: a setting)
                if self.settings.get("lockout_counts_no_credential"):
                    self.count_failure(peer)
                raise AuthFailure(401, "no API key")
            user = self._user_for_token(token)
            if user is None:
                self.count_failure(peer)
                raise AuthFailure(401, "unknown API key")
            if not user.trusts(peer):
                self.count_failure(peer)
                raise AuthFailure(401, f"Peer not trusted: {peer}")
            if not self.in_schedule(user):  # the right key at the wrong time: refused, not counted
                raise AuthFailure(401, f"outside the schedule {user.schedule!r} of API user {user.name}")
            self.forget_failures(peer)
            return user

    def refuse_if_locked_out(self, peer: str) -> None:
        """429 for a source still inside its lockout, whatever credential it brings."""
        with self.lock:
            if self._locked_until.get(peer, 0) > self.clock.monotonic():
                raise AuthFailure(429, f"source {peer} is locked out after repeated failures")

    def count_failure(self, peer: str) -> None:
        """One failed authentication (API key or password) from ``peer``."""
        with self.lock:
            self._count_failure(peer, self.clock.monotonic())

    def forget_failures(self, peer: str) -> None:
        """A success resets the source's count of recent failures."""
        with self.lock:
            self._failures.pop(peer, None)

    def _user_for_token(self, token: str) -> ApiUser | None:
        found = None
        for user in self.api_users.values():  # compare against every key: constant time per key
            if hmac.compare_digest(user.token.encode(), token.encode()) and user.enabled:
                found = user
        return found

    def _forget_stale_sources(self, now: float, duration: float) -> None:
        """Sources whose failures are older than the lockout window, or whose lockout ran out, are
        forgotten: the tables stay as small as the sources failing now, whatever clients send."""
        self._failures = {p: ts for p, ts in self._failures.items() if ts and now - ts[-1] < duration}
        self._locked_until = {p: until for p, until in self._locked_until.items() if until > now}

    def _count_failure(self, peer: str, now: float) -> None:
        threshold = self.settings["admin_lockout_threshold"]
        if threshold <= 0:
            return
        duration = self.settings["admin_lockout_duration"]
        if len(self._failures) + len(self._locked_until) > SOURCES_KEPT:
            self._forget_stale_sources(now, duration)
        recent = [t for t in self._failures.get(peer, []) if now - t < duration] + [now]
        self._failures[peer] = recent
        if len(recent) >= threshold:
            self._locked_until[peer] = now + duration
            self._failures.pop(peer, None)

    def lock_out(self, address: str, seconds: float | None = None) -> None:
        """Lock ``address`` out for ``seconds`` (default: admin-lockout-duration) on the device's clock."""
        with self.lock:
            duration = self.settings["admin_lockout_duration"] if seconds is None else seconds
            self._locked_until[address] = self.clock.monotonic() + duration

    def failed_attempts(self, address: str, count: int, token: str | None = None) -> int:
        """``count`` requests from ``address`` with a key the device does not know (a stale agent), through
        the same check a request goes through: each counts toward the lockout, and once the source is
        locked out the rest are refused before any check. Returns how many were refused as locked out."""
        refused = 0
        for _ in range(count):
            try:
                self.authenticate(token or new_token(), address)
            except AuthFailure as exc:
                refused += exc.http_status == 429
        return refused

    def clear_lockouts(self) -> None:
        with self.lock:
            self._locked_until.clear()
            self._failures.clear()

    def access(self, user: ApiUser, group: str) -> str:
        profile = self.accprofiles.get(user.accprofile)
        return profile.level(group) if profile else "none"

    # -- API user administration ---------------------------------------------------------------
    def user(self, name: str) -> ApiUser:
        try:
            return self.api_users[name]
        except KeyError:
            raise FortiOSError(404, mkey=name) from None  # captured 404s carry no error code

    def regenerate_key(self, name: str) -> str:
        """Replace a user's key; the old one stops working at once. Returns the new key."""
        with self.lock:
            user = self.user(name)
            self.retired_tokens[name] = user.token
            user.token = new_token()
            return user.token

    def delete_api_user(self, name: str) -> None:
        with self.lock:
            user = self.api_users.pop(name)
            self.deleted_users[name] = user
            self.retired_tokens[name] = user.token

    def recreate_api_user(self, name: str) -> str:
        """Bring back a deleted user with its old settings and a new key."""
        with self.lock:
            user = self.deleted_users.pop(name)
            user.token = new_token()
            self.api_users[name] = user
            return user.token

    def set_trusthosts(self, name: str, trusthosts: list[str]) -> None:
        with self.lock:
            self.user(name).trusthosts = [parse_trusthost(t) for t in trusthosts]

    def assign_vdom(self, name: str, vdom: str) -> None:
        with self.lock:
            user = self.user(name)
            self.vdoms.setdefault(vdom, Vdom(vdom))
            if vdom not in user.vdoms:
                user.vdoms.append(vdom)

    def set_access(self, profile: str, group: str, access: str) -> None:
        with self.lock:
            self.accprofiles[profile].access[group] = access

    # -- slow endpoints ----------------------------------------------------------------------
    def slowness(self, path: str) -> float:
        """Seconds an answer to ``path`` takes (the longest matching prefix of ``slow_paths``; 0: at once)."""
        with self.lock:
            paths = self.settings.get("slow_paths") or {}
            matching = [p for p in paths if path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/")]
            return float(paths[max(matching, key=len)]) if matching else 0.0

    def set_slow_path(self, prefix: str, seconds: float) -> None:
        """Answers under ``prefix`` take ``seconds`` from now on (0: at once again)."""
        with self.lock:
            paths = dict(self.settings.get("slow_paths") or {})
            if seconds > 0:
                paths[prefix] = seconds
            else:
                paths.pop(prefix, None)
            self.settings["slow_paths"] = paths

    # -- firmware ------------------------------------------------------------------------------
    def upgrade(self, version: str, build: int) -> None:
        """A firmware upgrade (or downgrade): the device reports the new version and behaves as it does
        wherever behaviour depends on the version (cookie names, envelopes, logins). The configuration
        is kept: settings, users, profiles, objects (the new version's factory objects are added where
        missing). The reboot ends every admin session and lockout."""
        with self.lock:
            self.version, self.build = parse_version(version), build
            for vdom in self.vdoms:
                rows = self.vdoms[vdom].tables
                for path, row in factory_rows(self.version):
                    rows[path].setdefault(row["name"], row)
            self.sessions.end_all()
            self._locked_until.clear()
            self._failures.clear()

    # -- VDOM scoping ---------------------------------------------------------------------------
    def vdoms_for(self, user: ApiUser, requested: str | None, scope: str | None = None) -> list[str]:
        """The VDOMs a request addresses; 403 for one the user may not use (or that does not exist), and
        for a global-scope call (``scope=global``) by a VDOM-scoped user."""
        if scope == "global" and getattr(user, "scope", "global") != "global":
            raise FortiOSError(403)
        if requested is None:
            return [user.vdoms[0]]
        if requested == "*":
            return [v for v in user.vdoms if v in self.vdoms]
        names = [v for v in requested.split(",") if v]
        for name in names:
            if name not in user.vdoms or name not in self.vdoms:
                raise FortiOSError(403)
        return names

    # -- CMDB ---------------------------------------------------------------------------------
    def table(self, vdom: str, path: str) -> dict[str, dict]:
        return self.vdoms[vdom].tables[path]

    def list_rows(self, vdom: str, path: str) -> list[dict]:
        with self.lock:
            return [dict(row) for row in self.table(vdom, path).values()]

    def get_row(self, vdom: str, path: str, name: str) -> dict:
        with self.lock:
            row = self.table(vdom, path).get(name)
            if row is None:
                raise FortiOSError(404, mkey=name)
            return dict(row)

    def create(self, vdom: str, path: str, data: dict) -> str:
        spec = TABLES[path]
        with self.lock:
            rows = self.table(vdom, path)
            name = data.get("name")
            if not isinstance(name, str) or not name:
                raise FortiOSError(500, -651, "name: Input value is invalid")
            if name in rows:
                raise FortiOSError(500, -5, mkey=name)
            if len(rows) >= self.settings.get("table_max_entries", TABLE_MAX_ENTRIES):
                raise FortiOSError(500, -4, mkey=name)  # "Maximum number of entries has been reached" (ref A.2.2)
            row = spec.build(data, self._version_allows_empty_groups())
            self._check_members(vdom, spec, row)
            rows[name] = row
            return name

    def update(self, vdom: str, path: str, name: str, data: dict) -> tuple[str, bool]:
        """PUT by name: ``(name after the write, whether anything changed)`` (ref H.3)."""
        spec = TABLES[path]
        with self.lock:
            rows = self.table(vdom, path)
            if name not in rows:
                raise FortiOSError(404, mkey=name)
            row = spec.merge(rows[name], data, self._version_allows_empty_groups())
            self._check_members(vdom, spec, row)
            if row == rows[name]:
                return name, False
            new_name = row["name"]
            if new_name != name:
                if new_name in rows:
                    raise FortiOSError(500, -5, mkey=name)
                self._rename_references(vdom, path, name, new_name)
                del rows[name]
            rows[new_name] = row
            return new_name, True

    def add_factory_row(self, vdom: str, path: str, row: dict) -> None:
        """A factory object, already a stored row (:func:`tables.factory_rows`): no checks, no revision."""
        with self.lock:
            self.table(vdom, path)[row["name"]] = row

    def seed(self, vdom: str, path: str, data: dict) -> None:
        """A scenario's seed object: created, or replacing the factory object of the same name."""
        spec = TABLES[path]
        with self.lock:
            rows = self.table(vdom, path)
            name = data.get("name")
            if not isinstance(name, str) or name not in rows:
                self.create(vdom, path, data)
                return
            row = spec.build(data, self._version_allows_empty_groups())
            row["uuid"] = rows[name]["uuid"]
            self._check_members(vdom, spec, row)
            rows[name] = row

    # -- member sub-tables (ref H.15) -----------------------------------------------------------
    def members(self, vdom: str, path: str, name: str, field: str) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self.get_row(vdom, path, name)[field]]

    def add_member(self, vdom: str, path: str, name: str, field: str, member: object) -> tuple[str, bool]:
        """Append one member as ``POST .../<grp>/member`` does: ``(member name, changed)``.

        The group is rewritten through the same checks as a whole-group PUT (the member must exist).
        """
        if not isinstance(member, str) or not member:
            raise FortiOSError(500, -651, "name: Input value is invalid")
        with self.lock:
            current = [m["name"] for m in self.members(vdom, path, name, field)]
            if member in current:
                return member, False
            self.update(vdom, path, name, {field: [*current, member]})
            return member, True

    def remove_member(self, vdom: str, path: str, name: str, field: str, member: str) -> bool:
        """``DELETE .../<grp>/member/<name>``: whether the member was there (an absent one changes nothing)."""
        with self.lock:
            current = [m["name"] for m in self.members(vdom, path, name, field)]
            if member not in current:
                return False
            self.update(vdom, path, name, {field: [m for m in current if m != member]})
            return True

    def delete(self, vdom: str, path: str, name: str) -> None:
        with self.lock:
            rows = self.table(vdom, path)
            if name not in rows:
                raise FortiOSError(404, mkey=name)
            if self._referenced(vdom, path, name):
                raise FortiOSError(500, -23, mkey=name)
            del rows[name]

    def purge(self, vdom: str, path: str) -> None:
        """DELETE on the table URL: remove every row nothing refers to."""
        with self.lock:
            rows = self.table(vdom, path)
            for name in [n for n in rows if not self._referenced(vdom, path, n)]:
                del rows[name]

    def _version_allows_empty_groups(self) -> bool:
        return self.version >= (7, 2, 0)

    def _check_members(self, vdom: str, spec: TableSpec, row: dict) -> None:
        if not spec.member_tables:
            return
        for member in [*row.get("member", []), *row.get("exclude-member", [])]:
            if not any(member["name"] in self.table(vdom, t) for t in spec.member_tables):
                raise FortiOSError(
                    500, -3, f"entry not found in datasource\n\nvalue parse error before '{member['name']}'\n"
                    "Command fail. Return code -3\n", mkey=row["name"],
                )

    def _groups_referring(self, vdom: str, path: str):
        for group_path, spec in TABLES.items():
            if path in spec.member_tables:
                yield from self.table(vdom, group_path).values()

    def _referenced(self, vdom: str, path: str, name: str) -> bool:
        return any(
            m["name"] == name
            for g in self._groups_referring(vdom, path)
            for m in [*g.get("member", []), *g.get("exclude-member", [])]
        )

    def _rename_references(self, vdom: str, path: str, old: str, new: str) -> None:
        for group in self._groups_referring(vdom, path):
            for member in [*group.get("member", []), *group.get("exclude-member", [])]:
                if member["name"] == old:
                    member["name"] = member["q_origin_key"] = new

    # -- monitor ------------------------------------------------------------------------------
    def push_external_resource(self, commands: object) -> list[dict]:  # anything: checked here
        """``monitor/system/external-resource/dynamic``: add / remove / snapshot entries."""
        with self.lock:
            if not isinstance(commands, list) or not commands:
                raise FortiOSError(400)
            for command in commands:
                if not isinstance(command, dict) or command.get("command") not in ("add", "remove", "snapshot"):
                    raise FortiOSError(400)
                if command.get("name") not in self.external_resources:
                    raise FortiOSError(500, -3, "entry not found in datasource", mkey=command.get("name"))
                if not isinstance(command.get("entries", []), list):
                    raise FortiOSError(400)
            for command in commands:
                entries = self.external_resources[command["name"]]
                new = [str(e) for e in command.get("entries", [])]
                if command["command"] == "snapshot":
                    entries[:] = list(dict.fromkeys(new))
                elif command["command"] == "add":
                    entries.extend(e for e in dict.fromkeys(new) if e not in entries)
                else:
                    entries[:] = [e for e in entries if e not in new]
            return [{"name": c["name"], "entries": len(self.external_resources[c["name"]])} for c in commands]

    def status(self) -> dict:
        return {
            "model_name": "FortiGate",
            "model_number": "VM64",
            "model": "FGVM64",
            "hostname": self.hostname,
            "log_disk_status": "available",
        }
