"""Phased scenarios: a device whose fault changes while the agent runs.

A scenario's top level is its first phase, ``start``. Each ``[[phases]]`` entry is a later phase: what
changes on entry (``setup`` operations of the kind, ``set-connection`` and ``set-tls`` included; a
``client`` change, such as the agent now holding a stale key; ``reissue_certificate``, a new leaf
from the same CA; ``use``, another catalogue scenario's fault, taken over when the scenario loads),
what a correct agent reports in it (``expect``, ``expect_insecure``, and ``expect_pinned`` for an
agent that pinned the first certificate) and what starts it, counted from the start of the phase
before:

- ``after_requests = N``: the request after the N-th is answered in the new phase;
- ``after_connections = N``: the connection after the N-th is treated in the new phase;
- ``after_seconds = S``: S seconds on the device's clock (:mod:`mockfgt.clock`), real or advanced;
- ``at = "HH:MM"`` (UTC) or an ISO date-time: when the device clock's wall time next reaches it;
- ``on = ACTION`` (``login``, ``logout``, ``lock``, ``write``), ``on_count = N``: right after the N-th
  such action of a client succeeded (the kinds' wire layers call :func:`notice`);
- none of these: only when told (``device.advance()``, the control API, ``mockfgt ctl advance``).

``device.advance()`` also moves on from a phase that has a trigger. Every phase change is journaled
(``{"event": "phase", "phase": NAME, "index": I, "cause": ...}``); ``device.phase`` is the current
one and ``device.expect`` its expectation.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from . import schema as s
from .codes import CODES
from .kernel import parse_moment

if TYPE_CHECKING:
    from .device import Device

#: The implicit first phase: the scenario's top level.
START = "start"
TRIGGERS = ("after_requests", "after_connections", "after_seconds", "at", "on")
#: What a client does that a phase may wait for (``on``): a password or JSON-RPC login succeeded, a
#: logout, a FortiManager workspace lock, any successful write.
ACTIONS = ("login", "logout", "lock", "write")
_DAILY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
#: Longest phase duration: 400 days (a certificate's lifetime fits; a lockout escalation does too).
MAX_PHASE_SECONDS = 400 * 86400.0


#: The device (and state) whose request this thread answers: set by the device around its kind's app.
answering = threading.local()


def notice(action: str) -> None:
    """What a kind's wire layer calls when a client's action succeeded (one of :data:`ACTIONS`): the
    device answering this thread's request hears of it (``Device.notice``). Outside a request: nothing."""
    device = getattr(answering, "device", None)
    if device is not None:
        device.notice(action)


def _check_phase(phase: dict, key: str) -> None:
    given = [t for t in TRIGGERS if phase[t] is not None]
    if len(given) > 1:
        raise s.SchemaError(_at(key, given[1]),
                            f"a phase starts on one trigger; this one also has {given[0]} (allowed: one of "
                            f"{', '.join(TRIGGERS)}, or none to start only when told)")
    if phase["on_count"] is not None and phase["on"] is None:
        raise s.SchemaError(_at(key, "on_count"),
                            f"counts the actions named by on, which is not set; add on = one of {', '.join(ACTIONS)}")
    if phase["name"] == START:
        raise s.SchemaError(_at(key, "name"),
                            f"'{START}' is the scenario's top level, the first phase; name this one otherwise")
    check_also_acceptable(phase, key)


def _at(key: str, field: str) -> str:
    return f"{key}.{field}" if key else field


def check_also_acceptable(table: dict, key: str = "") -> None:
    """``also_acceptable`` (a scenario's top level or a phase) needs its reason, the reason its code,
    and the code must add something."""
    also, reason = table["also_acceptable"], table["also_acceptable_reason"]
    if also is None:
        if reason is not None:
            raise s.SchemaError(_at(key, "also_acceptable_reason"), "says why a client reports also_acceptable, which "
                                                                 "is not set; add also_acceptable or remove this key")
        return
    if not reason or not reason.strip():
        raise s.SchemaError(_at(key, "also_acceptable_reason"), f"is required with also_acceptable = '{also}': say "
                                                             "which clients report it and why, e.g. 'your TLS stack "
                                                             "accepted the certificate'")
    if {table["expect"], table["expect_insecure"] or table["expect"]} == {also}:
        others = ", ".join(c for c in CODES if c != also)
        raise s.SchemaError(_at(key, "also_acceptable"), f"'{also}' is already what the scenario expects, with and without "
                                                      f"Insecure; allowed: {others}")


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
            "at": s.Parsed(None, max_length=64, parse=schedule, what="a time of day (HH:MM, UTC) or an ISO date-time",
                           doc="start when the device clock's wall time next reaches this"),
            "on": s.Str(None, choices=ACTIONS, doc="start right after a client's action succeeded"),
            "on_count": s.Int(None, min=1, doc="the N-th such action (default 1)"),
            "expect": s.Code(choices=CODES, doc="what a verifying client reports in this phase"),
            "expect_insecure": s.Code(None, choices=CODES),
            "expect_pinned": s.Code(None, choices=CODES, doc="what an agent that pinned the first certificate "
                                                             "reports in this phase (default: expect)"),
            "also_acceptable": s.Code(None, choices=CODES, doc="the other code a correct agent may report in "
                                                               "this phase, where what it kept decides"),
            "also_acceptable_reason": s.Str(None, doc="why an agent reports also_acceptable, in the user's words"),
            "setup": s.List(list, item=operations),
            "client": client_change,
            "reissue_certificate": s.Bool(False, doc="present a new leaf certificate from the same CA"),
            "use": s.Str(None, doc="enter this catalogue scenario's fault: its [tls], [connection], setup and "
                                   "[client] come first among this phase's changes (see docs/scenarios.md)"),
        },
        required=("name", "expect"),
        validate=_check_phase,
    )


def _name(text: str) -> None:
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError("use letters, digits, '-', '_' or '.'")


def schedule(text: str) -> tuple[str, float]:
    """``at``: ("daily", seconds into the UTC day) for HH:MM[:SS], ("once", epoch seconds) for an ISO
    date-time (UTC unless it names its offset). ValueError for anything else."""
    daily = _DAILY.fullmatch(text)
    if daily:
        hours, minutes, secs = (int(g or 0) for g in daily.groups())
        return "daily", float(3600 * hours + 60 * minutes + secs)
    try:
        return "once", parse_moment(text).timestamp()
    except ValueError:
        raise ValueError("write HH:MM (UTC) or a date-time such as 2026-12-01T09:00:00Z") from None


def next_time(at: str, since: float) -> float:
    """When (epoch seconds, device time) ``at`` is next reached after ``since``."""
    how, value = schedule(at)
    if how == "once":
        return value
    day = datetime.fromtimestamp(since, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    moment = day.timestamp() + value
    return moment if moment > since else (day + timedelta(days=1)).timestamp() + value


def check_phases(phases: list[dict], actions: tuple[str, ...] | None = None) -> None:
    """Names unique; ``on`` one of the kind's ``actions`` (None: any); expect_insecure and
    expect_pinned filled in (by default, expect)."""
    seen: set[str] = set()
    for i, phase in enumerate(phases):
        if actions is not None and phase["on"] is not None and phase["on"] not in actions:
            raise s.SchemaError(f"phases[{i}].on", f"'{phase['on']}' never happens on this kind of device, so the "
                                                    f"phase would never start; allowed: {', '.join(actions)}")
        if phase["name"] in seen:
            raise s.SchemaError(f"phases[{i}].name", f"'{phase['name']}' names an earlier phase too; names are unique")
        seen.add(phase["name"])
        if phase["expect_insecure"] is None:
            phase["expect_insecure"] = phase["expect"]
        if phase["expect_pinned"] is None:
            phase["expect_pinned"] = phase["expect"]


def trigger_text(phase: dict) -> str:
    if phase["after_requests"] is not None:
        return f"after {phase['after_requests']} request(s)"
    if phase["after_connections"] is not None:
        return f"after {phase['after_connections']} connection(s)"
    if phase["after_seconds"] is not None:
        return f"after {phase['after_seconds']:g} s on the device clock"
    if phase["at"] is not None:
        daily = schedule(phase["at"])[0] == "daily"
        return f"at {phase['at']}{' UTC, the next time' if daily else ''} on the device clock"
    if phase["on"] is not None:
        count = phase["on_count"] or 1
        return f"on the {_ordinal(count)} {phase['on']}" if count > 1 else f"on a {phase['on']}"
    return "when told (advance)"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def listing(scenario) -> list[dict]:
    """Every phase of a scenario, the top level first: name, summary, trigger, expect, expect_insecure,
    expect_pinned (an agent that pinned the first certificate: the top level's is its expect), and
    also_acceptable with its reason where the phase has one."""
    first = {"name": START, "summary": scenario.summary, "trigger": "at start", "expect": scenario.expect,
             "expect_insecure": scenario.expect_insecure, "expect_pinned": scenario.expect,
             **_also(scenario.also_acceptable, scenario.also_acceptable_reason)}
    return [first] + [{"name": p["name"], "summary": p["summary"], "trigger": trigger_text(p),
                       "expect": p["expect"], "expect_insecure": p["expect_insecure"],
                       "expect_pinned": p["expect_pinned"], **_also(p["also_acceptable"], p["also_acceptable_reason"])}
                      for p in scenario.phases]


def _also(code: str | None, reason: str | None) -> dict:
    return {} if code is None else {"also_acceptable": code, "also_acceptable_reason": reason}


def acceptable(phase: dict, *, insecure: bool = False) -> list[str]:
    """The codes a correct agent may report in ``phase`` (an entry of :func:`listing`): its expectation,
    then its ``also_acceptable``."""
    expect = str(phase["expect_insecure" if insecure else "expect"])
    also = phase.get("also_acceptable")
    return [expect] if also is None or also == expect else [expect, also]


class PhaseRunner:
    """One device's walk through its scenario's phases; every change runs under the device's lock."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self._phases: list[dict] = list(device.scenario.phases)
        self._listing = listing(device.scenario)
        self.index = 0
        self._requests = self._connections = 0
        self._actions: Counter[str] = Counter()
        self._entered = device.clock.monotonic()
        self._target = self._schedule()
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

    def on_action(self, action: str) -> None:
        """A client's ``action`` succeeded (the kinds tell :meth:`Device.notice`)."""
        if self._phases:
            with self._device._lock:
                self._actions[action] += 1
                moved = self._settle(action)
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
        if self._target is not None and self._device.clock.time() >= self._target:
            return "schedule"
        if event is not None and event == nxt["on"] and self._actions[event] >= (nxt["on_count"] or 1):
            return event
        return None

    def _schedule(self) -> float | None:
        """When (device wall time) the next phase's ``at`` comes, counted from now; None without one."""
        if self.index >= len(self._phases) or self._phases[self.index]["at"] is None:
            return None
        return next_time(self._phases[self.index]["at"], self._device.clock.time())

    def _settle(self, event: str | None = None) -> bool:
        """Enter every phase that is due as ``event`` ("request", "connection", an action, None) arrives;
        whether any was."""
        moved = False
        while (cause := self._due(event)) is not None:
            self._enter(cause)
            moved = True
        return moved

    def _enter(self, cause: str) -> None:
        device, phase = self._device, self._phases[self.index]
        self.index += 1
        self._requests = self._connections = 0
        self._actions.clear()
        self._entered = device.clock.monotonic()
        self._target = self._schedule()
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
            left = self._left()
            if left is None:
                return
            self._timer = threading.Timer(left + 0.01, self._tick)
            self._timer.daemon = True
            self._timer.start()

    def _left(self) -> float | None:
        """Real seconds until the next phase's duration or schedule runs out; None: no such trigger."""
        clock, seconds = self._device.clock, self._phases[self.index]["after_seconds"]
        if seconds is not None:
            return max(0.0, seconds - (clock.monotonic() - self._entered))
        if self._target is not None:
            return max(0.0, self._target - clock.time())
        return None

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
