"""Mismatches that explain themselves: what the device saw, what a correct agent reports, the remedy.

Used by ``mockfgt check`` for each run that did not match, and by pytest: a device's ``expect`` is
an :class:`Expectation`, a ``str`` that remembers its device, so a failing

    assert agent.run(device) == device.expect

prints the scenario, its symptom, the device's journal, what a correct agent reports and why, and
the remedy (the plugin's ``pytest_assertrepr_compare`` hook). ``device.check(code)`` raises the same
explanation as an AssertionError, outside pytest too.
"""

from __future__ import annotations

import time

from . import codes

JOURNAL_LINES = 8
SETTLE_SECONDS = 1.0


class Expectation(str):
    """The code a correct agent reports on ``device`` (``insecure``: with verification off)."""

    device: object
    insecure: bool

    def __new__(cls, code: str, device: object, insecure: bool = False) -> Expectation:
        self = super().__new__(cls, code)
        self.device, self.insecure = device, insecure
        return self

    def explain(self, reported: object) -> list[str]:
        device = self.device
        return explanation(device.scenario, str(self), reported, settled_events(device),  # type: ignore[attr-defined]
                           name=f"{device.name}{' with Insecure' if self.insecure else ''}")  # type: ignore[attr-defined]


def settled_events(device, wait: float = SETTLE_SECONDS) -> list[dict]:
    """The device's journal once the connections the agent left have ended (``wait`` at most).

    A client sees its handshake fail before the device's worker has journaled why: reading the
    journal at once would often say the device saw nothing.
    """
    deadline = time.monotonic() + wait
    while getattr(device, "connections", 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    return device.journal.events()


def explanation(scenario, expected: str, reported: object, events: list[dict], *, name: str | None = None,
                hung: bool = False) -> list[str]:
    """Lines telling a developer why ``reported`` is not what a correct agent reports here."""
    shown = codes.titled(reported) if isinstance(reported, str) and reported in codes.CODES else (
        "nothing readable" if reported is None else repr(reported))
    lines = [f"{name or scenario.name}: expected {codes.titled(expected)}, the agent reported {shown}"]
    if hung:
        lines.append("the agent was still running at the run timeout and was killed: does it set a request timeout?")
    lines.append(f"scenario {scenario.name}: {scenario.summary}")
    if scenario.symptom:
        lines.append(f"why {expected}: {scenario.symptom}" if expected != codes.OK else f"symptom: {scenario.symptom}")
    also = getattr(scenario, "also_acceptable", None)
    if also and also != expected:
        lines.append(f"also acceptable: {codes.titled(also)} ({scenario.also_acceptable_reason})")
    lines.append("the device saw:")
    lines += [f"  {line}" for line in journal_summary(events)]
    if scenario.remedy["summary"]:
        lines.append(f"remedy: {scenario.remedy['summary']}")
    return lines


def journal_summary(events: list[dict], limit: int = JOURNAL_LINES) -> list[str]:
    """What the device saw, one line per event, most recent last."""
    lines = [event_line(e) for e in events]
    if len(lines) > limit:
        lines = [f"... {len(lines) - limit} earlier events"] + lines[-limit:]
    return lines or ["nothing: the agent never reached the device (no connection, or one not accepted)"]


def event_line(event: dict) -> str:
    kind = event.get("event")
    if kind == "request":
        tls = event.get("tls") or {}
        over = f" over {tls['version']}" if tls.get("version") else ""
        return f"{event.get('method')} {event.get('path')} -> {event.get('status')}{over}"
    if kind == "tls-failed":
        tls = event.get("tls") or {}
        alert = f"; the client sent alert '{tls['alert']}'" if tls.get("alert") else ""
        return f"TLS handshake failed: {tls.get('error')}{alert}"
    if kind == "dropped":
        return f"connection dropped: {event.get('reason')}"
    if kind == "answer-held":  # a slow endpoint (fortios settings.slow_paths)
        return f"{event.get('method')} {event.get('path')}: answered after {event.get('seconds'):g} s (the scenario's fault)"
    return {"reset": "connection reset by the device (the scenario's fault)",
            "stall-handshake": "connection accepted, handshake never answered (the scenario's fault)",
            "silenced": "a connection kept from before silently dropped: never answered again (the scenario's fault)",
            }.get(str(kind), str(kind))


def assertrepr(op: str, left: object, right: object) -> list[str] | None:
    """pytest's explanation of ``code == device.expect`` (either side), else None."""
    if op != "==":
        return None
    for expected, reported in ((right, left), (left, right)):
        if isinstance(expected, Expectation) and not isinstance(reported, Expectation):
            return [f"{reported!r} == {str(expected)!r}", *expected.explain(reported)]
    return None
