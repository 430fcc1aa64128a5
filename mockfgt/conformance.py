"""The conformance matrix: every catalogue scenario against independent client stacks, over real sockets.

    python -m mockfgt.conformance [--write docs/conformance.md] [--scenario NAME ...]
    mockfgt conformance ...                       (the same, from the CLI)

Each row is a scenario in one mode: ``verify`` (the agent as the scenario configures it) or
``insecure`` (the same agent with certificate verification off). A scenario that requires a client
certificate gets a row per TLS version instead, because TLS 1.3 reports the missing certificate only
after the handshake and TLS 1.2 during it.

A phased scenario's row is walked (:func:`walk_cell`): one client object for every phase, the
cell passing only when every phase's code is right (shown as ``ok → 202001 → remedy: ok``).

Each column is a client running the agent's flow (:mod:`mockfgt.flows`) with its own HTTP stack:

- ``requests``, ``httpx``, ``urllib``: exceptions classified by :func:`mockfgt.classify`;
- ``curl``: its exit code (mapped by :func:`curl_code`) or the HTTP status / JSON-RPC code;
- ``openssl``: ``openssl s_client`` for the TLS layer alone, in rows that expect ``ok`` or 202003;
- ``diagnose``: the verdict of ``mockfgt diagnose`` given the agent's settings.

A cell passes when the client reports the row's expected code, or the scenario's ``also_acceptable``
code where the outcome depends on the client's TLS stack (shown as that client's behaviour). The rendered matrix is what
``docs/conformance.md`` holds; ``tests/test_conformance.py`` runs the same cells and fails on any
mismatch, and when the file is out of date.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import argtypes
from .classify import classify
from .codes import CONNECTION, OK, TIMEOUT, TLS
from .diagnose import is_ip
from .flows import Agent, KeptFlow, run_flow
from .hosts import host_port
from .transport import UrllibSender

CLIENTS = ("requests", "httpx", "urllib", "curl", "openssl", "diagnose")
MODES = ("verify", "insecure")
TIMEOUT_SECONDS = 1.0  # a stall holds until the client leaves; a client that waits 1 s reports 202004
#: The clients' timeout in every other row: those must answer, and a busy machine must not make them late.
ANSWER_SECONDS = 15.0
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
NOT_APPLICABLE = "n/a"


# -- rows and cells -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    scenario: str
    kind: str
    mode: str  # "verify" or "insecure"
    tls: str | None  # None: the scenario's own TLS versions; else the device speaks only this one
    expect: str
    also_acceptable: str | None = None  # the other code a client may report, its TLS stack deciding
    also_reason: str | None = dataclasses.field(default=None, compare=False)  # the scenario's words for it
    #: A phased scenario: each step's code (every phase, then the remedy when the last is a fault); the
    #: cell walks them with one client object and passes only when every step does.
    steps: tuple[str, ...] = ()
    step_names: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def id(self) -> str:
        return "-".join(p for p in (self.scenario, self.mode, self.tls) if p)


@dataclass(frozen=True)
class Cell:
    row: Row
    client: str
    observed: str  # a code, or n/a when the client does not apply to the row (a phased row: one per step)
    surface: str  # what the client saw: exception type, HTTP status, curl exit code...
    steps_passed: bool | None = None  # a phased row: whether every step's code was right for its phase

    @property
    def applies(self) -> bool:
        return self.observed != NOT_APPLICABLE

    @property
    def passed(self) -> bool:
        if self.applies and self.steps_passed is not None:
            return self.steps_passed
        return not self.applies or self.observed in (self.row.expect, self.row.also_acceptable)

    @property
    def by_its_stack(self) -> bool:
        """The client reported the row's ``also_acceptable`` code: its TLS stack accepted what a strict one refuses."""
        return self.applies and self.row.also_acceptable is not None and self.observed == self.row.also_acceptable

    @property
    def id(self) -> str:
        return f"{self.row.id}-{self.client}"


def rows(scenarios) -> list[Row]:
    """The matrix rows for these scenarios (loaded :class:`~mockfgt.Scenario` objects)."""
    out = []
    for sc in sorted(scenarios, key=lambda s: s.name):
        versions: list[str | None] = [None]  # None: the scenario's own TLS versions
        if sc.tls["client_certificate"] == "required":
            versions = [v for v in ("TLSv1.2", "TLSv1.3") if v in sc.tls["versions"]] or [None]
        for mode in MODES:
            if sc.phases:
                out += [phased_row(sc, mode, tls) for tls in versions]
                continue
            expect, *also = sc.acceptable(insecure=mode == "insecure")
            out += [Row(sc.name, sc.kind, mode, tls, expect, *((also[0], sc.also_acceptable_reason) if also else ()))
                    for tls in versions]
    return out


STEP_ARROW = " → "


def phased_row(sc, mode: str, tls: str | None) -> Row:
    """A phased scenario's row: the code of each phase in turn, and ``remedy: ok`` when the last is a fault."""
    from .phases import listing

    key = "expect_insecure" if mode == "insecure" else "expect"
    phases = listing(sc)
    codes, names = [str(p[key]) for p in phases], [p["name"] for p in phases]
    also = [p.get("also_acceptable") for p in phases]
    if codes[-1] != OK:
        codes.append(OK)
        names.append("remedy")
        also.append(None)
    shown = [f"remedy: {c}" if n == "remedy" else f"{c} or {a}" if a and a != c else c
             for n, c, a in zip(names, codes, also, strict=True)]
    return Row(sc.name, sc.kind, mode, tls, STEP_ARROW.join(shown), steps=tuple(codes), step_names=tuple(names))


def applies(row: Row, client: str) -> bool:
    """s_client sees the TLS layer only: it can confirm ``ok`` or 202003, nothing past TLS."""
    return client != "openssl" or all(code in (OK, TLS) for code in (row.steps or (row.expect,)))


# -- one client, one cell -----------------------------------------------------------------------

def python_error(exc: BaseException) -> tuple[str, str]:
    try:
        return classify(exc), type(exc).__name__
    except ValueError:
        return f"unclassified {type(exc).__name__}", repr(exc)


class Wait:
    """A client's timeout in seconds, which a walk sets per phase (1 s only where the device stalls)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


#: A client stack, open for as long as the ``with`` lasts: ``(send, explain_error, cookies)`` for the
#: agent's flow (:mod:`mockfgt.flows`); one object (Session, Client, cookie jar or file) throughout.
Stack = Callable[[Agent, Wait], AbstractContextManager[tuple[Callable, Callable, Callable]]]


@contextmanager
def requests_stack(agent: Agent, wait: Wait) -> Iterator[tuple[Callable, Callable, Callable]]:
    import requests

    with requests.Session() as session:
        session.trust_env = False  # no REQUESTS_CA_BUNDLE, no proxies: the row states its trust

        def send(method, path, headers, body):
            r = session.request(method, agent.url + path, headers=headers, data=body, timeout=wait.seconds,
                                verify=agent.verify, cert=agent.cert)
            return r.status_code, r.content

        yield send, python_error, lambda: [(c.name, c.value) for c in session.cookies]


@contextmanager
def httpx_stack(agent: Agent, wait: Wait) -> Iterator[tuple[Callable, Callable, Callable]]:
    import httpx

    with httpx.Client(verify=agent.ssl_context(), timeout=wait.seconds, trust_env=False) as client:

        def send(method, path, headers, body):
            r = client.request(method, agent.url + path, headers=headers, content=body, timeout=wait.seconds)
            return r.status_code, r.content

        yield send, python_error, lambda: [(c.name, c.value) for c in client.cookies.jar]


@contextmanager
def urllib_stack(agent: Agent, wait: Wait) -> Iterator[tuple[Callable, Callable, Callable]]:
    sender = UrllibSender(agent.url, agent.ssl_context(), wait.seconds)

    def send(method, path, headers, body):
        sender.timeout = wait.seconds
        return sender(method, path, headers, body)

    yield send, python_error, sender.cookies


def _one_run(stack: Stack) -> Callable[[Agent, float], tuple[str, str]]:
    def run_cell_flow(agent: Agent, timeout: float) -> tuple[str, str]:
        with stack(agent, Wait(timeout)) as (send, explain, cookies):
            outcome = run_flow(agent, send, explain, cookies)
        return outcome.code, outcome.surface

    return run_cell_flow


run_requests = _one_run(requests_stack)
run_httpx = _one_run(httpx_stack)
run_urllib = _one_run(urllib_stack)


class CurlFailure(Exception):
    def __init__(self, exit_code: int, stderr: str):
        super().__init__(f"curl exit {exit_code}: {stderr}")
        self.exit_code, self.stderr = exit_code, stderr


#: curl's exit codes (curl(1) "EXIT CODES") mapped to the agent's codes.
CURL_EXIT_CODES = {
    6: CONNECTION,  # could not resolve host
    7: CONNECTION,  # failed to connect (refused, unreachable)
    28: TIMEOUT,  # operation timeout
    35: TLS,  # TLS handshake failed (protocol version, alert, wrong version number)
    51: TLS,  # the server's certificate or fingerprint was not OK
    52: CONNECTION,  # the server replied nothing
    53: TLS,  # crypto engine not found
    54: TLS,  # cannot set the crypto engine
    55: CONNECTION,  # failed sending network data
    56: CONNECTION,  # failure receiving network data
    58: TLS,  # problem with the local client certificate
    59: TLS,  # could not use the specified cipher
    60: TLS,  # peer certificate cannot be authenticated with known CA certificates
    77: TLS,  # problem reading the CA certificate
    80: TLS,  # failed to shut down the TLS connection
    83: TLS,  # issuer check failed
    90: TLS,  # pinned public key did not match
    91: TLS,  # invalid certificate status
}


def curl_code(exit_code: int, stderr: str) -> str:
    """The code for a failed curl run: the exit code, refined by the reason where one code means two things.

    35 is a handshake failure, unless the peer reset the connection (202000); 56 is a receive failure,
    unless what was received is a TLS alert (a TLS 1.3 device refusing a missing client certificate).
    """
    if "reset by peer" in stderr:
        return CONNECTION
    if exit_code == 56 and ("SSL" in stderr or "alert" in stderr):
        return TLS
    return CURL_EXIT_CODES.get(exit_code, f"unmapped curl exit {exit_code}")


def clean_env() -> dict[str, str]:
    """The environment for curl and openssl: no trust or proxy variables from the machine."""
    return {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES + PROXY_VARIABLES}


def curl_trust(agent: Agent) -> list[str]:
    return agent.curl_trust()


@contextmanager
def curl_stack(agent: Agent, wait: Wait) -> Iterator[tuple[Callable, Callable, Callable]]:
    """curl, one process per call, sharing a cookie file (the agent's session) for as long as it is open."""
    with tempfile.TemporaryDirectory(prefix="mockfgt-curl-") as folder:
        jar = Path(folder) / "cookies.txt"
        jar.touch()
        yield _curl_send(agent, wait, str(jar)), _curl_explain, lambda: curl_cookies(str(jar))


run_curl = _one_run(curl_stack)
STACKS: dict[str, Stack] = {"requests": requests_stack, "httpx": httpx_stack, "urllib": urllib_stack,
                            "curl": curl_stack}


def curl_cookies(jar: str) -> list[tuple[str, str]]:
    """(name, value) pairs of a curl cookie file (Netscape format; HttpOnly lines start #HttpOnly_)."""
    pairs = []
    for line in Path(jar).read_text(errors="replace").splitlines():
        if line.startswith("#HttpOnly_"):
            line = line[len("#HttpOnly_"):]
        fields = line.split("\t")
        if not line.startswith("#") and len(fields) == 7:
            pairs.append((fields[5], fields[6]))
    return pairs


def _curl_send(agent: Agent, wait: Wait, jar: str) -> Callable:
    curl = shutil.which("curl") or "curl"

    def send(method, path, headers, body):
        timeout = wait.seconds
        args = [curl, "-q", "-sS", "--noproxy", "*", "--max-time", str(timeout), "-X", method,
                "-b", jar, "-c", jar, "-o", "-", "-w", "\n%{http_code}", *curl_trust(agent)]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        if body is not None:
            args += ["--data-binary", "@-"]
        done = subprocess.run([*args, agent.url + path], input=body or b"", capture_output=True,
                              env=clean_env(), timeout=timeout + 10)
        if done.returncode:
            raise CurlFailure(done.returncode, done.stderr.decode(errors="replace"))
        answer, _, status = done.stdout.rpartition(b"\n")
        return int(status), answer

    return send


def _curl_explain(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, CurlFailure):
        return curl_code(exc.exit_code, exc.stderr), f"exit {exc.exit_code}"
    raise exc


def run_openssl(agent: Agent, timeout: float) -> tuple[str, str]:
    """``openssl s_client`` verifying as the agent does, then one request to see the session hold."""
    parts = urlsplit(agent.url)
    if parts.scheme != "https":
        return NOT_APPLICABLE, "plain HTTP"
    host, port = agent.host, agent.port
    args = [shutil.which("openssl") or "openssl", "s_client", "-connect",
            host_port(host, port), "-ign_eof"]
    if not is_ip(host):
        args += ["-servername", host]
    if agent.verify is not False:
        args += ["-verify_return_error", *(["-verify_ip", host] if is_ip(host) else ["-verify_hostname", host])]
        if isinstance(agent.verify, str):
            args += ["-CAfile", agent.verify]
    if agent.cert:
        args += ["-cert", agent.cert[0], "-key", agent.cert[1]]
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    try:
        done = subprocess.run(args, input=request, capture_output=True, env=clean_env(), timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return TIMEOUT, "timeout"
    return s_client_code(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def s_client_code(exit_code: int, stdout: str, stderr: str) -> tuple[str, str]:
    """ok only when the handshake held long enough to carry an HTTP answer back."""
    if exit_code == 0 and re.search(r"^HTTP/1\.[01] \d{3}", stdout, re.M):
        return OK, "verify 0" if "Verify return code: 0" in stdout else "handshake ok"
    if any(s in stderr for s in ("errno=111", "Connection refused", "errno=104", "reset by peer",
                                 "BIO_lookup", "Name or service not known")):
        return CONNECTION, _s_client_reason(stderr)
    return TLS, _s_client_reason(stderr)


def _s_client_reason(stderr: str) -> str:
    # An alert from the device first: without -verify_return_error s_client also prints verify errors
    # it went past.
    if m := re.search(r"SSL alert number (\d+)", stderr):
        return f"alert {m.group(1)}"
    if m := re.search(r"verify error:num=(\d+)", stderr):
        return f"verify {m.group(1)}"
    if m := re.search(r"SSL routines:[^:]*:([^:]+):", stderr):
        return m.group(1)
    return stderr.strip().splitlines()[-1][:60] if stderr.strip() else "failed"


def run_diagnose(agent: Agent, timeout: float) -> tuple[str, str]:
    """diagnose, as the scenario's agent is configured (its login, kept session, CSRF and lock habits)."""
    from .diagnose import diagnose

    report = diagnose(dataclasses.replace(agent, timeout=timeout))
    return report.verdict, report.deciding_step


RUNNERS = {
    "requests": run_requests,
    "httpx": run_httpx,
    "urllib": run_urllib,
    "curl": run_curl,
    "openssl": run_openssl,
    "diagnose": run_diagnose,
}


# -- running the matrix ---------------------------------------------------------------------------
def settings_for(device, row: Row) -> Agent:
    """Put ``device`` into the row's scenario and return its agent, as configured for the row's mode."""
    device.use(row.scenario)
    if row.tls:
        device.apply({"op": "set-tls", "versions": [row.tls]})
    settings = device.client
    return dataclasses.replace(settings, verify=False) if row.mode == "insecure" else settings


def cell_timeout(code: str, timeout: float) -> float:
    """``timeout`` where the client must give up on a stall (202004), else a deadline load cannot reach."""
    return timeout if code == TIMEOUT else max(timeout, ANSWER_SECONDS)


def walk_cell(device, row: Row, client: str, timeout: float) -> Cell:
    """A phased row, phase by phase (:mod:`mockfgt.walk`): one client object and one agent instance
    (:class:`~mockfgt.flows.KeptFlow`: its session, cookies and kept connections) for every phase;
    the remedy's new settings start a new one. ``openssl`` and ``diagnose``, one-shot tools, run
    afresh in each phase with the phase's settings."""
    settings_for(device, row)  # the device fresh in the row's scenario
    insecure = row.mode == "insecure"
    wait = Wait(timeout)
    observed: list[str] = []
    surfaces: list[str] = []
    verdicts: list[bool] = []
    with ExitStack() as resources:
        flow = None
        for step in device.walk_phases(insecure=insecure):
            wait.seconds = timeout if TIMEOUT in step.acceptable() else max(timeout, ANSWER_SECONDS)
            agent = dataclasses.replace(step.client, verify=False) if insecure else step.client
            if client in STACKS and (flow is None or step.reconfigure):
                if flow is not None:
                    flow.close()
                flow = KeptFlow(agent, *resources.enter_context(STACKS[client](agent, wait)))
            if client in STACKS:
                assert flow is not None
                outcome = flow.run()
                code, seen = outcome.code, outcome.surface
            else:
                code, seen = RUNNERS[client](agent, wait.seconds)
            observed.append(f"remedy: {code}" if step.name == "remedy" else code)
            surfaces.append(seen or "—")
            verdicts.append(step.accepts(code, insecure=insecure))
        if flow is not None:
            flow.close()
    return Cell(row, client, STEP_ARROW.join(observed), STEP_ARROW.join(surfaces), steps_passed=all(verdicts))


def run_cell(device, row: Row, client: str, timeout: float) -> Cell:
    if not applies(row, client):
        return Cell(row, client, NOT_APPLICABLE, "")
    if row.steps:
        try:
            return walk_cell(device, row, client, timeout)
        except Exception as exc:  # a crash in a client is a failed cell, never a lost matrix
            return Cell(row, client, f"crashed: {type(exc).__name__}", str(exc)[:80])
    settings = settings_for(device, row)
    try:
        observed, seen = RUNNERS[client](settings, timeout)
    except Exception as exc:  # a crash in a client is a failed cell, never a lost matrix
        observed, seen = f"crashed: {type(exc).__name__}", str(exc)[:80]
    return Cell(row, client, observed, seen)


def run(scenarios=None, clients=CLIENTS, *, timeout: float = TIMEOUT_SECONDS, workers: int = 8) -> list[Cell]:
    """Run every (row, client) cell, each on a freshly reset device; cells run in parallel threads.

    Every worker thread owns one device and switches it to each cell's scenario, so a cell never sees
    the lockouts or objects another left behind.
    """
    import urllib3

    from .device import Device
    from .scenario import catalogue
    from .tls import HarnessCA

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # insecure rows are the point
    scenarios = catalogue() if scenarios is None else scenarios
    jobs = [(row, client) for row in rows(scenarios) for client in clients]
    folder = tempfile.mkdtemp(prefix="mockfgt-conformance-")
    ca, local, devices, lock = HarnessCA(folder), threading.local(), [], threading.Lock()

    def work(job):
        row, client = job
        if getattr(local, "device", None) is None:
            local.device = Device(row.scenario, ca=ca).start()
            with lock:
                devices.append(local.device)
        return run_cell(local.device, row, client, timeout if row.steps else cell_timeout(row.expect, timeout))

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conformance") as pool:
            return list(pool.map(work, jobs))
    finally:
        for device in devices:
            device.stop()
        shutil.rmtree(folder, ignore_errors=True)


# -- rendering --------------------------------------------------------------------------------------
HEADER = """# Conformance matrix

Generated by `make conformance` (`python -m mockfgt.conformance --write docs/conformance.md`) from a
real run: every catalogue scenario served by a mock device on loopback, every client over real
sockets and real TLS. Do not edit by hand; `tests/test_conformance.py` runs the same cells, fails on
any mismatch and fails when this file is out of date.

Rows: each scenario as the agent is configured (`verify`) and with certificate verification off
(`insecure`); a scenario that requires a client certificate has a row per TLS version, pinned on the
device, because TLS 1.3 reports the missing certificate after the handshake and TLS 1.2 during it.
Columns: the agent's flow as the scenario configures it (`mockfgt.flows`: its login or kept session,
the status call, read the address objects, create and delete one when the agent writes, under the
ADOM lock in workspace mode, trusted-hosts write-back) through requests, httpx and urllib (cookies in
the Session, Client or CookieJar; exceptions classified by `mockfgt.classify`), curl (a cookie file;
exit code or HTTP status), `openssl s_client` (the TLS layer alone, so only in rows that expect `ok`
or 202003) and `mockfgt diagnose`. A cell shows the code the client reported: ✓ when it is the
expected one, ✗ when not, — when the client does not apply. Where the outcome depends on the client's
TLS stack, the row's expectation names the other acceptable code (`202003 or ok`), and a client that
reports it shows `✓ ok (its TLS stack)`: that is this client's behaviour, explained under the matrix.

A phased scenario's row is walked phase by phase (`mockfgt.walk`) with one client object and one
agent instance per cell (its session, cookies and kept-alive connections carried from phase to phase;
`openssl` and `diagnose` run afresh in each phase), the device moved on by its clock. The row shows
each phase's code in turn, then `remedy: ok` where the last phase is still a fault (the remedy applied,
the agent given its new settings); a cell passes only when every step is right for its phase.
"""

MATRIX_TITLE = "## Matrix"
STACK_TITLE = "### Where the client's TLS stack decides"
SURFACE_TITLE = "## What each client saw"


def _row_cells(cells: list[Cell]) -> dict[Row, dict[str, Cell]]:
    table: dict[Row, dict[str, Cell]] = {}
    for cell in cells:
        table.setdefault(cell.row, {})[cell.client] = cell
    return table


def _clients(cells: list[Cell]) -> list[str]:
    present = {c.client for c in cells}
    return [c for c in CLIENTS if c in present]


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def render_matrix(cells: list[Cell]) -> str:
    """The matrix section: deterministic for a given catalogue, so it can be checked for staleness."""
    clients = _clients(cells)
    lines = []
    for row, by_client in _row_cells(cells).items():
        marks = []
        for client in clients:
            cell = by_client[client]
            stack = " (its TLS stack)" if cell.by_its_stack else ""
            marks.append("—" if not cell.applies else f"{'✓' if cell.passed else '✗'} {cell.observed}{stack}")
        expect = row.expect + (f" or {row.also_acceptable}" if row.also_acceptable else "")
        lines.append([row.scenario, row.mode, row.tls or "", expect, *marks])
    failed = sum(1 for c in cells if not c.passed)
    checked = sum(1 for c in cells if c.applies)
    summary = f"{checked - failed} of {checked} cells pass" + (f"; {failed} FAIL" if failed else "") + "."
    return "\n".join([MATRIX_TITLE, "", summary, "",
                      _table(["scenario", "mode", "TLS", "expect", *clients], lines), "", *_stack_notes(cells)])


def _stack_notes(cells: list[Cell]) -> list[str]:
    """One line per scenario some client reported the ``also_acceptable`` code of, with the scenario's reason."""
    seen: dict[str, tuple[Row, list[str]]] = {}
    for cell in cells:
        if cell.by_its_stack:
            clients = seen.setdefault(cell.row.scenario, (cell.row, []))[1]
            if f"{cell.client} ({cell.row.mode})" not in clients:
                clients.append(f"{cell.client} ({cell.row.mode})")
    if not seen:
        return []
    lines = [STACK_TITLE, ""]
    for scenario, (row, clients) in seen.items():
        lines.append(f"- `{scenario}`: {', '.join(clients)} reported `{row.also_acceptable}`, where {row.also_reason}.")
    return [*lines, ""]


def render_surfaces(cells: list[Cell]) -> str:
    clients = _clients(cells)
    lines = [[row.scenario, row.mode, row.tls or "", *(by_client[c].surface or "—" for c in clients)]
             for row, by_client in _row_cells(cells).items()]
    note = ("The exception type (Python clients), curl's exit code, s_client's verify code or TLS alert, "
            "or the step at which `mockfgt diagnose` decided; `HTTP n` / `code n` are answers from the device. "
            "Where a client races the device (a reset right after the accept), what it saw may differ from run "
            "to run (curl 7 or 35); the code it reports does not.")
    return "\n".join([SURFACE_TITLE, "", note, "", _table(["scenario", "mode", "TLS", *clients], lines), ""])


def render(cells: list[Cell]) -> str:
    return "\n".join([HEADER, render_matrix(cells), render_surfaces(cells), versions_note()])


def versions_note() -> str:
    import httpx
    import requests

    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0].split(" ")[:2]
    return (f"Clients in this run: requests {requests.__version__}, httpx {httpx.__version__}, "
            f"Python {sys.version.split()[0]} with {ssl.OPENSSL_VERSION}, {' '.join(curl)}.\n")


# -- command line ---------------------------------------------------------------------------------
def add_parser(sub) -> None:
    """Register ``conformance`` on the ``mockfgt`` command's subparsers."""
    p = sub.add_parser("conformance", help="run the conformance matrix (catalogue x clients)")
    configure(p)
    p.set_defaults(run=command)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--write", metavar="FILE", help="write the matrix as Markdown (docs/conformance.md)")
    p.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    p.add_argument("--client", action="append", default=[], choices=CLIENTS, help="only this client (repeatable)")
    p.add_argument("--timeout", type=argtypes.seconds, default=TIMEOUT_SECONDS, help="each client's timeout in seconds")


def command(args) -> int:
    missing = [name for name in ("requests", "httpx") if name in (args.client or CLIENTS) and not _installed(name)]
    if missing:
        print(f"mockfgt conformance: the {' and '.join(missing)} client stack is not installed; "
              "pip install 'mockfgt[conformance]' (or pass --client for the others)", file=sys.stderr)
        return 2
    for name in TRUST_VARIABLES:  # the rows state their trust; the machine's must not leak in
        os.environ.pop(name, None)
    from .scenario import catalogue, load

    scenarios = [load(n) for n in args.scenario] if args.scenario else catalogue()
    cells = run(scenarios, tuple(args.client) or CLIENTS, timeout=args.timeout)
    print(render_matrix(cells))
    for cell in cells:
        if not cell.passed:
            print(f"FAIL {cell.id}: expected {cell.row.expect}, got {cell.observed} ({cell.surface})")
    if args.write:
        Path(args.write).write_text(render(cells), encoding="utf-8")
        print(f"wrote {args.write}")
    return 0 if all(c.passed for c in cells) else 1


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # present in sys.modules as None: import blocked
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mockfgt.conformance", description=__doc__.split("\n")[0])
    configure(parser)
    return command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
