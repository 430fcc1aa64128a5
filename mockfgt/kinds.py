"""Device kinds: what a kind of device is, and where mockfgt finds the kinds it knows.

A kind is one object, a :class:`DeviceKind`, that owns everything kind-specific on both sides of the
wire. Its server half is what the scenario engine and :class:`mockfgt.Device` ask: the schema of a
scenario's ``[device]`` table (``DEVICE``), the operations a setup or remedy may run
(``OPERATIONS``: name -> (schema, function)), the state a scenario builds, the shared WSGI app, and the
credentials an agent holds. Its client half (see :class:`KindClient`) is what the reference agent and
``mockfgt diagnose`` ask: the calls a correct agent makes, how each answer is judged, and what to advise
when one fails. Nothing outside a kind's package asks "which kind is this?".

A kind whose devices have password logins also is a :class:`PasswordLogins`.

Kinds are found by :func:`registry`: the built-in ones, then every entry point of the group
``mockfgt.kinds`` (an object or a class that is a DeviceKind; its ``name`` must be the entry point's
name). A kind that fails to load is an error, never a kind that quietly vanishes from the catalogue.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .schema import Table

#: The entry point group third-party kinds register under.
ENTRY_POINT_GROUP = "mockfgt.kinds"
#: The built-in kinds: name -> the module whose ``KIND`` is the kind object.
BUILTIN = {"fortigate": "mockfgt.fortios.kind", "fortimanager": "mockfgt.fortimanager.kind"}
#: The kind of a scenario whose ``[device]`` names none.
DEFAULT_KIND = "fortigate"

#: An operation: the schema of its table, and what it does to a state.
Operation = tuple["Table", Callable[[Any, dict], None]]


class KindError(RuntimeError):
    """A kind that cannot be loaded, or a name that is no kind."""


class DeviceKind(ABC):
    """One kind of device: server half here, client half in :class:`KindClient` (a base of every kind)."""

    #: The name scenarios use (``[device] kind = ...``).
    name: ClassVar[str]
    #: The name people read: 'FortiGate'.
    display_name: ClassVar[str]

    # -- server half ---------------------------------------------------------------------------------
    @property
    @abstractmethod
    def DEVICE(self) -> Table:  # the name scenario files and docs use
        """The schema of a scenario's ``[device]`` table for this kind."""

    @property
    @abstractmethod
    def OPERATIONS(self) -> dict[str, Operation]:
        """Setup and remedy operations: name -> (schema of the operation's table, fn(state, op))."""

    @abstractmethod
    def build_state(self, device: dict) -> Any:
        """A fresh state for a checked ``[device]`` table (thread-safe, knows nothing of HTTP)."""

    def apply(self, state: Any, op: dict) -> None:
        """Run one operation on ``state``; ValueError (or SchemaError) says why it cannot."""
        entry = self.OPERATIONS.get(op["op"])
        if entry is None:
            raise ValueError(f"unknown operation {op['op']!r}")
        entry[1](state, op)

    @abstractmethod
    def create_app(self, get_state: Callable[[], Any]) -> Callable:
        """The WSGI app every device of this kind shares; ``get_state()`` is the answering device's state."""

    @abstractmethod
    def users(self, state: Any) -> list[str]:
        """Every user an agent may be configured as (deleted ones included), first the default."""

    @abstractmethod
    def live_tokens(self, state: Any) -> dict[str, str]:
        """The API users that exist now, and their keys."""

    @abstractmethod
    def token_for(self, state: Any, user: str, which: str) -> str | None:
        """The credential an agent holds: ``which`` is current, stale, unknown or none."""

    def __repr__(self) -> str:
        return f"<device kind {self.name}>"


class PasswordLogins(ABC):
    """The second contract, for kinds whose devices let admins log in with a password."""

    @abstractmethod
    def admins(self, state: Any) -> list[str]:
        """Admins who log in with a password, in scenario order."""

    @abstractmethod
    def password_for(self, state: Any, admin: str) -> str | None:
        """The admin's current password (what a correctly configured agent sends)."""

    @abstractmethod
    def expired_session_for(self, state: Any, admin: str) -> str | None:
        """A session an agent kept from an earlier login that the device has since ended (None: no such idea)."""


def _checked(kind: object, where: str, name: str) -> DeviceKind:
    if isinstance(kind, type) and issubclass(kind, DeviceKind):
        try:
            kind = kind()
        except TypeError as exc:  # an abstract member left out
            raise KindError(f"device kind {name!r} ({where}) is incomplete: {exc}") from None
    if not isinstance(kind, DeviceKind):
        raise KindError(f"device kind {name!r} ({where}) is a {type(kind).__name__}, not a mockfgt.kinds.DeviceKind")
    if kind.name != name:
        raise KindError(f"device kind {name!r} ({where}) calls itself {kind.name!r}")
    return kind


@cache
def registry() -> dict[str, DeviceKind]:
    """Every kind by name: the built-in ones, then those of the ``mockfgt.kinds`` entry points.

    Looked up once per process. A kind that fails to import, is not a DeviceKind, or takes a name
    already taken raises :class:`KindError`.
    """
    from importlib.metadata import entry_points

    found: dict[str, DeviceKind] = {}
    for name, module in BUILTIN.items():
        found[name] = _checked(importlib.import_module(module).KIND, module, name)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.value}"
        if point.name in found:
            raise KindError(f"device kind {point.name!r} ({where}) is already a kind")
        try:
            loaded = point.load()
        except Exception as exc:
            raise KindError(f"device kind {point.name!r} ({where}) cannot be loaded: "
                            f"{type(exc).__name__}: {exc}") from exc
        found[point.name] = _checked(loaded, where, point.name)
    return found


def get(name: str) -> DeviceKind:
    """The kind called ``name``; KindError names the kinds there are."""
    known = registry()
    if name not in known:
        raise KindError(f"'{name}' is not a device kind; known: {', '.join(known)}")
    return known[name]


def names() -> list[str]:
    return list(registry())
