"""Walking a phased scenario with one agent instance: does the agent follow the faults, and recover?

A test creates its agent once and runs it once per step; the agent keeps what it keeps between polls
(its session, cookies, connections), so what is tested is the agent's own recovery, not a fresh start::

    agent = MyAgent(device.client)                 # one instance for the whole walk
    for step in device.walk_phases():
        if step.reconfigure:                       # the remedy: the operator gives the agent new settings
            agent.reconfigure(step.reconfigure)
        step.check(agent.run())                    # explained AssertionError naming the phase

Each step is the device in one phase (``step.name``, ``step.index``, ``step.expect``). When the agent's
run is over, the walk moves the device on: by its clock where the next phase starts after a duration
(``clock=True``; the device's sessions and lockouts age with it, and idle keep-alive connections are
closed, as a device closes them long before minutes pass), else with ``device.advance()``.

A trigger may fire while the agent runs (after N requests, say): the run is then judged against every
phase it ran in, so the code of any phase entered during the run is accepted (its ``also_acceptable``
too), and ``step.entered`` names them. The next step is the phase the device is in
then. ``mockfgt check`` judges each run of an agent command by the same rule (:func:`acceptable`).

When the last phase is still a fault (a regenerated key, an upgrade that changed a setting), the walk
ends with a ``remedy`` step: the scenario's remedy is applied to the device, ``step.reconfigure`` holds
the agent's new settings (a new key, the header instead of the query), and a correct agent reports
``ok`` again. A row whose last phase is ``ok`` has recovered by itself and needs no remedy step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import codes, phases

if TYPE_CHECKING:
    from .agent import Agent
    from .device import Device

REMEDY = "remedy"


def acceptable(device: Device, first: int, last: int, *, insecure: bool = False) -> list[str]:
    """The codes a correct agent may report for a run that began in phase ``first`` and ended in phase
    ``last`` (indexes of ``device.phases``): the codes of every phase it ran in, each phase's
    ``also_acceptable`` included."""
    found = [code for phase in device.phases[first:last + 1] for code in phases.acceptable(phase, insecure=insecure)]
    return list(dict.fromkeys(found))


@dataclass
class Step:
    """One step of a walk: the device in phase ``name`` (or ``remedy``), what a correct agent reports."""

    device: Device
    index: int  # the phase's index in device.phases (the last phase's for the remedy step)
    name: str
    summary: str
    client: Agent  # the agent's settings as the scenario describes them in this phase
    reconfigure: Agent | None = None  # the remedy step: the agent's new settings
    insecure: bool = False
    _end: int | None = field(default=None, repr=False)

    @property
    def expect(self):
        """What a correct agent reports in this phase (an explaining :class:`~mockfgt.explain.Expectation`)."""
        from .explain import Expectation

        code = codes.OK if self.name == REMEDY else self.device.phases[self.index][
            "expect_insecure" if self.insecure else "expect"]
        return Expectation(code, self.device, insecure=self.insecure)

    @property
    def last_index(self) -> int:
        """The phase the device is in now, or was in when the walk moved on."""
        return self._end if self._end is not None else self.device.phase["index"]

    @property
    def entered(self) -> list[str]:
        """The phases a trigger started while this step ran (empty: it stayed in its own)."""
        return [p["name"] for p in self.device.phases[self.index + 1:self.last_index + 1]]

    def acceptable(self, insecure: bool | None = None) -> list[str]:
        if self.name == REMEDY:
            return [codes.OK]
        return acceptable(self.device, self.index, self.last_index,
                          insecure=self.insecure if insecure is None else insecure)

    def accepts(self, code: str, *, insecure: bool | None = None) -> bool:
        """Whether ``code`` is right for a run in this step (any phase it ran in)."""
        return code in self.acceptable(insecure)

    def check(self, code: str, *, insecure: bool | None = None) -> None:
        """AssertionError, naming the phase and saying what the device saw, unless ``code`` is right."""
        if not self.accepts(code, insecure=insecure):
            raise AssertionError("\n".join(self.explain(code, insecure=insecure)))

    def explain(self, code: object, *, insecure: bool | None = None) -> list[str]:
        from .explain import phase_explanation

        return phase_explanation(self, code, self.acceptable(insecure))


def walk(device: Device, *, clock: bool = True, remedy: bool = True, insecure: bool | None = None) -> Iterator[Step]:
    """Yield one :class:`Step` per phase of ``device``'s scenario, from the phase it is in, moving it on
    after each (see the module's text); then, with ``remedy``, a remedy step when the last phase is a fault.
    ``insecure``: the agent runs with certificate verification off (default: as ``device.client`` says),
    so steps expect each phase's ``expect_insecure``.

    A steady scenario is one step (and its remedy step when it expects a fault).
    """
    listing = device.phases  # not `phases`: that names the module here
    while True:
        index = device.phase["index"]
        current = listing[index]
        off = device.client.insecure if insecure is None else insecure
        step = Step(device, index, current["name"], current["summary"], device.client, insecure=off)
        yield step
        step._end = now = device.phase["index"]
        if now != index:
            continue  # a trigger moved it during the run: the next step runs where it is now
        if now + 1 >= len(listing):
            break
        _move_on(device, now, clock)
    last = listing[device.phase["index"]]
    off = device.client.insecure if insecure is None else insecure
    if remedy and last["expect_insecure" if off else "expect"] != codes.OK:
        fixed = device.remedy()
        yield Step(device, device.phase["index"], REMEDY, device.scenario.remedy["summary"], fixed,
                   reconfigure=fixed, insecure=off)


def _move_on(device: Device, index: int, clock: bool) -> None:
    """Into phase ``index + 1``: its duration on the device's clock when it has one, else told."""
    seconds = device.scenario.phases[index].get("after_seconds")
    if clock and seconds:
        device.clock.advance(seconds)
        device.close_idle_connections()  # minutes idle: the device closed them long ago
    if device.phase["index"] == index:
        device.advance()
