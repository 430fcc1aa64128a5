"""Phased scenarios: a device whose fault changes while the agent runs.

A scenario's top level is its first phase, ``start``. Each ``[[phases]]`` entry is a later phase: what
changes on entry (``setup`` operations of the kind, ``set-connection`` and ``set-tls`` included; a
``client`` change, such as the agent now holding a stale key; ``reissue_certificate``, a new leaf
from the same CA), what a correct agent reports in it (``expect``, ``expect_insecure``) and what
starts it, counted from the start of the phase before:

- ``after_requests = N``: the request after the N-th is answered in the new phase;
- ``after_connections = N``: the connection after the N-th is treated in the new phase;
- ``after_seconds = S``: S seconds on the device's clock (:mod:`mockfgt.clock`), real or advanced;
- none of these: only when told (``device.advance()``, the control API, ``mockfgt ctl advance``).

``device.advance()`` also moves on from a phase that has a trigger. Every phase change is journaled
(``{"event": "phase", "phase": NAME, "index": I, "cause": ...}``); ``device.phase`` is the current
one and ``device.expect`` its expectation.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from . import schema as s
from .codes import CODES

if TYPE_CHECKING:
    from .device import Device

#: The implicit first phase: the scenario's top level.
START = "start"
TRIGGERS = ("after_requests", "after_connections", "after_seconds")
#: Longest phase duration: 400 days (a certificate's lifetime fits; a lockout escalation does too).
MAX_PHASE_SECONDS = 400 * 86400.0


def _check_phase(phase: dict, key: str) -> None:
    given = [t for t in TRIGGERS if phase[t] is not None]
    if len(given) > 1:
        raise s.SchemaError(f"{key}.{given[1]}" if key else given[1],
                            f"a phase starts on one trigger; this one also has {given[0]} (allowed: one of "
                            f"{', '.join(TRIGGERS)}, or none to start only when told)")
    if phase["name"] == START:
        raise s.SchemaError(f"{key}.name" if key else "name",
                            f"'{START}' is the scenario's top level, the first phase; name this one otherwise")


def phase_spec(operations: s.Spec, client_change: s.Table) -> s.Table:
    """The schema of one ``[[phases]]`` entry."""
    return s.Table(
        fields={
            "name": s.Parsed(doc="the phase's name, unique in the scenario", max_length=64, parse=_name,
                             what="a phase name"),
            "summary": s.Str("", doc="what the device does in this phase"),
            "after_requests": s.Int(None, min=1, doc="start after this many requests in the phase before"),
            "after_connections": s.Int(None, min=1, doc="start after this many connections in the phase before"),
            "after_seconds": s.Float(None, max=MAX_PHASE_SECONDS,
                                     doc="start this long after the phase before did, on the device's clock"),
            "expect": s.Code(choices=CODES, doc="what a verifying client reports in this phase"),
            "expect_insecure": s.Code(None, choices=CODES),
            "setup": s.List(list, item=operations),
            "client": client_change,
            "reissue_certificate": s.Bool(False, doc="present a new leaf certificate from the same CA"),
        },
        required=("name", "expect"),
        validate=_check_phase,
    )


def _name(text: str) -> None:
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError("use letters, digits, '-', '_' or '.'")


def check_phases(phases: list[dict]) -> None:
    """Names unique; expect_insecure filled in."""
    seen: set[str] = set()
    for i, phase in enumerate(phases):
        if phase["name"] in seen:
            raise s.SchemaError(f"phases[{i}].name", f"'{phase['name']}' names an earlier phase too; names are unique")
        seen.add(phase["name"])
        if phase["expect_insecure"] is None:
            phase["expect_insecure"] = phase["expect"]


def trigger_text(phase: dict) -> str:
    if phase["after_requests"] is not None:
        return f"after {phase['after_requests']} request(s)"
    if phase["after_connections"] is not None:
        return f"after {phase['after_connections']} connection(s)"
    if phase["after_seconds"] is not None:
        return f"after {phase['after_seconds']:g} s on the device clock"
    return "when told (advance)"


def listing(scenario) -> list[dict]:
    """Every phase of a scenario, the top level first: name, summary, trigger, expect, expect_insecure."""
    first = {"name": START, "summary": scenario.summary, "trigger": "at start", "expect": scenario.expect,
             "expect_insecure": scenario.expect_insecure}
    return [first] + [{"name": p["name"], "summary": p["summary"], "trigger": trigger_text(p),
                       "expect": p["expect"], "expect_insecure": p["expect_insecure"]} for p in scenario.phases]


class PhaseRunner:
    """One device's walk through its scenario's phases; every change runs under the device's lock."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self._phases: list[dict] = list(device.scenario.phases)
        self._listing = listing(device.scenario)
        self.index = 0
        self._requests = self._connections = 0
        self._entered = device.clock.monotonic()
        self._timer: threading.Timer | None = None
        self._closed = False
        if self._phases:
            device.clock.subscribe(self._tick)

    @property
    def current(self) -> dict:
        return {"index": self.index, **self._listing[self.index]}

    @property
    def listing(self) -> list[dict]:
        return self._listing

    # -- what counts ------------------------------------------------------------------------------
    def on_request(self) -> None:
        if self._phases:
            with self._device._lock:
                moved = self._settle("request")
                self._requests += 1
            self._tell(moved)

    def on_connection(self) -> None:
        if self._phases:
            with self._device._lock:
                moved = self._settle("connection")
                self._connections += 1
            self._tell(moved)

    def _tick(self) -> None:
        with self._device._lock:
            if self._closed:
                return
            moved = self._settle()
            self.arm()
        self._tell(moved)

    def _tell(self, moved: bool) -> None:
        """After a change, outside the device's lock: the device's listeners (the harness's manifest)."""
        if moved:
            self._device._phase_changed()

    def advance(self) -> dict:
        """Enter the next phase now, whatever its trigger; ValueError in the last phase."""
        with self._device._lock:
            if self.index >= len(self._phases):
                names = ", ".join(p["name"] for p in self._listing)
                raise ValueError(f"{self._device.name} is in its last phase, "
                                 f"'{self._listing[self.index]['name']}' (phases: {names})")
            self._enter("told")
            self._settle()
            current = self.current
        self._tell(True)
        return current

    # -- moving on --------------------------------------------------------------------------------
    def _due(self, event: str | None) -> str | None:
        """Why the next phase starts now, if it does. A count is looked at only as its own kind of event
        arrives: the request after the N-th moves the device on, not the connection that carries it."""
        if self.index >= len(self._phases):
            return None
        nxt = self._phases[self.index]
        if event == "request" and nxt["after_requests"] is not None and self._requests >= nxt["after_requests"]:
            return "requests"
        if (event == "connection" and nxt["after_connections"] is not None
                and self._connections >= nxt["after_connections"]):
            return "connections"
        if nxt["after_seconds"] is not None and self._device.clock.monotonic() - self._entered >= nxt["after_seconds"]:
            return "clock"
        return None

    def _settle(self, event: str | None = None) -> bool:
        """Enter every phase that is due as ``event`` ("request", "connection", None) arrives; whether any was."""
        moved = False
        while (cause := self._due(event)) is not None:
            self._enter(cause)
            moved = True
        return moved

    def _enter(self, cause: str) -> None:
        device, phase = self._device, self._phases[self.index]
        self.index += 1
        self._requests = self._connections = 0
        self._entered = device.clock.monotonic()
        device._enter_phase(phase)
        device.journal.record({"event": "phase", "phase": phase["name"], "index": self.index, "cause": cause,
                               "expect": phase["expect"], "expect_insecure": phase["expect_insecure"]})
        self.arm()

    # -- the real-time trigger ------------------------------------------------------------------
    def arm(self) -> None:
        """Wake when the next phase's duration runs out in real time (an advanced clock wakes it sooner)."""
        with self._device._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._closed or not self._device._started or self.index >= len(self._phases):
                return  # a stopped device's start() arms it again
            seconds = self._phases[self.index]["after_seconds"]
            if seconds is None:
                return
            left = max(0.0, seconds - (self._device.clock.monotonic() - self._entered))
            self._timer = threading.Timer(left + 0.01, self._tick)
            self._timer.daemon = True
            self._timer.start()

    def suspend(self) -> None:
        """No real-time wake-ups (the device stopped); :meth:`arm` resumes them."""
        with self._device._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def close(self) -> None:
        """Done with (the device swapped scenarios): no more wake-ups, off the clock."""
        self.suspend()
        self._closed = True
        self._device.clock.unsubscribe(self._tick)
