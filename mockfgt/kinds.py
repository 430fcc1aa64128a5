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
    from .agent import Agent
    from .flows import Answer, Call, Conversation, Memory
    from .schema import Table

#: The entry point group third-party kinds register under.
ENTRY_POINT_GROUP = "mockfgt.kinds"
#: The built-in kinds: name -> the module whose ``KIND`` is the kind object.
BUILTIN = {"fortigate": "mockfgt.fortios.kind", "fortimanager": "mockfgt.fortimanager.kind"}
#: The kind of a scenario whose ``[device]`` names none.
DEFAULT_KIND = "fortigate"

#: An operation: the schema of its table, and what it does to a state.
Operation = tuple["Table", Callable[[Any, dict], None]]


#: How diagnose lets a kind ask one more call: (call, agent or None for the probe's) -> the judged answer,
#: or None when no answer came (the failure is then already recorded).
Ask = Callable[["Call", "Agent | None"], "Answer | None"]


class KindError(RuntimeError):
    """A kind that cannot be loaded, or a name that is no kind."""


class KindClient(ABC):
    """The client half of a kind: what a correct agent sends and how it judges the answers.

    Client side only: a kind's client half works against a real device, so it never reads the
    emulation's state. The reference flows (:mod:`mockfgt.flows`), ``mockfgt serve``'s banner and
    ``mockfgt diagnose`` ask it.
    """

    #: The name people read: 'FortiGate'.
    display_name: ClassVar[str]
    #: The API a status answer must come from, for diagnose: 'FortiOS REST'.
    api_name: ClassVar[str]
    #: Where the API answers (REST: the status URL; JSON-RPC: its endpoint).
    status_path: ClassVar[str]
    #: Whether a kept session travels as ``Authorization: Bearer`` (else the kind's requests carry it).
    session_in_header: ClassVar[bool] = False
    #: The kind's own ``[client]`` fields (schema specs), besides the ones every agent has.
    client_fields: ClassVar[dict[str, Any]] = {}

    def check_client(self, client: dict, key: str) -> None:  # noqa: B027
        """Refuse a checked ``[client]`` table this kind's agents cannot be (SchemaError)."""

    # -- the agent's calls -----------------------------------------------------------------------
    @abstractmethod
    def calls(self, agent: Agent) -> list[Call]:
        """The agent's calls in order: roles login, banner, status, mode, read, lock, write, cleanup, commit,
        unlock, trusthosts-read, trusthosts, logout (conditional ones too: see ``Conversation.wants``).
        The first ``status`` call proves the credential; ``read`` calls read the objects the agent manages."""

    @abstractmethod
    def request(self, memory: Memory, call: Call, agent: Agent) -> tuple[str, str, dict, bytes | None]:
        """(method, path with query, headers, body) of one call, given what the agent learnt so far."""

    # -- judging answers ---------------------------------------------------------------------------
    @abstractmethod
    def judge(self, call: Call, status: int, body: bytes) -> str:
        """The code a correct client reports for this answer to this call (``ok`` or 202000..202004)."""

    def surface(self, call: Call | None, status: int, body: bytes) -> str:
        """What the client saw, in a few characters: 'HTTP 401', 'code -11', 'LOGIN_FAILED'."""
        return f"HTTP {status}"

    def learn(self, memory: Memory, call: Call, answer: Answer, cookies: Callable[[], Any]) -> None:  # noqa: B027
        """Remember what an accepted answer taught (a session, a CSRF token, the workspace mode...)."""

    def credential_died(self, talk: Conversation, call: Call, answer: Answer, agent: Agent) -> bool:
        """Whether a refusal after the credential was accepted means the credential has since died."""
        return False

    # -- the banner of `mockfgt serve` ---------------------------------------------------------------
    def banner_lines(self, url: str) -> list[str]:
        """Lines the ready banner adds under the device's URL."""
        return []

    # -- what diagnose checks and advises ------------------------------------------------------------
    def read_calls(self, agent: Agent) -> list[Call]:
        """The reads diagnose's authorization step makes (default: the agent's own reads)."""
        return [c for c in self.calls(agent) if c.role == "read"]

    def data_of(self, body: bytes) -> object:
        """The data of a read's answer (a list of objects when it is one), for counting."""
        return None

    def speaks_the_api(self, body: bytes) -> bool:
        """Whether a status answer comes from this kind's API at all (not another service on the port)."""
        return True

    def status_details(self, body: bytes) -> dict[str, str]:
        """What the status answer says about the device: hostname, model, version, serial."""
        return {}

    def after_status(self, agent: Agent, ask: Ask) -> dict[str, str]:
        """More details diagnose learns once the credential is accepted (its own calls through ``ask``)."""
        return {}

    def scope(self, agent: Agent) -> str:
        """Where the agent works, in words: 'VDOM root', 'ADOM customer'."""
        return "the device"

    def login_detail(self, memory: Memory, agent: Agent) -> str:
        """How the agent's login went, for the report."""
        return f"{agent.user}: logged in"

    def refusal_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        """What to do when the device refuses the agent's credential (202001)."""
        return "The device refuses the agent's credential: compare it with the device's."

    def permission_advice(self, agent: Agent, memory: Memory, call: Call, seen: str) -> str:
        """What to do when the device refuses a call the credential is not allowed (202002)."""
        return "The agent's user lacks the permission for this call: grant it on the device."

    def read_refusal_advice(self, agent: Agent, memory: Memory, call: Call, seen: str, ask: Ask) -> str:
        """What to do when a read is refused; ``ask`` may retry it differently to find out why."""
        return self.permission_advice(agent, memory, call, seen)


class DeviceKind(KindClient):
    """One kind of device: the server half here, the client half inherited from :class:`KindClient`."""

    #: The name scenarios use (``[device] kind = ...``).
    name: ClassVar[str]
    #: The client actions its wire layer reports (:func:`mockfgt.phases.notice`), which a phase may
    #: wait for (``on``); None: all of :data:`mockfgt.phases.ACTIONS`.
    actions: ClassVar[tuple[str, ...] | None] = None

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
