"""FortiManager's JSON-RPC status codes (reference B.3) and the refusal every state module raises.

A refusal is answered in ``result[i].status`` with HTTP 200 all the same; the wire layer turns a
:class:`FMGError` into that status and nothing else.
"""

from __future__ import annotations

from .devices import UNREACHABLE

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
