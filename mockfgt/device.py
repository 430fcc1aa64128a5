"""A mock device: one scenario, its state, its TLS identity and its port.

>>> with mockfgt.FortiGate() as fgt:                      # a healthy FortiGate on an ephemeral port
...     requests.get(f"{fgt.url}/api/v2/monitor/system/status",
...                  headers={"Authorization": f"Bearer {fgt.token}"}, verify=fgt.ca_bundle)
>>> fgt.use("expired-cert")                               # same port, new fault, in milliseconds
>>> fgt.remedy()                                          # the documented fix, applied for real
"""

from __future__ import annotations

import atexit
import itertools
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Self, cast

from . import kinds, scenario as scenarios, schema
from .agent import Agent
from .clock import Clock
from .explain import Expectation
from .hosts import url_host
from .journal import DEFAULT_CAPACITY, Journal, client_of, request_body, request_event, request_headers_size
from .listener import REQUEST_TIMEOUT, ConnectionPlan, Listener
from .phases import ACTIONS, PhaseRunner, acceptable as phase_acceptable, answering
from .scenario import Scenario
from .tls import HarnessCA, ServerTLS, Window, server_tls as mint_server_tls

_device_numbers = itertools.count(1)
log = logging.getLogger(__name__)

#: Header sections larger than this are answered 431 before any app sees them. The reference gives no
#: figure for httpsd; Apache's defaults allow 100 fields of 8 KiB. The listener already refuses a
#: line over 64 KiB and more than 100 fields (431, from http.server): this caps their sum too.
MAX_HEADER_BYTES = 64 * 1024
_HEADERS_TOO_LARGE = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>431 Request Header Fields Too Large'
    b"</title></head><body><h1>Request Header Fields Too Large</h1><p>The request's header fields exceed "
    b"this server's limit.</p></body></html>"
)


@cache
def default_ca() -> HarnessCA:
    """The harness CA devices share unless given their own: made once per process in a temp folder."""
    folder = tempfile.mkdtemp(prefix="mockfgt-")
    atexit.register(shutil.rmtree, folder, True)
    return HarnessCA(folder)


#: The agent's settings in a scenario: one type from ``[client]`` to the manifest, flows and diagnose.
ClientSettings = Agent
AGENT_FIELDS = {f.name for f in fields(Agent)}


def _checked_name(name: str) -> str:
    """A device's name is one folder under the certificates folder and one segment of a control URL:
    a name such as '../x' or 'a/b' would write outside the folder or never be addressable."""
    if (not name or len(name) > 128 or name.startswith(".") or any(c in name for c in "/\\")
            or not name.isprintable()):
        raise ValueError(f"device name {name!r}: use up to 128 printable characters without '/' or '\\', "
                         "not starting with '.'")
    return name


class Device:
    """A mock Fortinet device serving one scenario on a real HTTPS port.

    ``scenario`` is a catalogue name, a path to a TOML file or a loaded :class:`Scenario`. The device
    binds at construction (``port=0`` picks a free port) and serves after :meth:`start` or ``with``.
    ``request_timeout`` bounds how long a client may take over a handshake or a request, or to take
    an answer, before it is dropped (and how long an idle keep-alive connection stays open); a
    request dropped before it arrived whole is never run. :meth:`use` raises OSError if the port
    cannot be listened on again (the device then keeps refusing). The journal keeps the last
    ``journal_capacity`` events and at most ``journal_bytes`` of them (weighed as JSON; by default
    16 MiB, more if the capacity is raised past 10,000: see :class:`mockfgt.journal.Journal`). Each
    request's body and headers are stored cut to a few KiB, their true sizes recorded.
    ``build_app=False`` leaves building the kind's web app to the first request (or
    :func:`warm_up`): ``mockfgt serve`` writes its manifest first that way.
    """

    default_scenario = "fgt-healthy"
    serves: str | None = None  # the only kind this class serves; None: any kind
    _phases: PhaseRunner

    def __init__(
        self,
        scenario: str | Path | Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        ca: HarnessCA | None = None,
        certs_dir: str | Path | None = None,
        scenario_dirs: list[Path] | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        journal_capacity: int = DEFAULT_CAPACITY,
        journal_bytes: int | None = None,
        build_app: bool = True,
    ) -> None:
        self._scenario_dirs = [Path(p) for p in scenario_dirs or []]
        self._build_app = build_app
        self.ca = ca or (HarnessCA(certs_dir) if certs_dir else default_ca())
        first = self._load(scenario or self.default_scenario)
        self.name = _checked_name(name or f"{first.name}-{next(_device_numbers)}")
        self.material_dir = self.ca.certs_dir / self.name
        self._lock = threading.RLock()
        #: Every connection outcome and request on this device's port (see :mod:`mockfgt.journal`).
        self.journal = Journal(journal_capacity, journal_bytes)
        #: The device's own time: sessions, lockouts and phase durations read it (see mockfgt.clock).
        self.clock = Clock()
        #: Called with the device after its phase changed, outside its lock (a harness rewrites its manifest).
        self.on_phase: list[Callable[[Device], object]] = []
        self._started = False
        self._install(first)  # before the listener exists: it starts with the first plan
        self.clock.subscribe(self._clock_moved)
        self._listener: Listener = Listener(self._wsgi, self._plan, host=host, port=port, journal=self.journal.record,
                                  request_timeout=request_timeout, on_accept=self._on_accept)
        self.host = host
        self._client_config = dict(first.client)
        self._client = self._resolve_client()

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        if not self._started:
            self._listener.start()
            self._started = True
            self._phases.arm()
        return self

    def begin_stop(self) -> None:
        """Tell the device to stop, without waiting (:meth:`stop` then finishes quickly)."""
        if self._started:
            self._listener.begin_stop()

    def stop(self) -> None:
        """Stop serving and release the port, at once."""
        if self._started:
            self._phases.suspend()
            self._listener.stop()
            self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} scenario={self.scenario.name} url={self.url}>"

    # -- scenarios ----------------------------------------------------------------------------
    def use(self, scenario: str | Path | Scenario) -> Self:
        """Switch to another scenario in place: new state, certificate and faults; same port."""
        loaded = self._load(scenario)
        with self._lock:
            self._install(loaded)
            self._client_config = dict(loaded.client)
            self._client = self._resolve_client()
        return self

    def reset(self) -> Self:
        """Back to the scenario's initial state (objects, keys, lockouts, certificate)."""
        return self.use(self.scenario)

    def remedy(self) -> Agent:
        """Apply the scenario's documented remedy: device operations here, client changes returned."""
        with self._lock:
            for op in self.scenario.remedy["device"]:
                self._apply(op)
            changes = {k: v for k, v in self.scenario.remedy["client"].items() if v is not None}
            self._client_config.update(changes)
            self._client = self._resolve_client()
            return self._client

    def advance(self) -> dict:
        """Enter the scenario's next phase now (see :mod:`mockfgt.phases`); returns it. ValueError in the last."""
        return self._phases.advance()

    def walk_phases(self, *, clock: bool = True, remedy: bool = True, insecure: bool | None = None):
        """Step through the scenario's phases with one agent instance: see :func:`mockfgt.walk.walk`."""
        from .walk import walk

        return walk(self, clock=clock, remedy=remedy, insecure=insecure)

    def close_idle_connections(self) -> None:
        """Close the idle keep-alive connections clients keep to the device (as its keep-alive timeout would)."""
        self._listener.close_idle()

    def notice(self, action: str) -> None:
        """A client's ``action`` (``login``, ``logout``, ``lock``, ``write``: :data:`mockfgt.phases.ACTIONS`)
        succeeded: journaled as ``{"event": "action", ...}``; a phase waiting for it (``on``) may start.
        The kinds' wire layers call :func:`mockfgt.phases.notice` while answering. ValueError for
        another action."""
        if action not in ACTIONS:
            raise ValueError(f"'{action}' is not a client action; allowed: {', '.join(ACTIONS)}")
        environ = getattr(_answering, "environ", None) if getattr(_answering, "device", None) is self else None
        who = {} if environ is None else client_of(environ)
        self.journal.record({"event": "action", "action": action, **who})  # who: as its request's entry says
        self._phases.on_action(action)

    @property
    def phase(self) -> dict:
        """The current phase: ``index``, ``name``, ``summary``, ``trigger``, ``expect``, ``expect_insecure``."""
        return self._phases.current

    @property
    def phases(self) -> list[dict]:
        """Every phase of the scenario, its top level (``start``) first."""
        return self._phases.listing

    def apply(self, op: dict) -> None:
        """Run one device operation, e.g. ``{"op": "regenerate-key", "user": "agent"}``."""
        setup = cast(schema.List, scenarios.scenario_spec(self._kind).fields["setup"])  # a list of operations
        checked = setup.item.check(op, "op")
        with self._lock:
            self._apply(checked)
            self._client = self._resolve_client()

    # -- what tests read ----------------------------------------------------------------------
    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @property
    def state(self):
        """The device's live state (``mockfgt.fortios.models.FortiOSState`` for a FortiGate)."""
        return self._state

    @property
    def port(self) -> int:
        return self._listener.port

    @property
    def connections(self) -> int:
        """Connections open on the device's port now (being answered, idle keep-alive or stalled)."""
        return self._listener.connection_count

    @property
    def url(self) -> str:
        """The device's own HTTPS URL (the agent may be configured otherwise: see :attr:`client`)."""
        return f"https://{url_host(self.host)}:{self.port}"

    @property
    def token(self) -> str | None:
        """The current API key of the scenario's API user."""
        return self._kind.token_for(self._state, self._client_user(), "current")

    @property
    def tokens(self) -> dict[str, str]:
        """Every existing user's current API key, by user name."""
        return self._kind.live_tokens(self._state)

    @property
    def client_user(self) -> str:
        """The user the agent authenticates as in this scenario."""
        return self._client_user()

    @property
    def ca_bundle(self) -> str:
        """Path of the harness CA certificate: what a correctly configured client trusts."""
        return str(self.ca.cert_path)

    @property
    def client(self) -> Agent:
        """How the agent under test is configured in this scenario."""
        return self._client

    @property
    def requests(self) -> list[dict]:
        """The HTTP requests answered so far (journal entries, credentials redacted)."""
        return self.journal.requests()

    def assert_request_made(self, method: str | None = None, path: str | None = None, *,
                            status: int | None = None, count: int | None = None) -> list[dict]:
        """Assert the agent made such a request (``count`` times, if given); returns the matches."""
        found = self.journal.requests(method=method, path=path, status=status)
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = " ".join(str(x) for x in (method, path, status and f"-> {status}") if x)
            seen = "\n".join(f"  {r['method']} {r['path']} -> {r['status']}" for r in self.journal.requests())
            raise AssertionError(f"expected {count if count is not None else 'at least one'} request(s) "
                                 f"{wanted or '(any)'}, found {len(found)}; requests seen:\n{seen or '  none'}")
        return found

    @property
    def kind(self) -> str:
        """The kind of device the current scenario emulates: ``fortigate`` or ``fortimanager``."""
        return self._scenario.kind

    @property
    def expect(self) -> Expectation:
        """The code a correct agent, configured as :attr:`client` says, reports here (so the Insecure
        one where the scenario or a remedy configures the agent without verification; in a phased
        scenario, the current phase's); ``assert code == device.expect`` explains a mismatch."""
        current = self._phases.current
        if self.client.insecure:
            return Expectation(current["expect_insecure"], self, insecure=True)
        return Expectation(current["expect"], self)

    @property
    def expect_pinned(self) -> Expectation:
        """What an agent that pinned the scenario's first certificate (:attr:`pinned`) reports here: the
        current phase's ``expect_pinned`` (by default its ``expect``)."""
        return Expectation(self._phases.current["expect_pinned"], self)

    @property
    def certificate_fingerprint(self) -> str:
        """SHA-256 of the DER of the leaf certificate the device presents now, lower-case hex."""
        return self._material.fingerprint

    @property
    def certificate_pin(self) -> str:
        """The public-key pin of that leaf, as curl's ``--pinnedpubkey`` takes it (``sha256//BASE64``)."""
        return self._material.pin

    @property
    def pinned(self) -> dict:
        """What a pinning agent took on first use: the scenario's first certificate (``sha256``,
        ``pin_sha256``), and what such an agent reports now (``expect``)."""
        first = self._first_material
        return {"sha256": first.fingerprint, "pin_sha256": first.pin, "expect": str(self.expect_pinned)}

    @property
    def expect_insecure(self) -> Expectation:
        """The same with the agent's certificate verification off (Insecure)."""
        return Expectation(self._phases.current["expect_insecure"], self, insecure=True)

    def check(self, reported: str, *, insecure: bool = False) -> None:
        """Raise AssertionError, saying what the device saw, why and the remedy, unless ``reported``
        is what a correct agent may report here (``insecure``: with verification off; a scenario's
        ``also_acceptable`` code counts)."""
        expected = self.expect_insecure if insecure else self.expect
        if not self.accepts(reported, insecure=expected.insecure):
            raise AssertionError("\n".join(expected.explain(reported)))

    @property
    def also_acceptable(self) -> str | None:
        """The other code a correct client may report where the outcome depends on its TLS stack."""
        return self._scenario.also_acceptable

    def accepts(self, code: str, *, insecure: bool = False) -> bool:
        """Whether a client reporting ``code`` (with verification off: ``insecure``) is right here."""
        return code in phase_acceptable(self._phases.current, insecure=insecure)

    # -- internals ----------------------------------------------------------------------------
    def _load(self, scenario) -> Scenario:
        loaded = scenario if isinstance(scenario, Scenario) else scenarios.load(scenario, search=self._scenario_dirs)
        if self.serves is not None and loaded.kind != self.serves:
            raise ValueError(f"{type(self).__name__} cannot serve {loaded.name!r}: it is a {loaded.kind} scenario")
        return loaded

    def _install(self, loaded: Scenario) -> None:
        """Build state, TLS and connection plan for a scenario; the listener picks up the plan."""
        kind = kinds.get(loaded.kind)
        state = kind.build_state(loaded.device)
        state.clock = self.clock
        self._scenario, self._kind, self._state = loaded, kind, state
        self._tls_settings, self._connection = dict(loaded.tls), dict(loaded.connection)
        self._reissued: ServerTLS | None = None
        for op in loaded.setup:
            self._apply(op)
        self._rebuild_plan()
        self._first_material = self._material  # what a pinning agent pins on first use
        # Published last and as one pair: a request that starts during a swap gets the old kind's app
        # with the old state or the new app with the new state, never a FortiOS app with a
        # FortiManager's state (make stress found that mix once).
        self._serving = (shared_app(kind), state)
        if self._build_app:
            warm_up(kind)
        if hasattr(self, "_phases"):
            self._phases.close()
        self._phases = PhaseRunner(self)
        if self._started:
            self._phases.arm()

    def _apply(self, op: dict) -> None:
        changes = {k: v for k, v in op.items() if k != "op" and v is not None}
        if op["op"] == "set-tls":
            self._tls_settings.update(changes)
            self._reissued = None
            self._rebuild_plan()
        elif op["op"] == "set-connection":
            if changes.pop("kept", None) == "silence" and hasattr(self, "_listener"):
                self._listener.silence_kept()  # before the new plan: only connections from before
            self._connection.update(changes)
            self._rebuild_plan()
        else:
            self._kind.apply(self._state, op)

    def _rebuild_plan(self, *, reissue: bool = False, window: Window | None = None) -> None:
        """The connection plan for the current TLS settings and fault. ``reissue``: a new leaf of this
        device's own; ``window``: the same certificate's validity moved (the clock jumped past an edge)."""
        tls = self._tls_settings
        mint = dict(shape=tls["certificate"], versions=tls["versions"],
                    client_certificate=tls["client_certificate"] == "required",
                    hostname=self._scenario.device["hostname"], serial=self._scenario.device["serial"],
                    kind=self._kind.display_name, ciphers=tls["ciphers"], valid_days=tls.get("valid_days"))
        if reissue or window is not None:  # a leaf of this device's own, from the same CA
            self._reissued = mint_server_tls(self.ca, self.material_dir / "reissued", window=window, **mint)
        # Otherwise shared with every device presenting the same certificate.
        material = self._reissued or self.ca.server_tls(**mint)
        if window is None:  # a certificate decided now: its validity on the device's clock
            ahead = timedelta(seconds=self.clock.offset)
            self._validity = (material.window[0] + ahead, material.window[1] + ahead)
        self._material = material
        self._plan = ConnectionPlan(material.context, self._connection["fault"], self._connection["stall_seconds"])
        if hasattr(self, "_listener"):  # not while __init__ installs the first scenario
            self._listener.set_plan(self._plan)

    def _enter_phase(self, phase: dict) -> None:
        """What entering a phase changes (mockfgt.phases calls it under the device's lock)."""
        for op in phase["setup"]:
            self._apply(op)
        if phase["reissue_certificate"]:
            self._rebuild_plan(reissue=True)
        self._client_config.update({k: v for k, v in phase["client"].items() if v is not None})
        self._client = self._resolve_client()

    def _clock_moved(self) -> None:
        """The clock jumped: where it passed the certificate's end (or start), present a certificate
        that real clients, judging by real time, see as the device's clock says (expired, valid)."""
        with self._lock:
            wanted = _validity_state(self.clock.now(), self._validity)
            if wanted == _validity_state(datetime.now(self._validity[0].tzinfo), self._material.window):
                return  # re-minted only when what a client concludes changes
            behind = timedelta(seconds=self.clock.offset)
            self._rebuild_plan(window=(self._validity[0] - behind, self._validity[1] - behind))
            self.journal.record({"event": "certificate", "validity": wanted, "fingerprint": self._material.fingerprint,
                                 "not_before": self._validity[0].isoformat(), "not_after": self._validity[1].isoformat()})

    def _on_accept(self) -> None:
        self._phases.on_connection()

    def _phase_changed(self) -> None:
        for listener in list(self.on_phase):
            try:
                listener(self)
            except Exception:  # a listener's failure must not fail the request that moved the phase
                log.exception("%s: a phase listener failed", self.name)

    def _client_user(self) -> str:
        """The API user whose key the agent holds (a password agent names an admin instead)."""
        if self._client_config.get("auth", "token") == "password":
            return self._kind.users(self._state)[0]
        return self._client_config.get("user") or self._kind.users(self._state)[0]

    def _password_settings(self) -> dict:
        """The Agent fields of an agent that logs in as an admin (or keeps a session key it got so)."""
        c = self._client_config
        if c["auth"] != "password":
            return {}
        kind = self._kind
        assert isinstance(kind, kinds.PasswordLogins), "scenario validation refuses a password agent otherwise"
        admin = c.get("user") or kind.admins(self._state)[0]
        current = kind.password_for(self._state, admin) or ""
        password = {"current": current, "wrong": f"not-{current}"}.get(c["password"], c["password"])
        kept = kind.expired_session_for(self._state, admin) if c.get("session") == "expired" else None
        if kept is not None:
            return dict(user=admin, password=password, auth="session", session=kept)
        return dict(user=admin, password=password)

    def _resolve_client(self) -> Agent:
        c = self._client_config
        cas: dict[str, str | bool] = {"harness": self.ca_bundle, "private": str(self.ca.private_ca_path), "system": True}
        verify = cas[c["ca"]]
        cert = None
        if c["certificate"]:
            chain, key = self.ca.issue_client_cert(self.material_dir)
            cert = (str(chain), str(key))
        user = self._client_user()
        held = None if c["auth"] == "password" else self._kind.token_for(self._state, user, c["token"])
        own = {name: c[name] for name in self._kind.client_fields if name != "session"}  # the kind's own fields
        options = {name: own.pop(name) for name in list(own) if name not in AGENT_FIELDS}
        credential = {"auth": c["auth"], "user": user, "token": held if c["auth"] == "token" else None,
                      "session": held if c["auth"] == "session" else None, **self._password_settings()}
        return Agent(
            url=f"{c['scheme']}://{url_host(c['host'] or _reachable(self.host))}:{self.port}",
            kind=self._kind.name,
            verify=False if c["insecure"] else verify,
            cert=cert,
            token_in=c["token_in"],
            write=c["write"],
            options=options,
            **own,
            **credential,
        )

    def _wsgi(self, environ, start_response):
        started = time.perf_counter()
        body = request_body(environ)
        if request_headers_size(environ) > MAX_HEADER_BYTES:
            start_response("431 Request Header Fields Too Large",
                           [("Content-Type", "text/html; charset=iso-8859-1")])
            self.journal.record(request_event(environ, body, 431, b"", started))
            return [_HEADERS_TOO_LARGE]
        self._phases.on_request()
        status = []

        def capture(line, headers, exc_info=None):
            status.append(int(line.split(" ", 1)[0]))
            return start_response(line, headers, exc_info)

        chunks = self._call_app(environ, capture)
        self.journal.record(request_event(environ, body, status[0] if status else 0, b"".join(chunks), started))
        return chunks

    def _call_app(self, environ, start_response) -> list[bytes]:
        """Run the kind's shared app for this device: its ``get_state()`` answers with our state."""
        app, _answering.state = self._serving
        _answering.device, _answering.environ = self, environ
        try:
            answer = app(environ, start_response)
            try:
                return list(answer)  # the emulations answer small bodies; the journal wants them whole
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        finally:
            _answering.state = _answering.device = _answering.environ = None


# The state (and device) whose request this thread is answering: mockfgt.phases.notice reads it too.
_answering = answering


def _current_state():
    """``get_state`` of the shared apps: the state of the device this thread answers for (the state
    the request started with: a swap meanwhile serves the next request)."""
    state = getattr(_answering, "state", None)
    if state is None:
        raise RuntimeError("a device kind's app asked for its state outside a request to a device")
    return state


def warm_up(kind) -> None:
    """Build what a request to a device of ``kind`` needs: Werkzeug's request handler and the kind's app."""
    from . import http11  # noqa: F401 - the listener imports it on the first connection otherwise

    shared_app(kind).build()


@cache
def shared_app(kind):
    """One WSGI app per device kind and process, shared by every device of that kind.

    Building the Flask app (Werkzeug compiles every URL rule) costs about a millisecond per device
    and per kind; the app holds no device state, since ``get_state()`` is looked up per request.
    It is built on the kind's first request (or by ``build()``): a process that starts devices
    imports the web framework only once one is asked something (docs/performance.md, cold start).
    """
    return _KindApp(kind)


class _KindApp:
    """``kind.create_app(get_state)``, made once on first use."""

    def __init__(self, kind) -> None:
        self._kind, self._app, self._lock = kind, None, threading.Lock()

    def build(self):
        with self._lock:
            if self._app is None:
                self._app = self._kind.create_app(_current_state)
            return self._app

    def __call__(self, environ, start_response):
        return (self._app or self.build())(environ, start_response)


def _validity_state(moment: datetime, window: Window) -> str:
    """``not-yet-valid``, ``valid`` or ``expired``: a certificate of ``window`` judged at ``moment``."""
    if moment < window[0]:
        return "not-yet-valid"
    return "expired" if moment > window[1] else "valid"


def _reachable(host: str) -> str:
    """Where a local client reaches a device bound to ``host`` (a wildcard bind means its loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class FortiGate(Device):
    """A mock FortiGate (FortiOS REST API v2). Default scenario: ``fgt-healthy``."""

    default_scenario = "fgt-healthy"
    serves = "fortigate"


class FortiManager(Device):
    """A mock FortiManager (JSON-RPC on /jsonrpc). Default scenario: ``fmg-healthy``."""

    default_scenario = "fmg-healthy"
    serves = "fortimanager"
