"""Scenario files: one TOML file per customer fault, validated with errors that say file, key and fix.

A scenario names what the device is (``[device]``), how it speaks TLS (``[tls]``), what happens to a
connection before HTTP (``[connection]``), how the agent under test is configured (``[client]``),
which operations brought the device to its state (``setup``), what a correct client reports
(``expect``, ``expect_insecure``; where the answer honestly depends on the client's TLS stack, the other
code a correct client may report: ``also_acceptable`` with ``also_acceptable_reason``), which of the agent's calls shows the fault (``shown_by``: the
banner's curl line makes that call) and the documented remedy (``[remedy]``).

A file may ``extends = "other-scenario"`` and change one thing: tables merge key by key, everything
else (lists included) replaces.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields as dataclass_fields, replace
from functools import cache
from pathlib import Path

from . import codes, schema as s
from .codes import CODES
from .kinds import DEFAULT_KIND, DeviceKind, KindError, PasswordLogins, registry
from .phases import check_also_acceptable, check_phases, phase_spec
from .vocabulary import CERTIFICATE_SHAPES, CIPHERS, CONNECTION_FAULTS, RSA_KEY_BITS, TLS_VERSION_NAMES


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""

    def __init__(self, source: str, key: str, message: str):
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")
        self.source, self.key, self.message = source, key, message


def kinds() -> dict[str, DeviceKind]:
    """Device kinds by name (see :func:`mockfgt.kinds.registry`; a kind that fails to load raises)."""
    return registry()


def check_tls(tls: dict, key: str) -> None:
    """Settings that cannot work together: RSA key exchange needs an RSA key, and only TLS 1.2 or older."""
    if tls.get("ciphers") in (None, "default"):
        return
    where = f"{key}.ciphers" if key else "ciphers"
    if tls.get("certificate") is not None and tls["certificate"] not in RSA_KEY_BITS:
        raise s.SchemaError(where, f"'{tls['ciphers']}' is RSA key exchange, which needs a certificate with an RSA key; "
                                   f"certificate '{tls['certificate']}' has an ECDSA key; allowed: {', '.join(RSA_KEY_BITS)}")
    if "TLSv1.3" in (tls.get("versions") or ()):
        raise s.SchemaError(where, f"'{tls['ciphers']}' names TLS 1.2 suites, but versions include TLSv1.3, which "
                                   "would negotiate its own suites; list TLS 1.2 and older only")


TLS = s.Table(fields={
    "certificate": s.Str("valid", choices=CERTIFICATE_SHAPES, doc="certificate shape"),
    "versions": s.List(lambda: ["TLSv1.2", "TLSv1.3"], item=s.Str(choices=TLS_VERSION_NAMES), unique=True, nonempty=True),
    "client_certificate": s.Str("none", choices=("none", "required")),
    "ciphers": s.Str("default", choices=CIPHERS, doc="the cipher suites the device offers up to TLS 1.2"),
    "valid_days": s.Int(None, min=1, max=36500, doc="a certificate valid in time lasts this many days from when the "
                                                    "device minted it, on its clock (default: the shape's own)"),
}, validate=check_tls)

CONNECTION = s.Table(fields={
    "fault": s.Str("none", choices=CONNECTION_FAULTS),
    "stall_seconds": s.Float(None, doc="a stall goes on late after this many seconds (a late handshake or "
                                       "answer); unset, it holds until the client leaves, the scenario is "
                                       "swapped or the device stops"),
})

#: The [client] fields every agent has; each kind adds its own (``client_fields`` of its client half).
CLIENT_FIELDS = {
    "host": s.Str(None, doc="host name or address the agent connects to (default, or \"\": the address the device serves on)"),
    "scheme": s.Str("https", choices=("https", "http")),
    "user": s.Str(None, doc="which API user's key the agent holds, or with auth = 'password' which admin it "
                            "logs in as (default: the first)"),
    "token": s.Str("current", choices=("current", "stale", "unknown", "none"),
                   doc="current key, the key before the last regeneration/deletion, a stranger's key, or none"),
    "token_in": s.Str("header", choices=("header", "query")),
    "ca": s.Str("harness", choices=("harness", "private", "system")),
    "insecure": s.Bool(False, doc="the agent's Insecure option: skip certificate verification"),
    "certificate": s.Bool(False, doc="the agent presents a client certificate from the harness CA"),
    "write": s.Bool(True, doc="the agent's job includes writes (creating address objects)"),
    # How the agent authenticates: an API token, a password login, or a session id it kept.
    "auth": s.Str("token", choices=("token", "password", "session"),
                  doc="token: the API key; password: log in as an admin (FortiOS /api/v2/authentication or "
                      "/logincheck, FortiManager exec /sys/login/user); session: reuse a FortiManager session "
                      "id from an earlier login (see token)"),
    "password": s.Str("current", doc="with auth = password: 'current' (the admin's password now), 'wrong', "
                                     "or the literal password the agent sends"),
}


def client_spec(kind: DeviceKind) -> s.Table:
    """The ``[client]`` table of a scenario of this kind: the common fields and the kind's own."""
    return s.Table(fields={**CLIENT_FIELDS, **kind.client_fields}, validate=kind.check_client)


def client_change_spec(kind: DeviceKind) -> s.Table:
    """A remedy's client part: it changes only what it names."""
    fields = {**CLIENT_FIELDS, **kind.client_fields}
    return s.Table(fields={k: replace(v, default=None) for k, v in fields.items()})


GENERIC_OPERATIONS = {
    "set-tls": s.Table(fields={
        "certificate": s.Str(None, choices=CERTIFICATE_SHAPES),
        "versions": s.List(None, item=s.Str(choices=TLS_VERSION_NAMES), unique=True, nonempty=True),
        "client_certificate": s.Str(None, choices=("none", "required")),
        "ciphers": s.Str(None, choices=CIPHERS),
        "valid_days": s.Int(None, min=1, max=36500),
    }, validate=check_tls),
    "set-connection": s.Table(fields={"fault": s.Str(None, choices=CONNECTION_FAULTS), "stall_seconds": s.Float(None),
                                      "kept": s.Str(None, choices=("silence",),
                                                    doc="silence: connections open now are never answered "
                                                        "again (an HA failover); new ones get the fault")}),
}

#: The agent's calls a fault can show on (roles of mockfgt.flows): a write-only fault needs a write.
SHOWN_BY = ("login", "status", "mode", "read", "lock", "write", "trusthosts")


@cache
def scenario_spec(kind: DeviceKind) -> s.Table:
    """The schema of a scenario of this kind (made once per kind: every load checks against it)."""
    ops = s.OneOf(variants={**GENERIC_OPERATIONS, **{name: spec for name, (spec, _) in kind.OPERATIONS.items()}})
    return s.Table(
        fields={
            "summary": s.Str(doc="one line: what the device does"),
            "symptom": s.Str("", doc="what the customer saw"),
            "extends": s.Str(None),
            "expect": s.Code(choices=CODES, doc="what a verifying client reports: ok or 202000..202004"),
            "expect_insecure": s.Code(None, choices=CODES),
            "also_acceptable": s.Code(None, choices=CODES, doc="the other code a correct client may report, where "
                                                                "the outcome depends on its TLS stack"),
            "also_acceptable_reason": s.Str(None, doc="why a client reports also_acceptable, in the user's words, "
                                                      "e.g. 'your TLS stack accepted the certificate'"),
            "shown_by": s.Str(None, choices=SHOWN_BY, doc="the agent's call whose answer shows the fault (default: "
                                                          "login for an agent that logs in, else status)"),
            "device": kind.DEVICE,
            "tls": TLS,
            "connection": CONNECTION,
            "client": client_spec(kind),
            "setup": s.List(list, item=ops),
            "remedy": s.Table(fields={
                "summary": s.Str("", doc="the documented fix in words"),
                "device": s.List(list, item=ops),
                "client": client_change_spec(kind),
            }),
            "phases": s.List(list, item=phase_spec(ops, client_change_spec(kind))),  # see mockfgt.phases
        },
        required=("summary", "expect"),
    )


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``raw`` keeps the merged file content for display."""

    name: str
    source: str
    summary: str
    symptom: str
    expect: str
    expect_insecure: str
    also_acceptable: str | None
    also_acceptable_reason: str | None
    shown_by: str
    device: dict
    tls: dict
    connection: dict
    client: dict
    setup: list
    remedy: dict
    raw: dict = field(repr=False, compare=False)
    phases: list = field(default_factory=list)  # the phases after the top level (mockfgt.phases)

    @property
    def kind(self) -> str:
        return self.device["kind"]

    def exposed_by(self, *, insecure: bool = False) -> str | None:
        """Which step of the agent's work reveals the fault: ``connect``, ``tls``, ``login``, ``read``
        or ``write`` (None: nothing goes wrong)."""
        code = self.expect_insecure if insecure else self.expect
        fault = self.connection["fault"]
        if code == codes.OK:
            return None
        if code == codes.CONNECTION or fault in ("refuse", "reset"):
            return "connect"
        if code == codes.TLS or fault in ("stall-handshake", "plaintext"):
            return "tls"
        return {"login": "login", "lock": "write", "write": "write", "trusthosts": "write"}.get(self.shown_by, "read")

    def acceptable(self, *, insecure: bool = False) -> tuple[str, ...]:
        """The codes a correct client may report: ``expect`` (or ``expect_insecure``), then ``also_acceptable``."""
        first = self.expect_insecure if insecure else self.expect
        also = self.also_acceptable
        return (first,) if also is None or also == first else (first, also)

    def also_acceptable_fields(self) -> dict:
        """``also_acceptable`` and its reason where the scenario has them (the JSON list, the manifest)."""
        if self.also_acceptable is None:
            return {}
        return {"also_acceptable": self.also_acceptable, "also_acceptable_reason": self.also_acceptable_reason}


# -- finding files -----------------------------------------------------------------------------
def catalogue_places() -> list[Path]:
    """Where the shipped catalogue may lie: inside the installed package (a wheel or sdist install
    puts it at mockfgt/scenarios), else the repository's scenarios/ folder (an editable install)."""
    package = Path(__file__).resolve().parent
    return [package / "scenarios", package.parent / "scenarios"]


@cache
def catalogue_dir() -> Path:
    """The shipped catalogue folder, found once per process; a ScenarioError names where it looked.

    Paths come from this module's own file rather than importlib.resources: the folder has no
    ``__init__.py``, so resources answers a MultiplexedPath whose ``str()`` is not a path, and an
    installed wheel then silently had no catalogue.
    """
    for place in catalogue_places():
        if any(place.glob("*.toml")):
            return place
    looked = ", ".join(str(p) for p in catalogue_places())
    raise ScenarioError("mockfgt", "", f"the scenario catalogue is missing (looked in {looked}); "
                                       "reinstall mockfgt (pip install --force-reinstall mockfgt)")


def search_path(extra: list[Path] | None = None) -> list[Path]:
    """Where names are looked up: given folders, then $MOCKFGT_SCENARIOS (os.pathsep-separated), then the catalogue.

    A folder named in $MOCKFGT_SCENARIOS that is missing or unreadable is an error: skipping it would
    quietly serve the catalogue's scenario of the same name instead of the user's.
    """
    env = [Path(p) for p in os.environ.get("MOCKFGT_SCENARIOS", "").split(os.pathsep) if p]
    for folder in env:
        if not folder.is_dir():
            raise ScenarioError(str(folder), "", "MOCKFGT_SCENARIOS names this folder, which does not exist")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise ScenarioError(str(folder), "", "MOCKFGT_SCENARIOS names this folder, which cannot be read")
    return [*(extra or []), *env, catalogue_dir()]


def expand(refs: list[str]) -> list[str]:
    """Scenario names and files as given, each folder replaced by its ``*.toml`` files (sorted).

    A folder with none is a ScenarioError: serving or checking it would quietly do nothing.
    """
    out: list[str] = []
    for ref in refs:
        folder = Path(ref)
        if not folder.is_dir():
            out.append(ref)
            continue
        found = sorted(str(p) for p in folder.glob("*.toml"))
        if not found:
            raise ScenarioError(ref, "", "a folder with no scenario files (*.toml) in it")
        out += found
    return out


#: A scenario *name* (not a path): what remote callers such as the control API may ask for. No
#: separator and no leading dot, so it can only ever pick a ``NAME.toml`` inside a search folder.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


#: How many files an extends chain may pass through; deeper is a mistake (or a loop of copies).
MAX_EXTENDS_DEPTH = 32


def is_name(ref: str) -> bool:
    """Whether ``ref`` is a scenario name that :func:`load` would never take for a file path."""
    return isinstance(ref, str) and NAME.fullmatch(ref) is not None and not ref.endswith(".toml")


def _locate(ref: str, search: list[Path], *, names_only: bool = False) -> Path:
    candidate = Path(ref)
    if not names_only and (candidate.suffix == ".toml" or os.sep in ref or "/" in ref):
        try:
            if candidate.is_file():
                return candidate
        except OSError as exc:  # a name too long for the file system, say
            raise ScenarioError(s.shown(ref), "", f"cannot open: {exc.strerror}") from None
        raise ScenarioError(s.shown(ref), "", "no such scenario file")
    if not is_name(ref):  # a path, from a caller that may only name (names_only), falls here too
        raise ScenarioError(s.shown(ref), "", "not a scenario name: use up to 128 letters, digits, '.', '_' "
                                             "or '-' (no paths)")
    for folder in search:
        path = folder / f"{ref}.toml"
        if path.is_file():
            return path
    known = sorted({p.stem for folder in search if folder.is_dir() for p in folder.glob("*.toml")})
    raise ScenarioError(ref, "", f"no scenario named '{ref}'{s.suggest(ref, known)} (see `mockfgt scenarios`)")


# Parsed files by path, with the bytes they were parsed from: a device start or swap reads its
# scenario (and what it extends) from disk every time, but parses it again only when it changed.
_parsed: dict[Path, tuple[bytes, dict]] = {}


def _read(path: Path) -> dict:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror}") from None
    cached = _parsed.get(path)
    if cached is None or cached[0] != content:
        try:
            cached = (content, tomllib.loads(content.decode("utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(str(path), "", f"not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ScenarioError(str(path), "", f"not valid TOML: not UTF-8 text (byte {exc.start})") from None
        except RecursionError:
            raise ScenarioError(str(path), "", "not valid TOML: arrays or tables nested too deeply") from None
        _parsed[path] = cached
    return _copy(cached[1])  # callers merge and keep what they get


_IMMUTABLE = (str, int, float, bool, type(None), dt.date, dt.time)  # what else TOML holds: dates, times


def _copy(value):
    """A copy of parsed TOML: new tables and arrays, the same immutable values (deepcopy is 5x slower)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)  # anything a kind's schema made that is neither


def _copy_scenario(validated: Scenario) -> Scenario:
    """A caller's own copy of a validated scenario: its tables and lists new, as deepcopy would make them."""
    return replace(validated, **{f.name: _copy(getattr(validated, f.name)) for f in dataclass_fields(validated)
                                 if isinstance(getattr(validated, f.name), (dict, list))})


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve(path: Path, search: list[Path], chain: tuple[Path, ...] = ()) -> dict:
    real = path.resolve()
    if real in chain:
        names = " -> ".join(p.stem for p in (*chain, real))
        raise ScenarioError(str(path), "extends", f"circular: {names}")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(str(path), "extends", f"the chain of extends is deeper than {MAX_EXTENDS_DEPTH} files")
    data = _read(path)
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(str(path), "extends", "expected the name of another scenario")
    try:
        parent_path = _locate(parent, [path.parent, *search])
    except ScenarioError as exc:
        raise ScenarioError(str(path), "extends", exc.message) from None
    return merge(_resolve(parent_path, search, (*chain, real)), data)


def load(ref: str | os.PathLike, *, search: list[Path] | None = None, names_only: bool = False) -> Scenario:
    """Load a scenario by catalogue name ('expired-cert') or by file path, with extends resolved.

    ``names_only``: ``ref`` comes from someone other than the operator (the control API), so it must be a
    name found on the search path; a path, even a relative one, is refused before anything is opened.
    """
    folders = search_path(search)
    path = _locate(str(ref), folders, names_only=names_only)
    try:
        data = _resolve(path, folders)
    except ScenarioError as exc:
        if exc.source == str(path):
            raise
        # The fault is in a file this one extends: still name this file first, then the culprit.
        where = f"{exc.key}: " if exc.key else ""
        raise ScenarioError(str(path), "extends", f"{exc.source}, which it extends, is broken: {where}{exc.message}") from None
    data.pop("extends", None)
    _take_over_uses(data, path, folders)
    # Validating (the schema, then a dry run that builds the device) costs most of a load, and a
    # device's every swap and start by name loads: the same content validates once per process.
    # The key is the merged content itself, so a rewritten file is seen; each caller gets a copy.
    key = (path.stem, str(path), json.dumps(data, sort_keys=True, default=repr))
    validated = _VALIDATED.get(key)
    if validated is None:
        validated = validate(data, name=path.stem, source=str(path))
        if len(_VALIDATED) >= VALIDATED_CACHE_SIZE:
            _VALIDATED.pop(next(iter(_VALIDATED)), None)  # the oldest entry
        _VALIDATED[key] = validated
    return _copy_scenario(validated)


#: What a phase's ``use`` takes from the named scenario's own file: its fault, where it is not in [device].
USE_TABLES = ("tls", "connection", "setup", "client")


def _take_over_uses(data: dict, path: Path, folders: list[Path]) -> None:
    """A phase's ``use = "expired-cert"`` enters that scenario's fault: its own file's [tls] and
    [connection] (as set-tls / set-connection), its setup operations and its [client] changes come
    first among the phase's, and its expect is the phase's unless the phase says otherwise. The
    device's state (keys, sessions, accounts) is kept, which is why a scenario whose fault lies in its
    [device] seed cannot be used: taking that over would replace every credential the agent holds."""
    phases = data.get("phases")
    if not isinstance(phases, list):
        return
    data["phases"] = [_taken_over(phase, f"phases[{i}].use", data, path, folders)
                      if isinstance(phase, dict) and "use" in phase else phase for i, phase in enumerate(phases)]


def _taken_over(phase: dict, key: str, data: dict, path: Path, folders: list[Path]) -> dict:
    name = phase["use"]
    if not isinstance(name, str):
        raise ScenarioError(str(path), key, "expected the name of a catalogue scenario, e.g. \"expired-cert\"")
    try:
        used = _locate(name, folders, names_only=True)
        own, merged = _read(used), _resolve(used, folders)
    except ScenarioError as exc:
        raise ScenarioError(str(path), key, exc.message) from None
    for table in ("device", "phases"):
        if table in own:
            raise ScenarioError(str(path), key, f"'{name}' has its fault in [{table}], which a phase cannot take over "
                                                "(a phase keeps the device's keys and sessions); write the change "
                                                "as the phase's setup operations, or use one whose fault is in "
                                                f"{', '.join(USE_TABLES)}")
    kind = (data.get("device") or {}).get("kind", DEFAULT_KIND)
    used_kind = (merged.get("device") or {}).get("kind", DEFAULT_KIND)
    if used_kind != kind:
        raise ScenarioError(str(path), key, f"'{name}' is a {used_kind} scenario; this device is a {kind}")
    out = dict(phase)
    out["setup"] = ([{"op": "set-tls", **own["tls"]}] if own.get("tls") else []) + (
        [{"op": "set-connection", **own["connection"]}] if own.get("connection") else []) + [
        *own.get("setup", []), *phase.get("setup", [])]
    out["client"] = {**own.get("client", {}), **phase.get("client", {})}
    if "expect" not in phase:  # the used scenario's expectations, both, or the phase's own
        out.update({k: merged[k] for k in ("expect", "expect_insecure", "also_acceptable", "also_acceptable_reason")
                    if k in merged})
    return out


VALIDATED_CACHE_SIZE = 256
_VALIDATED: dict[tuple[str, str, str], Scenario] = {}


def validate(data: dict, *, name: str, source: str) -> Scenario:
    device = data.get("device")
    device_kind = device.get("kind", DEFAULT_KIND) if isinstance(device, dict) else DEFAULT_KIND
    try:
        known = kinds()
    except KindError as exc:
        raise ScenarioError(source, "device.kind", str(exc)) from None
    if device_kind not in known:
        raise ScenarioError(source, "device.kind", f"'{device_kind}' is not a device kind; allowed: {', '.join(known)}")
    kind = known[device_kind]
    try:
        checked = scenario_spec(kind).check(data, "")
        if checked["expect_insecure"] is None:
            checked["expect_insecure"] = checked["expect"]
        check_also_acceptable(checked)
        if checked["shown_by"] is None:
            client = checked["client"]
            logs_in = client["auth"] == "password" and client.get("session") != "expired"  # a kept key: no login
            checked["shown_by"] = "login" if logs_in else "status"
        check_phases(checked["phases"], kind.actions)
        _dry_run(kind, checked)
    except s.SchemaError as exc:
        raise ScenarioError(source, exc.key, exc.message) from None
    checked.pop("extends")
    return Scenario(name=name, source=source, raw=data, **checked)


def _dry_run(kind: DeviceKind, checked: dict) -> None:
    """Build the state and replay setup and remedy once, so a bad seed or operation fails at load time."""
    try:
        state = kind.build_state(checked["device"])
    except s.SchemaError:  # the kind names the refused object itself
        raise
    except Exception as exc:  # a seed object the device would refuse
        raise s.SchemaError("device", f"the device refuses this configuration: {exc}") from None
    known_users = kind.users(state)
    user = checked["client"]["user"]
    if checked["client"]["auth"] == "password":
        _check_admin(kind, state, user)
    elif user is not None and user not in known_users:
        raise s.SchemaError("client.user", f"'{user}' is not a user of this device; known: {', '.join(known_users)}")
    tls = dict(checked["tls"])
    phased = [(f"phases[{i}].setup", phase["setup"]) for i, phase in enumerate(checked["phases"])]
    for section, ops in (("setup", checked["setup"]), *phased, ("remedy.device", checked["remedy"]["device"])):
        for i, op in enumerate(ops):
            if op["op"] == "set-tls":  # the device's TLS as this operation leaves it must work too
                tls.update({k: v for k, v in op.items() if k != "op" and v is not None})
                check_tls(tls, f"{section}[{i}]")
            if op["op"] in GENERIC_OPERATIONS:
                continue
            try:
                kind.apply(state, op)
            except s.SchemaError as exc:
                raise s.SchemaError(f"{section}[{i}].{exc.key}", exc.message) from None
            except ValueError as exc:
                raise s.SchemaError(f"{section}[{i}]", str(exc)) from None


def _check_admin(kind: DeviceKind, state, user: str | None) -> None:
    """A password agent needs an admin to log in as (a kind that is no PasswordLogins has none)."""
    if not isinstance(kind, PasswordLogins):
        raise s.SchemaError("client.auth", f"a {kind.name} here has no password logins; allowed: token")
    admins = kind.admins(state)
    if not admins:
        raise s.SchemaError("client.auth", "'password' needs an administrator in device.admins to log in as")
    if user is not None and user not in admins:
        raise s.SchemaError("client.user", f"'{user}' is not an admin of this device; admins: {', '.join(admins)}"
                                           f"{s.suggest(user, admins)}")


def catalogue(search: list[Path] | None = None) -> list[Scenario]:
    """Every scenario found on the search path (earlier folders win on equal names), sorted by name.

    Never empty: finding no scenario at all is a ScenarioError naming the folders searched.
    """
    folders = search_path(search)
    seen: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                seen.setdefault(path.stem, path)
    if not seen:
        raise ScenarioError(", ".join(str(f) for f in folders), "", "no scenario files (*.toml) found")
    return [load(path) for _, path in sorted(seen.items())]
