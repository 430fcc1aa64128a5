"""The state of a mock FortiManager: one lock in front of the parts that hold what the device remembers.

Plain Python objects, with no HTTP in sight. Everything FortiManager decides (who may call what, which
status code a refusal carries, whether a write needs the ADOM lock) is decided in the parts;
:mod:`mockfgt.fortimanager.wire` only translates JSON-RPC to calls of :class:`FortiManagerState` and
:class:`FMGError` to ``result[i].status``. The scenario operations, the control API and the requests
all change the same state.

The parts, none of which takes a lock of its own:

- :mod:`.admins` (:class:`AdminBook`): admins, profiles, keys;
- :mod:`.sessions` (:class:`Sessions`): key and session authentication, logins, idle expiry;
- :mod:`.access`: the :class:`Principal` of a request and the permission checks;
- :mod:`.workspace` (:class:`Workspace`): ADOMs, their locks and working copies;
- :mod:`.store` (:class:`ObjectStore`): firewall objects in an ADOM;
- :mod:`.tasks` (:class:`Tasks`): packages, installs and their tasks;
- :mod:`.proxy` (:class:`Fleet`): managed devices and ``/sys/proxy/json``;
- :mod:`.system` (:class:`Identity`): ``/sys/status`` and ``/cli/global/system/global``.
"""

from __future__ import annotations

import itertools
import threading

from ..clock import Clock
from ..kernel import parse_version
from .access import Principal, require, require_api_access
from .admins import Admin, AdminBook
from .devices import ManagedDevice
from .errors import (
    ALREADY_EXISTS,
    IN_USE,
    INTERNAL_ERROR,
    INVALID_DATA,
    INVALID_URL,
    LOGIN_FAILED,
    MESSAGES,
    NO_PERMISSION,
    NO_WRITE_PERMISSION,
    NOT_FOUND,
    NOT_IN_WORKSPACE_MODE,
    OK,
    WORKSPACE_LOCKED,
    FMGError,
)
from .proxy import Fleet
from .sessions import KeyCalls, Session, Sessions
from .store import ObjectStore
from .system import Identity
from .tasks import Tasks
from .workspace import GLOBAL, WORKSPACE_MODES, Workspace

__all__ = [
    "FortiManagerState", "FMGError", "Principal", "Session", "GLOBAL", "MESSAGES", "OK", "INTERNAL_ERROR",
    "ALREADY_EXISTS", "NOT_FOUND", "INVALID_URL", "NOT_IN_WORKSPACE_MODE", "INVALID_DATA", "NO_PERMISSION",
    "LOGIN_FAILED", "IN_USE", "NO_WRITE_PERMISSION", "WORKSPACE_LOCKED",
]


class FortiManagerState:
    """Everything a mock FortiManager remembers. Thread-safe: every public method takes the lock.

    ``adoms`` are the ordinary ADOMs; the ``global`` ADOM is added next to them unless
    ``settings["global_adom"]`` is false (or the list names it already).
    """

    def __init__(self, *, hostname: str, serial: str, version: str, build: int, release_date: str,
                 settings: dict, profiles: dict[str, dict], admins: list[Admin], adoms: list[str],
                 devices: list[ManagedDevice]) -> None:
        self.lock = threading.RLock()
        self.identity = Identity(hostname, serial, parse_version(version), build, release_date)
        self.settings = dict(settings)
        numbers = itertools.count(13807)  # session numbers look like captured ones
        oids = itertools.count(3000)
        self.people = AdminBook(admins, profiles, numbers)
        self.profiles = self.people.profiles
        self.logins = Sessions(self.people.admins, self.settings, numbers, self._session_ended)
        self.key_calls = KeyCalls(self.settings)
        if self.settings.get("global_adom", True) and GLOBAL not in adoms:
            adoms = [*adoms, GLOBAL]  # a factory-fresh device has it next to root (reference H.16)
        self.workspace = Workspace(adoms, self.settings, self.profiles, oids, self.identity.version)
        managed: dict[str, ManagedDevice] = {}
        for device in devices:
            device.oid = next(oids)
            managed[device.name] = device
        self.store = ObjectStore(self.workspace, oids)
        self.fleet = Fleet(managed, self.workspace, self.profiles)
        self.installs = Tasks(self.workspace, managed, self.settings, self.profiles)

    @property
    def clock(self) -> Clock:
        """The device's clock (session idle expiry, lock and task time stamps); see mockfgt.clock."""
        return self.logins.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.logins.clock = self.workspace.clock = self.installs.clock = clock

    def _session_ended(self, number: int) -> None:
        self.workspace.release_owner(number)

    # -- what the parts hold, by the names tests and the kind read --------------------------------
    @property
    def admins(self) -> dict[str, Admin]:
        return self.people.admins

    @property
    def deleted_admins(self) -> dict[str, Admin]:
        return self.people.deleted

    @property
    def retired_tokens(self) -> dict[str, str | None]:
        return self.people.retired_tokens

    @property
    def sessions(self) -> dict[str, Session]:
        return self.logins.live

    @property
    def ended_sessions(self) -> dict[str, str]:
        return self.logins.ended

    @property
    def adoms(self):
        return self.workspace.adoms

    @property
    def devices(self) -> dict[str, ManagedDevice]:
        return self.fleet.devices

    @property
    def tasks(self):
        return self.installs.tasks

    @property
    def version(self) -> tuple[int, int, int]:
        return self.identity.version

    @property
    def hostname(self) -> str:
        return self.identity.hostname

    # -- identity and settings -----------------------------------------------------------------
    def status(self) -> dict:
        with self.lock:
            return self.identity.status(self.settings)

    def cli_status(self, principal: Principal) -> dict:
        """``/cli/global/system/status``: a CLI table, so the profile's system-setting read is needed,
        where ``/sys/status`` is open to every admin with rpc-permit (fmg-probe-needs-sys-read)."""
        with self.lock:
            require(self.profiles, principal, "system-setting", write=False)
            return self.identity.status(self.settings)

    def global_settings(self, principal: Principal) -> dict:
        """``/cli/global/system/global``: system-setting read, as every ``/cli/global/system`` table."""
        with self.lock:
            require(self.profiles, principal, "system-setting", write=False)
            return self.identity.system_global(self.settings)

    def update_global(self, principal: Principal, data) -> None:
        with self.lock:
            require(self.profiles, principal, "system-setting", write=True)
            if not isinstance(data, dict):
                raise FMGError(INVALID_DATA)
            mode = data.get("workspace-mode", self.settings["workspace_mode"])
            status = data.get("adom-status", "enable" if self.settings["adom_status"] else "disable")
            if mode not in WORKSPACE_MODES or status not in ("enable", "disable"):
                raise FMGError(INVALID_DATA)
            self.workspace.set_mode(mode)
            self.settings["adom_status"] = status == "enable"
            self.identity.hostname = data.get("hostname", self.identity.hostname)

    def set_workspace_mode(self, mode: str) -> None:
        with self.lock:
            self.workspace.set_mode(mode)

    def workspace_enabled(self) -> bool:
        return self.workspace.enabled()

    # -- authentication ------------------------------------------------------------------------
    def api_keys_supported(self) -> bool:
        """API keys exist from FortiManager 7.2.2 on; before that a Bearer header means nothing."""
        return self.version >= (7, 2, 2)

    def query_token_allowed(self) -> bool:
        """``?access_token=`` was removed in 7.4.7 / 7.6.2 (scenario setting ``access_token_query``)."""
        return bool(self.settings["access_token_query"]) and self.api_keys_supported()

    def authenticate_key(self, token: str, peer: str) -> Principal:
        with self.lock:
            return self.logins.authenticate_key(token, peer)

    def keyed_call(self, key: str):
        """A context manager around one request made with an API key: yields True when the device
        refuses it for another request with the same key in flight (``parallel_key_conflict``)."""
        return self.key_calls.call(key)

    def authenticate_session(self, sid, peer: str) -> Principal:
        with self.lock:
            return self.logins.authenticate(sid, peer)

    def login(self, user, passwd, peer: str | None) -> str:
        """``exec /sys/login/user``: the new session's id."""
        with self.lock:
            return self.logins.login(user, passwd, peer)

    def logout(self, principal: Principal) -> None:
        with self.lock:
            if principal.session is not None:
                self.logins.end(principal.session)

    def expire_sessions(self, user: str | None = None) -> None:
        """Every login session ends (or every one of ``user``'s), as the idle timeout would end them."""
        with self.lock:
            if user is None:
                self.logins.end_all()
            else:
                self.logins.end_for(self.people.get(user).name)

    def open_session(self, user: str, count: int = 1) -> str:
        """``count`` sessions for ``user`` as if it had logged in and never logged out (scenario
        operation ``login``); the last one's id."""
        with self.lock:
            admin = self.people.get(user)
            return [self.logins.open(admin) for _ in range(count)][-1]

    def session_count(self, user: str) -> int:
        """How many live sessions ``user`` holds now."""
        with self.lock:
            self.logins.expire_idle()
            return self.logins.count(user)

    def set_login_max(self, user: str, count: int) -> None:
        with self.lock:
            self.people.get(user).login_max = count

    def live_session(self, user: str) -> str | None:
        with self.lock:
            return self.logins.newest(user)

    def require_api_access(self, principal: Principal) -> None:
        require_api_access(principal)

    # -- admins (scenario operations and /cli/global/system/admin/user) ---------------------------
    def admin(self, name: str) -> Admin:
        with self.lock:
            return self.people.get(name)

    def regenerate_key(self, name: str) -> str:
        with self.lock:
            return self.people.regenerate_key(name)

    def delete_admin(self, name: str) -> None:
        with self.lock:
            self.people.delete(name)
            self.logins.end_for(name)

    def recreate_admin(self, name: str) -> None:
        with self.lock:
            self.people.recreate(name)

    def set_rpc_permit(self, name: str, permit: str) -> None:
        with self.lock:
            self.people.get(name).rpc_permit = permit

    def set_profile(self, name: str, profile: str) -> None:
        with self.lock:
            self.people.set_profile(name, profile)

    def set_permission(self, profile: str, group: str, level: str) -> None:
        """``config system admin profile / edit <profile> / set <group> <level>``."""
        with self.lock:
            if profile not in self.profiles:
                raise FMGError(NOT_FOUND, f"no profile {profile}")
            self.profiles[profile] = {**self.profiles[profile], group: level}

    def assign_adom(self, name: str, adom: str) -> None:
        with self.lock:
            admin = self.people.get(name)
            self.workspace.existing(adom)
            if not admin.may_use(adom):
                admin.adoms.append(adom)

    def set_trusthosts(self, name: str, trusthosts: list) -> None:
        with self.lock:
            self.people.set_trusthosts(name, trusthosts)

    def admin_user_rows(self, principal: Principal) -> list[dict]:
        with self.lock:
            require(self.profiles, principal, "system-setting", write=False)
            return self.people.rows()

    def admin_user_row(self, principal: Principal, name: str) -> dict:
        with self.lock:
            require(self.profiles, principal, "system-setting", write=False)
            return self.people.row(name)

    def update_admin_user(self, principal: Principal, name: str, data) -> str:
        """``set``/``update`` on ``/cli/global/system/admin/user/<name>``: only a Super_User-like profile may."""
        with self.lock:
            require(self.profiles, principal, "system-setting", write=True)
            return self.people.update(name, data)

    # -- ADOMs and the workspace -------------------------------------------------------------------
    def adom_rows(self, principal: Principal) -> list[dict]:
        with self.lock:
            return self.workspace.rows(principal)

    def adom_row(self, principal: Principal, name: str) -> dict:
        with self.lock:
            return self.workspace.row(principal, name)

    def lock_adom(self, principal: Principal, name: str) -> None:
        with self.lock:
            self.workspace.lock(principal, name)

    def unlock_adom(self, principal: Principal, name: str) -> None:
        with self.lock:
            self.workspace.unlock(principal, name)

    def commit_adom(self, principal: Principal, name: str) -> None:
        with self.lock:
            self.workspace.commit(principal, name)

    def lock_info(self, principal: Principal, name: str) -> list[dict] | None:
        with self.lock:
            return self.workspace.lock_info(principal, name)

    def dirty(self, principal: Principal, name: str) -> dict:
        with self.lock:
            return self.workspace.dirty(principal, name)

    def lock_as(self, user: str, adom: str, via: str = "jsonrpc") -> None:
        """Another admin's session locks the ADOM (scenario operation ``lock-adom``); ``via = "gui"``: a
        GUI session, which idles out after ``idle_timeout_gui`` and takes the lock with it."""
        with self.lock:
            admin = self.people.get(user)
            sid = self.logins.open(admin, via)
            self.workspace.lock(Principal(admin, self.logins.number(sid), sid), adom)

    def release_adom(self, name: str) -> None:
        """An administrator force-unlocks the ADOM (scenario operation ``unlock-adom``)."""
        with self.lock:
            self.workspace.existing(name).release()

    # -- objects -----------------------------------------------------------------------------------
    def objects(self, principal: Principal, adom: str, path: str) -> list[dict]:
        with self.lock:
            return self.store.rows(principal, adom, path)

    def object(self, principal: Principal, adom: str, path: str, name: str) -> dict:
        with self.lock:
            return self.store.row(principal, adom, path, name)

    def add_object(self, principal: Principal, adom: str, path: str, data) -> str:
        with self.lock:
            return self.store.add(principal, adom, path, data)

    def set_object(self, principal: Principal, adom: str, path: str, data, name: str | None = None) -> str:
        with self.lock:
            return self.store.set(principal, adom, path, data, name)

    def update_object(self, principal: Principal, adom: str, path: str, data, name: str | None = None) -> str:
        with self.lock:
            return self.store.update(principal, adom, path, data, name)

    def delete_object(self, principal: Principal, adom: str, path: str, name: str) -> None:
        with self.lock:
            self.store.delete(principal, adom, path, name)

    def clone_object(self, principal: Principal, adom: str, path: str, name: str, data) -> str:
        with self.lock:
            return self.store.clone(principal, adom, path, name, data)

    def change_members(self, principal: Principal, adom: str, name: str, how: str, data=None) -> None:
        with self.lock:
            self.store.change_members(principal, adom, name, how, data)

    def seed_object(self, adom: str, path: str, data: dict) -> None:
        with self.lock:
            self.store.seed(adom, path, data)

    # -- managed devices, packages, installs, tasks, proxy -------------------------------------------
    def device_rows(self, principal: Principal, adom: str | None = None) -> list[dict]:
        with self.lock:
            return self.fleet.rows(principal, adom)

    def device_row(self, principal: Principal, name: str, adom: str | None = None) -> dict:
        with self.lock:
            return self.fleet.row(principal, name, adom)

    def set_device(self, name: str, conn_status: str | None = None, proxy_status: int | None = None) -> None:
        with self.lock:
            self.fleet.set(name, conn_status, proxy_status)

    def proxy(self, principal: Principal, data) -> list[dict]:
        with self.lock:
            return self.fleet.proxy(principal, data)

    def packages(self, principal: Principal, adom: str) -> list[dict]:
        with self.lock:
            return self.installs.packages(principal, adom)

    def install(self, principal: Principal, what: str, data) -> int:
        with self.lock:
            return self.installs.install(principal, what, data)

    def task(self, principal: Principal, task_id: int) -> dict:
        with self.lock:
            return self.installs.poll(principal, task_id)

    def task_rows(self, principal: Principal) -> list[dict]:
        with self.lock:
            return self.installs.rows(principal)

    def delete_task(self, principal: Principal, task_id: int) -> None:
        with self.lock:
            self.installs.delete(principal, task_id)
