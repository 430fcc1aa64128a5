"""Check any agent, in any language, against the catalogue: ``mockfgt check -- COMMAND ARGS...``.

    mockfgt check -- ./my-agent {url} {token} {ca}
    mockfgt check --scenario expired-cert --insecure-too --junit report.xml -- node agent.js {settings}

For every scenario (and, where the expectation differs, again with certificate verification off:
the Insecure mode), ``check`` starts a device, runs the agent's command once and compares the code
the agent reports with what a correct agent reports. The agent gets its settings two ways:

- placeholders in ARGS: ``{url}`` ``{host}`` ``{port}`` ``{token}`` ``{ca}`` ``{insecure}`` ``{user}``
  ``{password}`` ``{vdom}`` ``{adom}`` ``{cert}`` ``{key}`` ``{timeout}`` ``{kind}`` and the rest of
  :data:`AGENT_FIELDS` (login, session, write and workspace options), an empty string where a
  setting does not apply, ``true``/``false`` for a switch; ``{settings}``, the path of a JSON file
  with all of them as typed values (:func:`agent_document`);
- environment variables ``MOCKFGT_URL``, ``MOCKFGT_TOKEN``, ... (the same names, upper case).

A phased scenario (``[[phases]]``: a fault that starts mid-run, a reboot) runs the agent once per
phase, moving the device on between runs as :mod:`mockfgt.walk` does (by its clock where the next
phase starts after a duration), each run judged by its phase's expectation, or by any phase a trigger
started while it ran; ``{state}``
(``MOCKFGT_STATE``) is a folder the agent may keep files in from one run to the next, as it would
between two polls (a kept session, say).

The agent reports on the last non-empty line of its standard output: ``ok``, a code such as
``202003``, or a JSON object with a ``code`` member. ``skip: REASON`` (or ``{"skip": "REASON"}``)
says the agent does not support what the scenario needs (a password login, say): the run is shown
as skipped with the reason, and does not fail the check. It should use ``{timeout}`` as its request
timeout: the stall scenarios never answer. An agent still running after ``--run-timeout`` is killed
and reported as hung.

The agent's environment has no ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``,
``SSL_CERT_DIR`` or ``NODE_EXTRA_CA_CERTS``: it trusts what ``{ca}`` names, or the system store, as a real deployment does.

Exit codes: 0 every run matched, 1 a mismatch (or a hung agent), 2 a usage or harness error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import argtypes, codes

if TYPE_CHECKING:
    from .scenario import Scenario

#: The agent document's fields (see agent_document); each is also a placeholder and a MOCKFGT_ variable.
AGENT_FIELDS = ("kind", "url", "host", "port", "insecure", "ca", "cert", "key", "timeout", "auth", "token",
                "token_in", "user", "password", "session", "login", "csrf", "accept_banner", "vdom", "adom",
                "workspace_lock", "trusthost_user", "write")
PLACEHOLDERS = (*AGENT_FIELDS, "settings", "state")
#: Variables that would give the agent a trust it was not configured with.
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS")
OUTPUT_LIMIT = 64 * 1024  # what is kept of each output stream: its end, where the verdict is
MODES = ("verify", "insecure")
SKIP = "skip"
_PLACEHOLDER = re.compile(r"(?<!%)\{(\w+)\}")  # %{...} is curl's -w syntax, not ours


class CheckError(Exception):
    """A usage or harness error: exit code 2."""


@dataclass(frozen=True, eq=False)  # one job is one run: identity, not value
class Job:
    """One run of the agent: a scenario, in the agent's configured mode or with Insecure on."""

    scenario: Scenario
    mode: str  # "verify" (as the scenario configures the agent) or "insecure"

    @property
    def name(self) -> str:
        return self.scenario.name if self.mode == "verify" else f"{self.scenario.name}-insecure"


@dataclass
class Outcome:
    job: Job
    expected: str
    phase: str | None = None  # the phase of a phased scenario the run was judged in
    reported: str | None = None  # None: nothing readable
    verdict: str = "error"  # pass | fail | hung | skipped
    skip_reason: str = ""
    exit_code: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    explanation: list[str] = field(default_factory=list)
    entered: list[str] = field(default_factory=list)  # phases a trigger started during the run

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed(self) -> bool:
        return self.verdict in ("fail", "hung")


# -- which runs ---------------------------------------------------------------------------------
def select(scenarios, *, names=(), kind=None, expect=()) -> list:
    """The scenarios the filters keep, in catalogue order; an unknown name is an error."""
    known = {sc.name for sc in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CheckError(f"no scenario {', '.join(unknown)} in the catalogue; `mockfgt scenarios` lists them")
    return [sc for sc in scenarios
            if (not names or sc.name in names) and kind in (None, sc.kind) and (not expect or sc.expect in expect)]


def jobs_for(scenarios, *, insecure_too: bool = False) -> list[Job]:
    """Each scenario as configured, plus its Insecure mode where that changes the expectation
    (always, with ``insecure_too``). A scenario whose agent is already insecure runs once."""
    jobs = []
    for sc in scenarios:
        jobs.append(Job(sc, "verify"))
        if sc.client.get("insecure"):
            continue
        if insecure_too or _insecure_differs(sc):
            jobs.append(Job(sc, "insecure"))
    return jobs


def _insecure_differs(scenario) -> bool:
    """Whether Insecure changes the answer in any phase of the scenario (its first included)."""
    from .phases import listing

    return any(phase["expect_insecure"] != phase["expect"] for phase in listing(scenario))


# -- what the agent is told ---------------------------------------------------------------------
def agent_document(device, mode: str, timeout: float) -> dict:
    """The agent's configuration in this run (:meth:`mockfgt.agent.Agent.document`), Insecure
    forced on in the ``insecure`` mode."""
    return device.client.document(insecure=mode == "insecure", timeout=timeout)


def placeholder_values(document: dict) -> dict[str, str]:
    """The document's values as ARGS get them: strings, '' for none, true/false, the timeout as typed."""
    def text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return f"{value:g}" if isinstance(value, float) else str(value)

    return {name: text(document.get(name)) for name in AGENT_FIELDS}


def substitute(args: list[str], settings: dict[str, str]) -> list[str]:
    """ARGS with each ``{name}`` replaced; other braces (JSON, say) are left as written."""
    return [_PLACEHOLDER.sub(lambda m: settings.get(m.group(1), m.group(0)), arg) for arg in args]


def unknown_placeholders(args: list[str]) -> list[str]:
    names = {m.group(1) for arg in args for m in _PLACEHOLDER.finditer(arg)}
    return sorted(n for n in names if n not in PLACEHOLDERS and not n.isdigit())


def environment(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES and not k.startswith("MOCKFGT_")}
    env.update({f"MOCKFGT_{name.upper()}": value for name, value in settings.items()})
    return env


# -- what the agent said ------------------------------------------------------------------------
def parse_report(stdout: str) -> tuple[str | None, str]:
    """(code, skip reason) from the last non-empty line: ``ok``, ``2020xx``, JSON with ``code``, or a
    skip (code ``"skip"``); code None when the line is none of these."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None, ""
    last = lines[-1]
    if last.startswith("{"):
        try:
            report = json.loads(last)
            if "skip" in report:
                return SKIP, str(report["skip"])
            last = str(report.get("code", ""))
        except (ValueError, AttributeError, TypeError):
            return None, ""
    word, _, reason = last.partition(":")
    if word.strip().lower() == SKIP:
        return SKIP, reason.strip()
    last = last.strip().lower()
    return (last if last == codes.OK or last in codes.TITLES else None), ""


class LiveAgents:
    """The agents running now. Each runs in a session of its own (so its children can be killed with
    it), where the terminal's Ctrl+C does not reach: :meth:`kill_all` ends them when check is stopped."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.stopped = False

    def start(self, command: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self.stopped:
                raise CheckError("stopped")
            proc = subprocess.Popen(command, start_new_session=True, **kwargs)
            self._procs.add(proc)
            return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            self.stopped = True
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)


def run_agent(command: list[str], settings: dict[str, str], run_timeout: float,
              live: LiveAgents | None = None) -> tuple[int | None, str, str, bool]:
    """Run the agent once: (exit code, stdout tail, stderr tail, hung). Output is kept bounded."""
    live = live or LiveAgents()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = live.start(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=environment(settings))
        except OSError as exc:
            raise CheckError(f"cannot run {shlex.join(command[:1])}: {exc.strerror or exc}") from None
        hung = False
        try:
            proc.wait(run_timeout)
        except subprocess.TimeoutExpired:
            hung = True
        finally:
            _kill_group(proc)
            live.done(proc)
        return (None if hung else proc.returncode), _tail(out), _tail(err), hung


def _kill_group(proc: subprocess.Popen) -> None:
    """End the agent and anything it started (a shell's children too)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(stream) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(size - OUTPUT_LIMIT, 0))
    return stream.read().decode("utf-8", "replace")


# -- why it failed --------------------------------------------------------------------------------
def explain(outcome: Outcome, events: list[dict]) -> list[str]:
    from .explain import explanation

    name = f"{outcome.job.name} (phase {outcome.phase})" if outcome.phase else outcome.job.name
    return explanation(outcome.job.scenario, outcome.expected, outcome.reported, events,
                       name=name, hung=outcome.verdict == "hung")


# -- the run --------------------------------------------------------------------------------------
def run(jobs: list[Job], command: list[str], *, workers: int, run_timeout: float, agent_timeout: float,
        certs_dir: str | None = None, progress=None) -> list[Outcome]:
    """Start a device per job, run the agent against each (``workers`` at a time), judge it."""
    from .harness import Harness

    harness = Harness(certs_dir=certs_dir, control_port=None)
    try:
        devices = {job: harness.add(job.scenario, name=job.name) for job in jobs}
        harness.start()
        with tempfile.TemporaryDirectory(prefix="mockfgt-check-") as scratch:
            lock = threading.Lock()

            live = LiveAgents()

            def one(job: Job) -> list[Outcome]:
                outcomes = _run_phases(job, devices[job], command, Path(scratch), run_timeout, agent_timeout, live)
                if progress is not None:
                    with lock:
                        for outcome in outcomes:
                            progress(outcome)
                return outcomes

            pool = ThreadPoolExecutor(max_workers=max(1, workers))
            try:
                return [outcome for outcomes in pool.map(one, jobs) for outcome in outcomes]
            except BaseException:  # Ctrl+C, SIGTERM: no agent outlives check, no queued run starts
                pool.shutdown(wait=False, cancel_futures=True)
                live.kill_all()
                raise
            finally:
                pool.shutdown(wait=True)
    finally:
        harness.stop()


def _run_phases(job: Job, device, command: list[str], scratch: Path, run_timeout: float,
                agent_timeout: float, live: LiveAgents) -> list[Outcome]:
    """One run per phase of the scenario (one run for a steady one), advancing the device between
    runs; the agent's ``{state}`` folder outlives the runs, as its files would between two polls."""
    state = scratch / f"{job.name}.state"
    state.mkdir(mode=0o700)
    phased = len(device.phases) > 1
    outcomes = []
    # The same walk as the Python API's (mockfgt.walk): the device moved on by its clock or told, a
    # run judged by every phase it ran in when a trigger fired during it.
    for step in device.walk_phases(remedy=False):
        outcomes.append(_run_one(job, device, command, scratch, run_timeout, agent_timeout, state,
                                 step.name if phased else None, live, step))
    return outcomes


def _run_one(job: Job, device, command: list[str], scratch: Path, run_timeout: float, agent_timeout: float,
             state: Path, phase: str | None, live: LiveAgents, step) -> Outcome:
    document = agent_document(device, job.mode, agent_timeout)
    settings_file = scratch / f"{job.name}{'.' + phase if phase else ''}.json"
    fd = os.open(settings_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds a token or password
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    settings = {**placeholder_values(document), "settings": str(settings_file), "state": str(state)}
    insecure = document["insecure"]
    expected = device.expect_insecure if insecure else device.expect
    outcome = Outcome(job, str(expected), phase=phase)
    started = time.monotonic()
    outcome.exit_code, outcome.stdout, outcome.stderr, hung = run_agent(
        substitute(command, settings), settings, run_timeout, live)
    outcome.seconds = time.monotonic() - started
    outcome.reported, outcome.skip_reason = (None, "") if hung else parse_report(outcome.stdout)
    acceptable = step.acceptable(insecure)  # a trigger fired during the run: any phase's answer it ran in
    outcome.entered = step.entered
    outcome.verdict = ("hung" if hung else "skipped" if outcome.reported == SKIP
                       else "pass" if outcome.reported in acceptable else "fail")
    if outcome.failed:
        from .explain import settled_events

        outcome.explanation = explain(outcome, settled_events(device))
    return outcome


# -- reports --------------------------------------------------------------------------------------
def render_table(outcomes: list[Outcome]) -> str:
    phased = any(o.phase for o in outcomes)
    header = ["scenario", "mode", *(["phase"] if phased else []), "expected", "reported", "verdict"]
    rows = [[o.job.scenario.name, o.job.mode, *([o.phase or "-"] if phased else []), o.expected,
             o.reported or "-", _verdict_cell(o)] for o in outcomes]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    reasons = {o.job.scenario.name + (f" (phase {o.phase})" if o.entered else ""):
               f"the device moved on to {', '.join(o.entered)} during the run; that phase's code counts too"
               if o.entered else o.job.scenario.also_acceptable_reason
               for o in outcomes if o.passed and o.reported != o.expected}
    if reasons:
        lines += ["", "also acceptable, as the scenario allows:"]
        lines += [f"  {name}: {reason}" for name, reason in reasons.items()]
    failed = [o for o in outcomes if o.failed]
    for o in failed:
        lines += ["", *o.explanation]
        if o.stderr.strip():
            lines.append("agent's stderr (end): " + o.stderr.strip().splitlines()[-1][:300])
    skipped = sum(o.verdict == "skipped" for o in outcomes)
    passed = sum(o.passed for o in outcomes)
    lines += ["", f"{passed} of {len(outcomes)} runs matched" + (f"; {len(failed)} did not" if failed else "")
              + (f"; {skipped} skipped by the agent" if skipped else "")]
    return "\n".join(lines)


def _verdict_cell(o: Outcome) -> str:
    if o.verdict == "skipped":
        return f"skipped ({o.skip_reason})" if o.skip_reason else "skipped"
    if o.passed and o.reported != o.expected:
        return "ok (also acceptable)"
    return "ok" if o.passed else o.verdict.upper()


def to_json(outcomes: list[Outcome]) -> dict:
    return {
        "passed": sum(o.passed for o in outcomes),
        "failed": sum(o.failed for o in outcomes),
        "skipped": sum(o.verdict == "skipped" for o in outcomes),
        "runs": [{
            "scenario": o.job.scenario.name, "kind": o.job.scenario.kind, "mode": o.job.mode, "phase": o.phase,
            "expected": o.expected, "reported": o.reported, "verdict": o.verdict, "exit_code": o.exit_code,
            "seconds": round(o.seconds, 3), "explanation": o.explanation, "skip_reason": o.skip_reason,
        } for o in outcomes],
    }


def to_junit(outcomes: list[Outcome]) -> bytes:
    """JUnit XML: one testcase per scenario and mode; a failure carries the explanation."""
    from xml.etree import ElementTree as ET

    failures = sum(o.failed for o in outcomes)
    suite = ET.Element("testsuite", name="mockfgt check", tests=str(len(outcomes)), failures=str(failures),
                       errors="0", skipped=str(sum(o.verdict == "skipped" for o in outcomes)), time=f"{sum(o.seconds for o in outcomes):.3f}")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"mockfgt.{o.job.scenario.kind}",
                             name=f"{o.job.scenario.name}[{o.job.mode}{'/' + o.phase if o.phase else ''}]",
                             time=f"{o.seconds:.3f}")
        if o.verdict == "skipped":
            ET.SubElement(case, "skipped", message=o.skip_reason or "skipped by the agent")
        elif o.failed:
            failure = ET.SubElement(case, "failure", type=o.verdict,
                                    message=f"expected {o.expected}, reported {o.reported or 'nothing readable'}")
            failure.text = "\n".join(o.explanation)
            if o.stderr.strip():
                ET.SubElement(case, "system-err").text = o.stderr[-4000:]
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


# -- command line ---------------------------------------------------------------------------------
def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="run an agent's own command against every scenario and judge its codes",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", action="append", default=[], metavar="NAME", help="only this scenario (repeatable)")
    p.add_argument("--kind", metavar="KIND", help="only scenarios of this kind (fortigate, fortimanager, or one a "
                                                  "plugin adds)")
    p.add_argument("--expect", action="append", default=[], metavar="CODE",
                   choices=(codes.OK, *codes.TITLES), help="only scenarios expecting this code (repeatable)")
    p.add_argument("--insecure-too", action="store_true",
                   help="also run every scenario with Insecure on (default: only where the expectation changes)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--workers", type=argtypes.count, default=min(8, 2 * (os.cpu_count() or 1)),
                   metavar="N", help="agents run at once (default: twice the CPUs, at most 8)")
    p.add_argument("--timeout", type=argtypes.seconds, default=5.0, metavar="S",
                   help="the request timeout the agent is told to use ({timeout}; default 5)")
    p.add_argument("--run-timeout", type=argtypes.seconds, default=60.0, metavar="S",
                   help="kill an agent still running after this long and report it hung (default 60)")
    p.add_argument("--certs-dir", default=None, help="where the CA and certificates are written (default: a temporary folder)")
    p.add_argument("--scenarios-dir", action="append", default=[], metavar="DIR",
                   help="also take scenarios from this folder (custom scenarios)")
    p.add_argument("agent", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="the agent's command; placeholders such as {url} are filled in per run")
    p.set_defaults(run=command)


def command(args) -> int:
    agent = args.agent[1:] if args.agent[:1] == ["--"] else args.agent
    if not agent:
        print("mockfgt check: give the agent's command after --, e.g. mockfgt check -- ./agent {url} {token} {ca}",
              file=sys.stderr)
        return 2
    unknown = unknown_placeholders(agent)
    if unknown:
        print(f"mockfgt check: unknown placeholder {', '.join('{' + n + '}' for n in unknown)}; "
              f"known: {' '.join('{' + n + '}' for n in PLACEHOLDERS)}", file=sys.stderr)
        return 2
    from .scenario import catalogue

    try:
        scenarios = select(catalogue([Path(d) for d in args.scenarios_dir]), names=args.scenario,
                           kind=args.kind, expect=args.expect)
        if not scenarios:
            raise CheckError("the filters leave no scenario to run")
        jobs = jobs_for(scenarios, insecure_too=args.insecure_too)
        previous = signal.signal(signal.SIGTERM, _terminated)  # SIGTERM unwinds like Ctrl+C: agents killed
        try:
            outcomes = run(jobs, agent, workers=args.workers, run_timeout=args.run_timeout,
                           agent_timeout=args.timeout, certs_dir=args.certs_dir)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except CheckError as exc:
        print(f"mockfgt check: {exc}", file=sys.stderr)
        return 2
    if args.junit:
        Path(args.junit).write_bytes(to_junit(outcomes))
    if args.json:
        print(json.dumps(to_json(outcomes), indent=2))
    else:
        print(render_table(outcomes))
    return 1 if any(o.failed for o in outcomes) else 0
