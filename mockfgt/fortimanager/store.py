"""Firewall objects in an ADOM: add, set, update, delete, clone and group members, with reference checks.

Row shapes come from :mod:`mockfgt.fortimanager.objects`; which copy of an ADOM a caller reads or
writes (committed, or its own working copy in workspace mode) from
:class:`~mockfgt.fortimanager.workspace.Workspace`. No method takes a lock: the device state calls
them under its own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from . import objects
from .access import Principal
from .errors import ALREADY_EXISTS, IN_USE, INVALID_DATA, NOT_FOUND, FMGError
from .objects import ADDRGRP, MEMBER_TABLES, ObjectDataError
from .workspace import Workspace

Tables = dict[str, dict[str, dict]]


class ObjectStore:
    """``/pm/config/adom/<adom>/obj/firewall/...`` (and ``/pm/config/global/obj/...``)."""

    def __init__(self, workspace: Workspace, oids: Iterator[int]) -> None:
        self.workspace, self.oids = workspace, oids

    def rows(self, principal: Principal, adom: str, path: str) -> list[dict]:
        tables = self.workspace.readable(principal, adom)
        return [copy.deepcopy(row) for row in tables[path].values()]

    def row(self, principal: Principal, adom: str, path: str, name: str) -> dict:
        row = self.workspace.readable(principal, adom)[path].get(name)
        if row is None:
            raise FMGError(NOT_FOUND)
        return copy.deepcopy(row)

    def add(self, principal: Principal, adom: str, path: str, data) -> str:
        """``add``: -2 if the name exists."""
        tables = self.workspace.writable(principal, adom)
        row = self._build(path, data)
        if row["name"] in tables[path]:
            raise FMGError(ALREADY_EXISTS)
        _check_members(tables, path, row)
        tables[path][row["name"]] = row
        return row["name"]

    def set(self, principal: Principal, adom: str, path: str, data, name: str | None = None) -> str:
        """``set``: add or overwrite (defaults plus ``data``); on an object URL a new ``name`` renames it."""
        tables = self.workspace.writable(principal, adom)
        if not isinstance(data, dict):
            raise FMGError(INVALID_DATA)
        target = name if name is not None else data.get("name")
        old = tables[path].get(target) if isinstance(target, str) else None
        row = self._build(path, {"name": target, **data}, oid=old["oid"] if old else None)
        if old is not None and "uuid" not in data:
            row["uuid"] = old["uuid"]
        return _store(tables, path, target if old is not None else None, row)

    def update(self, principal: Principal, adom: str, path: str, data, name: str | None = None) -> str:
        """``update``: change the attributes given; -3 if the object does not exist."""
        tables = self.workspace.writable(principal, adom)
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
        return _store(tables, path, name, row)

    def delete(self, principal: Principal, adom: str, path: str, name: str) -> None:
        tables = self.workspace.writable(principal, adom)
        if name not in tables[path]:
            raise FMGError(NOT_FOUND)
        if _referenced(tables, path, name):
            raise FMGError(IN_USE)
        del tables[path][name]

    def clone(self, principal: Principal, adom: str, path: str, name: str, data) -> str:
        original = self.row(principal, adom, path, name)
        original.pop("uuid")
        return self.add(principal, adom, path, {**original, **(data if isinstance(data, dict) else {})})

    def change_members(self, principal: Principal, adom: str, name: str, how: str, data=None) -> None:
        """The ``.../addrgrp/<name>/member`` sub-URL: ``add`` / ``delete`` / ``set`` names, ``unset`` all."""
        tables = self.workspace.writable(principal, adom)
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
        _check_members(tables, ADDRGRP, row)
        tables[ADDRGRP][name] = row

    def seed(self, adom: str, path: str, data: dict) -> None:
        """An object present before the scenario starts (``[device.objects]``), committed."""
        tables = self.workspace.adoms[adom].committed
        row = self._build(path, data)
        if row["name"] in tables[path]:
            raise FMGError(ALREADY_EXISTS, f"{path} {row['name']} is listed twice")
        _check_members(tables, path, row)
        tables[path][row["name"]] = row

    def _build(self, path: str, data, oid: int | None = None) -> dict:
        try:
            return objects.build(path, data, oid if oid is not None else next(self.oids))
        except ObjectDataError as exc:
            raise FMGError(INVALID_DATA) from exc


def _store(tables: Tables, path: str, old_name: str | None, row: dict) -> str:
    new_name = row["name"]
    if old_name is not None and new_name != old_name:
        if new_name in tables[path]:
            raise FMGError(ALREADY_EXISTS)
        _rename_references(tables, path, old_name, new_name)
        del tables[path][old_name]
    _check_members(tables, path, row)
    tables[path][new_name] = row
    return new_name


def _check_members(tables: Tables, path: str, row: dict) -> None:
    """A member must exist in the same view of the ADOM (-10 otherwise)."""
    for member in row.get("member", []) if path in MEMBER_TABLES else []:
        if not any(member in tables[t] for t in MEMBER_TABLES[path]):
            raise FMGError(INVALID_DATA)


def _referenced(tables: Tables, path: str, name: str) -> bool:
    return any(name in g["member"] for group_path, members in MEMBER_TABLES.items() if path in members
               for g in tables[group_path].values())


def _rename_references(tables: Tables, path: str, old: str, new: str) -> None:
    for group_path, members in MEMBER_TABLES.items():
        if path in members:
            for group in tables[group_path].values():
                group["member"] = [new if m == old else m for m in group["member"]]
