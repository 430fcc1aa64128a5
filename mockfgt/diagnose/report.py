"""What diagnose found: one :class:`Step` per layer, and the :class:`Report` (text or JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .. import kinds
from ..agent import Agent
from ..codes import OK, TITLES, guidance


@dataclass
class Step:
    """One layer's result. ``code`` is None when the step was not run."""

    name: str
    code: str | None = None
    summary: str = ""
    details: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fail(self, code: str, summary: str, *notes: str) -> Step:
        self.code, self.summary = code, summary
        self.notes += [n for n in notes if n]
        return self

    def ok(self, summary: str, *notes: str) -> Step:
        return self.fail(OK, summary, *notes)


@dataclass
class Report:
    target: Agent
    steps: list[Step]

    @property
    def verdict(self) -> str:
        return next((s.code for s in self.steps if s.code not in (None, OK)), OK)

    @property
    def deciding_step(self) -> str:
        return next((s.name for s in self.steps if s.code not in (None, OK)), "")

    def to_dict(self) -> dict:
        t = self.target
        return {
            "url": t.url, "kind": t.kind, "insecure": t.insecure, "vdom": t.vdom, "adom": t.adom,
            "verdict": self.verdict, "title": TITLES[self.verdict], "deciding_step": self.deciding_step,
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "writes_checked": t.write,
            "guidance": guidance(self.verdict, timeout=t.timeout),
        }

    def render(self) -> str:
        kind = kinds.get(self.target.kind).display_name
        lines = [f"mockfgt diagnose: {self.target.url} ({kind})", ""]
        for step in self.steps:
            lines += _render_step(step)
        verdict = self.verdict
        if verdict != OK:
            lines += ["", f"Verdict: {verdict} ({TITLES[verdict]}, at {self.deciding_step})", "What to do:"]
            lines += [f"  - {tip}" for tip in guidance(verdict, timeout=self.target.timeout)]
        elif self.target.write:
            lines += ["", "Verdict: ok (reads and writes)"]
        else:  # a read-only profile passes this far: say so, not a bare ok
            lines += ["", "Verdict: ok for reads; writes were not checked (add --write-check to check them)"]
        return "\n".join(lines)


def _render_step(step: Step) -> list[str]:
    label = step.code if step.code is not None else "-"
    lines = [f"  {label:<7} {step.name:<15} {step.summary}"]
    pad, width = " " * 26, max((len(k) for k in step.details), default=0) + 2
    lines += [f"{pad}{key:<{width}}{value}" for key, value in step.details.items()]
    lines += [f"{pad}! {note}" for note in step.notes]
    return lines
