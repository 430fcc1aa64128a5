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


def phase_explanation(step, reported: object, acceptable: list[str]) -> list[str]:
    """Why a run in one step of a phase walk (:mod:`mockfgt.walk`) is wrong: the phase by name first,
    what the device saw in it (its journal since the phase began) and, for the remedy step, that the
    agent did not recover."""
    device, phases = step.device, step.device.phases
    where = ("after the remedy" if step.name == "remedy"
             else f"in phase '{step.name}' ({step.index + 1} of {len(phases)}: {step.summary or 'no summary'})")
    scenario = device.scenario
    shown = codes.titled(reported) if isinstance(reported, str) and reported in codes.CODES else (
        "nothing readable" if reported is None else repr(reported))
    wanted = " or ".join(codes.titled(c) for c in acceptable)
    lines = [f"{device.name} {where}: expected {wanted}, the agent reported {shown}"]
    if step.entered:
        lines.append(f"during the run the device moved on to {', '.join(repr(n) for n in step.entered)}: "
                     "any of those phases' codes is accepted")
    if step.index or step.name == "remedy":
        before = " -> ".join(f"{p['name']} ({p['expect']})" for p in phases[:step.index + 1])
        lines.append(f"the walk so far: {before}" + (" -> remedy (ok)" if step.name == "remedy" else ""))
    if reported != codes.OK and codes.OK in acceptable and (step.index or step.name == "remedy"):
        lines.append("the fault has cleared here: an agent that keeps a dead session or connection, or never "
                     "reads its new settings, does not recover")
    lines.append(f"scenario {scenario.name}: {scenario.summary}")
    if scenario.symptom and codes.OK not in acceptable:
        lines.append(f"symptom: {scenario.symptom}")
    lines.append(f"the device saw{' in this phase' if step.index else ''}:")
    lines += [f"  {line}" for line in journal_summary(_since_phase(settled_events(device), step))]
    if scenario.remedy["summary"]:
        lines.append(f"remedy: {scenario.remedy['summary']}")
    return lines


def _since_phase(events: list[dict], step) -> list[dict]:
    """The events since the step's phase began (its journaled phase change), or all of them at the start."""
    if step.index == 0 and step.name != "remedy":
        return events
    name = step.device.phases[step.index]["name"]
    starts = [i for i, e in enumerate(events) if e.get("event") == "phase" and e.get("phase") == name]
    return events[starts[-1]:] if starts else events


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
    if kind == "phase":
        return f"phase '{event.get('phase')}' began ({event.get('cause')}): a correct agent reports {event.get('expect')}"
    if kind == "action":
        return f"the client's {event.get('action')} succeeded"
    if kind == "certificate":  # the clock crossed the certificate's start or end: a new one presented
        return (f"the device's clock moved: it now presents a certificate that is {event.get('validity')} "
                f"(valid {event.get('not_before')} to {event.get('not_after')})")
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
