"""ADOMs and their workspace: committed objects, the lock, the lock holder's working copy.

In workspace mode (``workspace-mode`` normal or workflow) only the session holding an ADOM's lock
writes, into a working copy only it sees; ``commit`` publishes the copy, ``unlock`` without commit
discards it, and a session that ends loses its locks and its uncommitted work. The ``global`` ADOM
sits next to the ordinary ones (``/dvmdb/global/...``, ``/pm/config/global/...``); every admin may
reach it, the profile's ``policy-objects`` group deciding what they may do there. No method takes a
lock: the device state calls them under its own.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from ..clock import REAL, Clock
from .access import Principal, require, require_api_access
from .errors import (
    INVALID_URL,
    NO_PERMISSION,
    NO_WRITE_PERMISSION,
    NOT_FOUND,
    NOT_IN_WORKSPACE_MODE,
    WORKSPACE_LOCKED,
    FMGError,
)
from .objects import OBJECT_TABLES

#: The ADOM of global objects, present next to ``root`` on a factory-fresh device (reference H.16).
GLOBAL = "global"
WORKSPACE_MODES = ("disabled", "normal", "workflow")


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

    @property
    def url(self) -> str:
        return "/dvmdb/global" if self.name == GLOBAL else f"/dvmdb/adom/{self.name}"

    def tables_for(self, owner: int | None) -> dict[str, dict[str, dict]]:
        """What a caller sees: its own uncommitted work if it holds the lock, the committed objects otherwise."""
        if self.lock is not None and self.lock.owner == owner and self.working is not None:
            return self.working
        return self.committed

    def release(self) -> None:
        self.lock, self.working, self.dirty = None, None, False


class Workspace:
    """The ADOMs of a device and what workspace mode does to them."""

    def __init__(self, names: list[str], settings: dict, profiles: dict[str, dict], oids: Iterator[int],
                 version: tuple[int, int, int]) -> None:
        self.settings, self.profiles = settings, profiles
        self.clock: Clock = REAL  # lock time stamps; the device sets its own (mockfgt.clock)
        self.adoms: dict[str, Adom] = {name: Adom(name, next(oids), f"{version[0]}.0", version[1]) for name in names}

    def enabled(self) -> bool:
        return self.settings["workspace_mode"] != "disabled"

    def adom(self, principal: Principal, name: str, missing: int = NOT_FOUND) -> Adom:
        """An ADOM the admin may use: -11 outside its ADOM list (existing or not), then ``missing``."""
        if name != GLOBAL and not principal.admin.may_use(name):
            raise FMGError(NO_PERMISSION)
        adom = self.adoms.get(name)
        if adom is None:
            raise FMGError(missing)
        return adom

    def existing(self, name: str) -> Adom:
        if name not in self.adoms:
            raise FMGError(NOT_FOUND, f"no ADOM {name}")
        return self.adoms[name]

    # -- what a caller reads and writes ----------------------------------------------------------
    def readable(self, principal: Principal, name: str) -> dict[str, dict[str, dict]]:
        require(self.profiles, principal, "policy-objects", write=False)
        return self.adom(principal, name, INVALID_URL).tables_for(principal.owner)

    def writable(self, principal: Principal, name: str) -> dict[str, dict[str, dict]]:
        """In workspace mode only the lock holder writes (-10147 for everyone else), into its working copy."""
        require(self.profiles, principal, "policy-objects", write=True)
        adom = self.adom(principal, name, INVALID_URL)
        if not self.enabled():
            return adom.committed
        if adom.lock is None or adom.lock.owner != principal.owner:
            raise FMGError(NO_WRITE_PERMISSION)
        assert adom.working is not None, "a locked ADOM has its working copy"
        adom.dirty = True
        return adom.working

    # -- lock, unlock, commit ----------------------------------------------------------------------
    def _workspace_adom(self, principal: Principal, name: str, write: bool) -> Adom:
        require(self.profiles, principal, "policy-objects", write=write)
        adom = self.adom(principal, name, INVALID_URL)
        if not self.enabled():
            raise FMGError(NOT_IN_WORKSPACE_MODE)
        return adom

    def lock(self, principal: Principal, name: str) -> None:
        """``exec .../workspace/lock``: refused while another session holds it; again by the holder is fine."""
        adom = self._workspace_adom(principal, name, write=True)
        if adom.lock is not None and adom.lock.owner != principal.owner:
            raise FMGError(WORKSPACE_LOCKED)
        if adom.lock is None:
            adom.lock = AdomLock(principal.owner, principal.name, int(self.clock.time()))
            adom.working, adom.dirty = copy.deepcopy(adom.committed), False

    def unlock(self, principal: Principal, name: str) -> None:
        """``exec .../workspace/unlock``: uncommitted changes are discarded."""
        adom = self._workspace_adom(principal, name, write=True)
        if adom.lock is not None and adom.lock.owner != principal.owner:
            raise FMGError(WORKSPACE_LOCKED)
        adom.release()

    def commit(self, principal: Principal, name: str) -> None:
        adom = self._workspace_adom(principal, name, write=True)
        if adom.lock is None or adom.lock.owner != principal.owner:
            raise FMGError(NO_WRITE_PERMISSION)
        assert adom.working is not None, "a locked ADOM has its working copy"
        adom.committed, adom.dirty = copy.deepcopy(adom.working), False

    def lock_info(self, principal: Principal, name: str) -> list[dict] | None:
        """``get .../workspace/lockinfo``: the lock entries, or nothing at all while unlocked."""
        adom = self._workspace_adom(principal, name, write=False)
        if adom.lock is None:
            return None
        return [{"adom_dirty": int(adom.dirty), "db_mode": 0, "dev_oid": 0, "dirty": int(adom.dirty),
                 "flags": 0, "lock_sid": adom.lock.owner, "lock_time": adom.lock.since,
                 "lock_user": adom.lock.user, "obj_cat": 0, "obj_oid": adom.oid,
                 "obj_url": adom.url, "type": "adom", "wfsid": 0}]

    def dirty(self, principal: Principal, name: str) -> dict:
        """``get .../workspace/dirty``: only the caller's own uncommitted work counts."""
        adom = self._workspace_adom(principal, name, write=False)
        mine = adom.lock is not None and adom.lock.owner == principal.owner
        return {"dirty": int(mine and adom.dirty)}

    def release_owner(self, owner: int) -> None:
        """A session ended: the locks it held go, with the work it never committed."""
        for adom in self.adoms.values():
            if adom.lock is not None and adom.lock.owner == owner:
                adom.release()

    def set_mode(self, mode: str) -> None:
        self.settings["workspace_mode"] = mode
        if mode == "disabled":  # leaving workspace mode drops every lock, as the GUI warns
            for adom in self.adoms.values():
                adom.release()

    # -- views -------------------------------------------------------------------------------------
    def rows(self, principal: Principal) -> list[dict]:
        """``/dvmdb/adom``: the ADOMs the admin may use (``global`` is reached by its own URLs)."""
        require_api_access(principal)
        return [self._row(a) for a in self.adoms.values() if a.name != GLOBAL and principal.admin.may_use(a.name)]

    def row(self, principal: Principal, name: str) -> dict:
        require_api_access(principal)
        return self._row(self.adom(principal, name))

    def _row(self, adom: Adom) -> dict:
        return {"name": adom.name, "oid": adom.oid, "desc": "", "flags": 0, "mode": "gms", "os_ver": adom.os_ver,
                "mr": adom.mr, "restricted_prds": "fos", "state": "enable", "uuid": adom.uuid,
                "workspace_mode": self.settings["workspace_mode"], "tab_status": "", "log_db_retention_hours": 1440}
