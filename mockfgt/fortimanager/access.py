"""Who is asking and what they may do: the :class:`Principal` of a request and the permission checks.

A principal is an admin plus the owner id that holds workspace locks: the session's number after
``exec /sys/login/user``, or a fixed number per API key, since "the same user account will always
share the same session". Every refusal here is -11 "No permission for the resource".
"""

from __future__ import annotations

from dataclasses import dataclass

from .admins import Admin
from .errors import NO_PERMISSION, FMGError


@dataclass(frozen=True)
class Principal:
    admin: Admin
    owner: int
    session: str | None = None  # the session id when the request came with one (not with a key)

    @property
    def name(self) -> str:
        return self.admin.name


def require(profiles: dict[str, dict], principal: Principal, group: str, write: bool) -> None:
    """rpc-permit first, then the profile's permission group: both refusals are -11."""
    admin = principal.admin
    if admin.rpc_permit == "none" or (write and admin.rpc_permit != "read-write"):
        raise FMGError(NO_PERMISSION)
    level = profiles.get(admin.profile, {}).get(group, "none")
    if level == "none" or (write and level != "read-write"):
        raise FMGError(NO_PERMISSION)


def require_api_access(principal: Principal) -> None:
    """Any call at all needs rpc-permit read or read-write."""
    if principal.admin.rpc_permit == "none":
        raise FMGError(NO_PERMISSION)
