"""Property-based requests against the FortiOS REST API and FortiManager JSON-RPC surfaces.

Hypothesis draws a request (method, path, query, headers, credentials, body) and sends it byte for
byte over a keep-alive TLS connection (:mod:`stress.wire`). For every request:

- no unhandled exception: no ERROR record in the ``mockfgt`` loggers (see :mod:`stress.watch`);
- the device answers, never with a Python traceback, and a FortiOS 500 carries an error code;
- a refused request changes no state (CMDB tables, revision, keys; FMG objects, locks, sessions);
- the device keeps serving: a well-formed request on another connection is answered correctly.

Each example starts from the scenario's initial state (``device.reset()``, a few milliseconds), so
examples are independent and a failure shrinks to one minimal request.
"""

from __future__ import annotations

import copy
import json
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings, strategies as st

from mockfgt.fortimanager.wire import ROUTES

from .watch import ErrorLog
from .wire import Answer, Wire, build, one_shot

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FORTIGATE_SCENARIO = SCENARIOS / "fgt-fuzz.toml"
FORTIMANAGER_SCENARIO = SCENARIOS / "fmg-fuzz.toml"
OVERSIZE = 16 * 1024 * 1024 + 1  # one byte over the devices' body limit

#: How many examples each surface gets: a quick, reproducible run in `make test`, a long random one in `make stress`.
PROFILES = {
    "test": settings(max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True,
                     suppress_health_check=list(HealthCheck)),
    "stress": settings(max_examples=2000, deadline=None, database=None, print_blob=True,
                       suppress_health_check=list(HealthCheck)),
}

# -- building blocks --------------------------------------------------------------------------------
def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of ``choices`` with the given weights (``st.one_of`` does not weigh); shrinks towards the first."""
    buckets = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(buckets) - 1).flatmap(lambda i: buckets[i])


TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
ODD_TEXT = ["", " ", "\ud800", "\x00", "é", "𝄞", "%", "%ff", "a" * 300, "..", "../..", "'", '"', "\\", "*", "0",
            "-1", "99999999999999999999", "1e309", "NaN", "null", "true", "[]", "{}"]
NAMES = ["seed-a", "seed/b", "seed-g", "seed-grp", "seed-b", "new-1", "agent", "admin", "root", "guest", "branch"]

_odd_methods = st.sampled_from([b"PATCH", b"HEAD", b"OPTIONS", b"PROPFIND", b"TRACE", b"CONNECT", b"get", b"MKCOL"])
_any_method = st.text(TOKEN_CHARS, min_size=1, max_size=12).map(str.encode)
methods = weighted((8, st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE"])), (1, _odd_methods), (1, _any_method))
texts = st.one_of(st.sampled_from(ODD_TEXT + NAMES), st.text(max_size=40))
# Bytes that may stand in a request target: anything but space, CR, LF, '?' and '#'.
raw_target_bytes = st.binary(min_size=1, max_size=8).map(
    lambda b: bytes(c for c in b if c not in b" \r\n?#") or b"x")


def _encode(text: str) -> bytes:
    return quote(text.encode("utf-8", "surrogatepass"), safe="").encode()


segments = st.one_of(
    st.sampled_from([n.encode() for n in ("seed-a", "seed%2Fb", "seed-grp", "seed-g", "", ".", "..", "%2e%2e",
                                          "%ff", "%00", "%2F", "name%20x", "0", "-1", "*", "10.0.0.0", "8")]),
    texts.map(_encode),
    raw_target_bytes,
)


def targets(prefixes: list[str], max_segments: int = 2):
    """A request target: a known prefix, random segments, maybe a query, sometimes absolute-form."""
    query_pairs = st.lists(st.tuples(
        st.one_of(st.sampled_from(["vdom", "global", "filter", "format", "start", "count", "action", "access_token",
                                   "skip", "datasource", "with_meta", "key", "scope"]), texts),
        st.one_of(st.sampled_from(["root", "guest", "*", "root,guest", "nope", "1", "true", "schema", "default",
                                   "name==seed-a", "name=@seed,subnet!@x", "name|subnet", "-5", "9" * 30]), texts),
    ), max_size=4)

    @st.composite
    def target(draw) -> tuple[bytes, bool]:
        path = draw(st.sampled_from(prefixes)).encode()
        for segment in draw(st.lists(segments, max_size=max_segments)):
            path += b"/" + segment
        if draw(st.booleans()):
            path += b"/"
        if draw(st.integers(0, 9)) == 0:
            path = path.replace(b"/", b"//", 1)
        pairs = draw(query_pairs)
        raw_query = draw(st.one_of(st.none(), raw_target_bytes))
        query = b"&".join(_encode(k) + b"=" + _encode(v) for k, v in pairs)
        if raw_query:
            query += b"&" + raw_query
        wants_token_in_query = draw(st.integers(0, 5)) == 0
        if query or wants_token_in_query:
            path += b"?" + query
        if draw(st.integers(0, 19)) == 0:
            path = b"https://127.0.0.1" + path
        return path, wants_token_in_query

    return target()


header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
    .map(lambda t: t.encode("latin-1")),
    st.binary(max_size=20).map(lambda b: bytes(c for c in b if c not in b"\r\n")),
)
extra_headers = st.lists(st.tuples(
    st.one_of(st.sampled_from([b"Content-Type", b"Accept", b"Cookie", b"X-CSRFTOKEN", b"Expect", b"Connection",
                               b"X-Forwarded-For", b"User-Agent", b"Accept-Encoding", b"Host", b"Origin"]),
              st.text(TOKEN_CHARS, min_size=1, max_size=20).map(str.encode)),
    st.one_of(st.sampled_from([b"application/json", b"application/x-www-form-urlencoded", b"text/plain",
                               b"multipart/form-data; boundary=x", b"100-continue", b"close", b"keep-alive",
                               b"APSCOOKIE_1=x; ccsrftoken=y", b"gzip"]), header_values),
), max_size=4)
#: How the request authenticates; resolved against the live credentials when it is sent.
auths = st.sampled_from(["valid"] * 5 + ["none", "wrong", "empty-bearer", "basic", "garbage"])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=False), texts)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(["name", "subnet", "member", "type", "comment",
                                                                       "color", "uuid", "q_origin_key"]), texts),
                                            inner, max_size=4)),
    max_leaves=12,
)
deep_bodies = st.tuples(st.integers(60, 5000), st.booleans()).map(
    lambda t: b"[" * t[0] + b"]" * t[0] if t[1] else b'{"a":' * t[0] + b"1" + b"}" * t[0])


def _json_bytes(value) -> bytes:
    return json.dumps(value).encode()


def bodies(objects) -> st.SearchStrategy:
    """No body, JSON shaped for the surface, any JSON, bytes, broken UTF-8, deep nesting, large text, or a claimed oversize."""
    return weighted(
        (2, st.none()),
        (6, objects.map(_json_bytes)),
        (1, json_values.map(_json_bytes)),
        (1, st.binary(max_size=200)),
        (1, st.sampled_from([b'{"name": "\xff\xfe"}', b"\xc3\x28", b'{"name": "seed-a"', b"username=admin&secretkey=x",
                             b"[]", b'""', b"null", b"0", b"{" * 3])),
        (1, deep_bodies),
        (1, st.integers(1, 2_000_000).map(lambda n: b'{"name": "big", "comment": "' + b"a" * n + b'"}')),
        (1, st.just("claimed-oversize")),
    )


@dataclass
class Request:
    method: bytes
    target: bytes
    token_in_query: bool
    auth: str
    headers: list[tuple[bytes, bytes]]
    body: bytes | str | None

    def encode(self, token: str) -> bytes:
        headers = list(self.headers)
        auth = {"valid": b"Bearer " + token.encode(), "wrong": b"Bearer " + b"W" * 30, "empty-bearer": b"Bearer ",
                "basic": b"Basic YWRtaW46YWRtaW4=", "garbage": b"\xff\xfe token"}.get(self.auth)
        if auth is not None:
            headers.append((b"Authorization", auth))
        target = self.target
        if self.token_in_query:
            target += (b"&" if b"?" in target and not target.endswith(b"?") else b"") + b"access_token=" + token.encode()
        if self.body == "claimed-oversize":
            return build(self.method, target, headers, b"{}", claimed_length=OVERSIZE)
        return build(self.method, target, headers, self.body)


def requests_for(prefixes: list[str], body_strategy, method_strategy=methods, max_segments: int = 2):
    return st.builds(
        lambda method, target, auth, headers, body: Request(method, target[0], target[1], auth, headers, body),
        method_strategy, targets(prefixes, max_segments), auths, extra_headers, body_strategy,
    )


# -- FortiOS ------------------------------------------------------------------------------------------
FORTIOS_PREFIXES = [
    "/api/v2/cmdb/firewall/address", "/api/v2/cmdb/firewall/address", "/api/v2/cmdb/firewall/addrgrp",
    "/api/v2/cmdb/firewall/address6", "/api/v2/cmdb/firewall/addrgrp6", "/api/v2/cmdb/system/global",
    "/api/v2/cmdb/system/interface", "/api/v2/cmdb/system/api-user", "/api/v2/monitor/system/status",
    "/api/v2/monitor/system/api-user/generate-key", "/api/v2/monitor/system/external-resource/dynamic",
    "/api/v2/monitor/system/interface", "/api/v2/monitor/license/status", "/api/v2/authentication",
    "/logincheck", "/logout", "/api/v2", "/api/v2/cmdb", "/api/v2/monitor", "", "/jsonrpc", "/api/v1/cmdb",
]
fortios_objects = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(NAMES), texts)},
    optional={
        "subnet": st.one_of(st.sampled_from(["192.0.2.9/32", "10.0.0.0 255.0.0.0", "300.1.1.1/8", "::1/128"]),
                            json_values),
        "member": st.one_of(st.lists(st.fixed_dictionaries({"name": st.sampled_from(NAMES)}), max_size=3),
                            json_values),
        "type": st.one_of(st.sampled_from(["ipmask", "fqdn", "iprange", "folder", "bogus"]), json_values),
        "fqdn": texts, "comment": json_values, "color": json_values, "ip6": texts,
        "api-user": st.one_of(st.sampled_from(["agent", "nobody"]), json_values),
        "commands": json_values, "username": texts, "secretkey": texts, "request_key": json_values,
        "exclude-member": json_values,
    },
)
fortios_requests = requests_for(FORTIOS_PREFIXES, bodies(fortios_objects))


def fortios_snapshot(state) -> dict:
    with state.lock:
        return {
            "cmdb": {name: copy.deepcopy(vdom.tables) for name, vdom in state.vdoms.items()},
            "revision": state.revision,
            "tokens": {name: (u.token, u.enabled, list(map(str, u.trusthosts))) for name, u in state.api_users.items()},
            "profiles": {name: dict(p.access) for name, p in state.accprofiles.items()},
            "external": copy.deepcopy(state.external_resources),
        }


def fortios_refused(answer: Answer) -> bool:
    return answer.status >= 400


def fortios_answer_problems(answer: Answer) -> list[str]:
    """What no FortiOS answer may look like, however bad the request."""
    problems = []
    if b"Traceback" in answer.body:
        problems.append("a Python traceback on the wire")
    if answer.is_json:
        try:
            envelope = json.loads(answer.body)
        except ValueError:
            return problems + ["a JSON content type with a body that is not JSON"]
        if answer.status == 500 and isinstance(envelope, dict) and "error" not in envelope:
            problems.append("a 500 without a FortiOS error code")
    return problems


def fortios_healthy(wire: Wire, device) -> bool:
    answer = wire.exchange(build(b"GET", b"/api/v2/monitor/system/status",
                                 [(b"Authorization", f"Bearer {device.token}".encode())], None))
    return answer is not None and answer.status == 200 and json.loads(answer.body)["status"] == "success"


# -- FortiManager -------------------------------------------------------------------------------------
def _route_url(pattern: tuple[str, ...], fill: list[str], tail: list[str], leading: bool) -> str:
    parts, filler = [], iter(fill)
    for piece in pattern:
        if piece == "*":
            parts.append(next(filler, "root"))
        elif piece == "**":
            parts.extend(tail)
        else:
            parts.append(piece)
    return ("/" if leading else "") + "/".join(parts)


_route_urls = st.builds(_route_url, st.sampled_from([r[0] for r in ROUTES]),
              st.lists(st.one_of(st.sampled_from(["root", "branch", "address", "addrgrp", "seed-a", "seed-grp",
                                                  "agent", "admin", "1", "0", "nope", "seed\\/x"]), texts),
                       min_size=3, max_size=3),
              st.lists(st.sampled_from(["", "x", "root"]), max_size=2), st.booleans())
urls = weighted((8, _route_urls), (1, texts), (1, json_values))
fmg_filters = st.one_of(json_values, st.lists(st.one_of(st.sampled_from(["name", "==", "like", "in", "contain", "&&",
                                                                         "||", "seed%", "!="]), json_values),
                                              max_size=5))
fmg_data = weighted(
    (3, st.fixed_dictionaries({"name": st.one_of(st.sampled_from(NAMES), texts)},
                              optional={"subnet": st.one_of(st.sampled_from(["192.0.2.9/32", "10.0.0.1 255.0.0.0"]),
                                                            json_values),
                                        "member": json_values, "type": json_values, "fqdn": json_values,
                                        "user": texts, "passwd": texts, "workspace-mode": json_values,
                                        "rpc-permit": json_values, "trusthost1": json_values, "adom": json_values,
                                        "scope": json_values})),
    (1, json_values),
)
fmg_items = st.fixed_dictionaries(
    {"url": urls},
    optional={"data": fmg_data, "filter": fmg_filters, "fields": json_values, "range": json_values,
              "option": json_values, "loadsub": json_values},
)
_rpc_methods = st.sampled_from(["get", "set", "add", "update", "delete", "exec", "clone", "move", "replace", "unset"])
_params = st.lists(fmg_items, min_size=1, max_size=3)
fmg_envelopes = st.fixed_dictionaries(
    {"method": weighted((8, _rpc_methods), (1, json_values)),
     "params": weighted((8, _params), (1, fmg_items), (1, json_values))},
    optional={"id": json_scalars, "session": st.one_of(st.just("<session>"), json_values),
              "verbose": json_scalars, "jsonrpc": json_scalars},
)
_envelope_bytes = fmg_envelopes.map(_json_bytes)
fmg_requests = requests_for(["/jsonrpc"] * 12 + ["/jsonrpc/x", "/", "/JSONRPC", "/api/v2/monitor/system/status",
                                                "/sys/login/user"],
                            weighted((3, _envelope_bytes), (1, bodies(fmg_envelopes))),
                            weighted((8, st.just(b"POST")), (1, _odd_methods), (1, _any_method)), max_segments=0)


def fortimanager_snapshot(state) -> dict:
    with state.lock:
        return {
            "adoms": {name: (copy.deepcopy(a.committed), copy.deepcopy(a.working), a.lock and a.lock.owner, a.dirty)
                      for name, a in state.adoms.items()},
            "admins": {name: (a.token, a.password, a.rpc_permit, a.profile, list(a.adoms), list(a.trusthost))
                       for name, a in state.admins.items()},
            "sessions": sorted(state.sessions),
            "settings": dict(state.settings),
            "tasks": sorted(state.tasks),
        }


def fortimanager_refused(answer: Answer) -> bool:
    if answer.status != 200 or not answer.is_json:
        return True
    results = json.loads(answer.body).get("result", [])
    return all(isinstance(r, dict) and (r.get("status") or {}).get("code") != 0 for r in results)


def fortimanager_answer_problems(answer: Answer) -> list[str]:
    problems = ["a Python traceback on the wire"] if b"Traceback" in answer.body else []
    if answer.status == 200:
        try:
            envelope = json.loads(answer.body)
        except ValueError:
            return problems + ["HTTP 200 with a body that is not JSON"]
        if not isinstance(envelope, dict) or not isinstance(envelope.get("result"), list) or not envelope["result"]:
            problems.append("HTTP 200 without a JSON-RPC result list")
        elif any(not isinstance(r.get("status", {}).get("code"), int) for r in envelope["result"]):
            problems.append("a result entry without a status code")
    return problems


def fortimanager_healthy(wire: Wire, device) -> bool:
    body = json.dumps({"id": 1, "method": "get", "params": [{"url": "/sys/status"}]}).encode()
    answer = wire.exchange(build(b"POST", b"/jsonrpc", [(b"Authorization", f"Bearer {device.token}".encode()),
                                                       (b"Content-Type", b"application/json")], body), b"POST")
    return answer is not None and answer.status == 200 and json.loads(answer.body)["result"][0]["status"]["code"] == 0


# -- the run ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Surface:
    name: str
    requests: st.SearchStrategy
    snapshot: object
    refused: object
    answer_problems: object
    healthy: object


FORTIOS = Surface("FortiOS REST", fortios_requests, fortios_snapshot, fortios_refused, fortios_answer_problems,
                  fortios_healthy)
FORTIMANAGER = Surface("FortiManager JSON-RPC", fmg_requests, fortimanager_snapshot, fortimanager_refused,
                       fortimanager_answer_problems, fortimanager_healthy)


@dataclass
class FuzzFigures:
    surface: str
    requests: int = 0
    refused: int = 0
    unanswered: int = 0
    accepted: int = 0
    statuses: Counter = field(default_factory=Counter)
    unhandled: int = 0


def fuzz(device, surface: Surface, profile: str = "test", errors: ErrorLog | None = None) -> FuzzFigures:
    """Throw ``surface``'s random requests at ``device``; raises AssertionError (shrunk) on the first violation."""
    figures = FuzzFigures(surface.name)
    wire, probe = Wire(device), Wire(device)
    log = errors or ErrorLog()

    @settings(PROFILES[profile])
    @given(request=surface.requests)
    def one_request(request: Request) -> None:
        device.reset()
        if surface is FORTIMANAGER and isinstance(request.body, bytes) and b"<session>" in request.body:
            session = device.state.open_session("admin")
            request.body = request.body.replace(b"<session>", session.encode())
        before, mark = surface.snapshot(device.state), len(log)
        answer = wire.exchange(request.encode(device.token), request.method)
        after = surface.snapshot(device.state)
        figures.requests += 1
        unhandled = log.since(mark)
        figures.unhandled += len(unhandled)
        assert not unhandled, f"unhandled exception:\n{log.describe(unhandled)}"
        if answer is None:
            figures.unanswered += 1
            assert request.body == "claimed-oversize", "the device closed the connection without an answer"
        else:
            figures.statuses[answer.status] += 1
            problems = surface.answer_problems(answer) if request.method != b"HEAD" else []
            assert not problems, f"{problems}: {answer.status} {answer.body[:300]!r}"
            if surface.refused(answer):
                figures.refused += 1
                assert before == after, f"a refused request ({answer.status}) changed the state"
            else:
                figures.accepted += 1
        assert surface.healthy(probe, device), "the device stopped answering well-formed requests"

    with log if errors is None else _nothing():
        try:
            one_request()
        finally:
            wire.close()
            probe.close()
    return figures


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


# -- bytes that are not HTTP at all -------------------------------------------------------------------
GARBAGE = [
    b"\r\n\r\n", b"GET\r\n\r\n", b"GET /\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET /a b c HTTP/1.1\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\x16\x03\x01\x00\x05hello\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"GET / HTTP/1.1\r\n folded: header\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\r\n  continued\r\n\r\n", b"GET /\x00 HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    b"POST /jsonrpc HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /jsonrpc HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /jsonrpc HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /jsonrpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /jsonrpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n",
    b"GET /api/v2/monitor/system/status?access_token=SECRET-IN-A-BROKEN-LINE x HTTP/1.1\r\n\r\n",
]
garbage = st.one_of(st.sampled_from(GARBAGE), st.binary(min_size=1, max_size=300).map(lambda b: b + b"\r\n\r\n"),
                    st.lists(st.sampled_from([b"GET", b" ", b"/", b"HTTP/1.1", b"\r\n", b":", b"\x00", b"\xff",
                                              b"Host", b"%", b"\t"]), min_size=1, max_size=30)
                    .map(lambda parts: b"".join(parts) + b"\r\n\r\n"))


def throw_garbage(device, surface: Surface, profile: str = "test", errors: ErrorLog | None = None) -> FuzzFigures:
    """Send bytes that are not a well-formed request, each on its own connection; nothing may break or change."""
    figures = FuzzFigures(f"{surface.name} (not HTTP)")
    probe = Wire(device)
    log = errors or ErrorLog()

    @settings(PROFILES[profile], max_examples=max(20, PROFILES[profile].max_examples // 3))
    @given(data=garbage)
    def one_connection(data: bytes) -> None:
        before, mark = surface.snapshot(device.state), len(log)
        answer = one_shot(device, data)
        figures.requests += 1
        unhandled = log.since(mark)
        figures.unhandled += len(unhandled)
        assert not unhandled, f"unhandled exception:\n{log.describe(unhandled)}"
        assert b"Traceback" not in answer
        status = answer[9:12] if answer.startswith(b"HTTP/1.") else b"---"
        figures.statuses[status.decode("latin-1")] += 1
        assert surface.snapshot(device.state) == before, "bytes that are not a request changed the state"
        assert surface.healthy(probe, device), "the device stopped answering well-formed requests"

    with log if errors is None else _nothing():
        try:
            one_connection()
        finally:
            probe.close()
    return figures
