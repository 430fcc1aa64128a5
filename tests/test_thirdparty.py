"""Independent Fortinet client libraries from PyPI against the mock devices (marker ``thirdparty``).

- fortigate-api (FortiOS REST, token login): the normal flow on a healthy FortiGate (status, create an
  address, put it in a group, take it out, delete both), then every catalogue scenario it can express,
  classified as its users would (``mockfgt.classify`` on what the library raises or returns).
- pyFGT (FortiOS REST, API key; sends keyword arguments as a JSON body, even on GET): the same.
- pyFMG (FortiManager JSON-RPC, API key): status, an address and a group in the ADOM, logout; and the
  API-key faults. These run once the catalogue has FortiManager scenarios (``fmg-healthy``).

Each library also runs its own password login against the mock: fortigate-api through /logincheck
with cookies and the CSRF header, pyFGT through /api/v2/authentication session keys, pyFMG through
exec /sys/login/user; and meets a wrong password.

``make test`` runs these with the rest of the suite; ``pytest -m thirdparty`` runs them alone.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

import mockfgt
from mockfgt.classify import classify_status
from mockfgt.codes import AUTHENTICATION, AUTHORIZATION, OK, TIMEOUT
from mockfgt.flows import Call
from mockfgt.fortimanager.client import judge_jsonrpc

from deadlines import seconds

pytestmark = [
    pytest.mark.thirdparty,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),  # verify=False is the point
]

TIMEOUT_SECONDS = seconds(5)
ADMIN, ADMIN_PASSWORD = "netops", "Fortinet-Lab-2024!"  # fgt-healthy's admin
STALL_TIMEOUT = 1.0  # a stall holds until the client leaves; a client that waits 1 s reports 202004
FORTIGATE_SCENARIOS = [sc for sc in mockfgt.catalogue() if sc.kind == "fortigate"]
HAS_FORTIMANAGER = any(sc.name == "fmg-healthy" for sc in mockfgt.catalogue())
# The scenario's agent logs in with a password (its login, CSRF and banner habits are the fault):
# these checks play API-token agents, and a token-less client against it would pass by accident.
TOKEN_AGENTS_ONLY = "the scenario's agent logs in with a password; this check plays API-token agents"


def library(module: str):
    """Import a third-party library, failing (not skipping) when it is missing: CI must run these."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        pytest.fail(f"{module} is not installed: pip install -e '.[thirdparty]' (make test does it)")


@pytest.fixture
def trust(monkeypatch):
    """fortigate-api takes verify=True/False only; requests then reads the CA from REQUESTS_CA_BUNDLE."""

    def use(ca_bundle: str | bool) -> bool:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NO_PROXY", "*")
        if isinstance(ca_bundle, str):
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
        return ca_bundle is not False

    return use


# -- fortigate-api ------------------------------------------------------------------------------------
def fortigate_api(client, verify: bool):
    api_module = library("fortigate_api")
    url = urlsplit(client.url)
    return api_module.FortiGateAPI(host=url.hostname, port=url.port, scheme=url.scheme, token=client.token,
                                   verify=verify, vdom=client.vdom or "root", timeout=TIMEOUT_SECONDS)


def test_fortigate_api_normal_flow(fortigate, trust):
    api = fortigate_api(fortigate.client, trust(fortigate.ca_bundle))
    with api:
        addresses, groups = api.cmdb.firewall.address, api.cmdb.firewall.addrgrp
        status = api.fortigate.get("api/v2/monitor/system/status")
        assert status.status_code == 200 and status.json()["results"]["hostname"] == "fgt-mock"

        assert addresses.create({"name": "agent-10.0.0.1", "subnet": "10.0.0.1/32"}).status_code == 200
        assert addresses.create({"name": "agent-10.0.0.2", "subnet": "10.0.0.2 255.255.255.255"}).status_code == 200
        assert addresses.get(name="agent-10.0.0.1")[0]["subnet"] == "10.0.0.1 255.255.255.255"
        members = [{"name": "agent-10.0.0.1"}, {"name": "agent-10.0.0.2"}]
        assert groups.create({"name": "agent-group", "member": members}).status_code == 200

        # In use by the group: FortiOS refuses the delete (-23) and the library returns the answer.
        refused = addresses.delete("agent-10.0.0.1")
        assert (refused.status_code, refused.json()["error"]) == (500, -23)

        assert groups.update({"name": "agent-group", "member": [{"name": "agent-10.0.0.2"}]}).status_code == 200
        assert [m["name"] for m in groups.get(name="agent-group")[0]["member"]] == ["agent-10.0.0.2"]
        assert addresses.delete("agent-10.0.0.1").status_code == 200
        assert not addresses.is_exist("agent-10.0.0.1")
        assert groups.delete("agent-group").status_code == 200
        assert addresses.delete(filter="name=@agent-").status_code == 200
        assert not [a for a in addresses.get() if a["name"].startswith("agent-")]


def fortigate_api_flow(client, verify: bool) -> str:
    """The library's normal use, and the code its user reports for the first thing that fails.

    fortigate-api raises only from its login (raise_for_status) and on the network; reads that fail
    come back as empty lists (its documented behaviour), writes as responses.
    """
    api = fortigate_api(client, verify)
    try:
        api.login()
        addresses = api.cmdb.firewall.address
        addresses.get()
        if client.write:
            for response in (addresses.create({"name": "agent-probe", "subnet": "192.0.2.1/32"}),
                             addresses.delete("agent-probe")):
                if mockfgt.classify(response) != OK:
                    return mockfgt.classify(response)
    except requests.RequestException as exc:
        return mockfgt.classify(exc)
    finally:
        api.logout()
    return OK


def expressible(sc) -> str | None:
    """Why fortigate-api cannot play the scenario's agent, or None when it can."""
    if sc.client["auth"] != "token":
        return TOKEN_AGENTS_ONLY
    if sc.client["token_in"] == "query":
        return "fortigate-api always sends the token as Authorization: Bearer"
    if sc.expect == TIMEOUT:
        return "fortigate-api sends its token login without a timeout: a stalled device hangs it"
    return None


@pytest.mark.parametrize("scenario", FORTIGATE_SCENARIOS, ids=[sc.name for sc in FORTIGATE_SCENARIOS])
def test_fortigate_api_reports_the_expected_code(make_fortigate, trust, scenario):
    if reason := expressible(scenario):
        pytest.skip(reason)
    fgt = make_fortigate(scenario.name)
    assert fortigate_api_flow(fgt.client, trust(fgt.client.verify)) in scenario.acceptable()


@pytest.mark.parametrize("scenario", FORTIGATE_SCENARIOS, ids=[sc.name for sc in FORTIGATE_SCENARIOS])
def test_fortigate_api_default_verify_off_is_the_insecure_column(make_fortigate, trust, scenario):
    """fortigate-api verifies nothing unless told to: its users get expect_insecure."""
    if reason := expressible(scenario):
        pytest.skip(reason)
    fgt = make_fortigate(scenario.name)
    assert fortigate_api_flow(fgt.client, trust(False)) in scenario.acceptable(insecure=True)


# -- pyFGT ------------------------------------------------------------------------------------------
def pyfgt(client, timeout: float = TIMEOUT_SECONDS):
    fortigate = library("pyFGT.fortigate")
    return fortigate.FortiGate(urlsplit(client.url).netloc, apikey=client.token, verify_ssl=client.verify,
                               timeout=timeout, disable_request_warnings=True)


def pyfgt_code(answer) -> str:
    """pyFGT returns (http_status or 'success', body), or (100, the response) when the body is not JSON."""
    code, body = answer
    if code == 100:
        return mockfgt.classify(body)
    return mockfgt.classify(code) if isinstance(code, int) else OK


def test_pyfgt_normal_flow(fortigate):
    with pyfgt(fortigate.client) as api:
        code, status = api.get("monitor/system/status")
        assert code == "success" and status["results"]["hostname"] == "fgt-mock"  # monitor: no http_status
        assert api.post("cmdb/firewall/address", name="agent-10.0.0.1", subnet="10.0.0.1/32")[0] == 200
        code, rows = api.get("cmdb/firewall/address", "filter=name==agent-10.0.0.1")
        assert code == 200 and rows["results"][0]["subnet"] == "10.0.0.1 255.255.255.255"
        assert api.post("cmdb/firewall/addrgrp", name="agent-group", member=[{"name": "agent-10.0.0.1"}])[0] == 200
        code, group = api.get("cmdb/firewall/addrgrp/agent-group", vdom="root")  # a JSON body on a GET
        assert code == 200 and group["results"][0]["member"][0]["name"] == "agent-10.0.0.1"
        assert api.put("cmdb/firewall/addrgrp/agent-group", member=[])[0] == 200  # empty groups: 7.2+
        assert api.delete("cmdb/firewall/address/agent-10.0.0.1")[0] == 200
        assert api.delete("cmdb/firewall/addrgrp/agent-group")[0] == 200
        assert api.get("cmdb/firewall/address/agent-10.0.0.1")[0] == 404


def pyfgt_flow(client) -> str:
    api = pyfgt(client, STALL_TIMEOUT)
    vdom = (f"vdom={client.vdom}",) if client.vdom else ()
    try:
        with api:
            calls = [lambda: api.get("monitor/system/status", *vdom), lambda: api.get("cmdb/firewall/address", *vdom)]
            if client.write:
                calls += [lambda: api.post("cmdb/firewall/address", *vdom, name="agent-probe", subnet="192.0.2.1/32"),
                          lambda: api.delete("cmdb/firewall/address/agent-probe", *vdom)]
            for call in calls:
                if (code := pyfgt_code(call())) != OK:
                    return code
    except Exception as exc:  # pyFGT wraps requests' errors in its own; classify follows the chain
        return mockfgt.classify(exc)
    return OK


@pytest.mark.parametrize("scenario", FORTIGATE_SCENARIOS, ids=[sc.name for sc in FORTIGATE_SCENARIOS])
def test_pyfgt_reports_the_expected_code(make_fortigate, scenario):
    if scenario.client["auth"] != "token":
        pytest.skip(TOKEN_AGENTS_ONLY)
    if scenario.client["token_in"] == "query":
        pytest.skip("pyFGT always sends the token as Authorization: Bearer")
    fgt = make_fortigate(scenario.name)
    assert pyfgt_flow(fgt.client) in scenario.acceptable()


# -- pyFMG ----------------------------------------------------------------------------------------
needs_fortimanager = pytest.mark.skipif(not HAS_FORTIMANAGER, reason="no FortiManager scenarios in the catalogue yet")


def pyfmg(device, client=None):
    fortimgr = library("pyFMG.fortimgr")
    client = client or device.client
    url = urlsplit(client.url)
    return fortimgr.FortiManager(host=url.netloc, apikey=client.token, verify_ssl=client.verify,
                                 timeout=TIMEOUT_SECONDS, disable_request_warnings=True)


def adom_of(client) -> str:
    return getattr(client, "adom", None) or "root"


@needs_fortimanager
def test_pyfmg_normal_flow(make_fortimanager):
    fmg_device = make_fortimanager("fmg-healthy")
    adom = adom_of(fmg_device.client)
    objects = f"pm/config/adom/{adom}/obj/firewall"
    fmg = pyfmg(fmg_device)
    assert fmg.login()[0] == 0
    try:
        code, status = fmg.get("/sys/status")
        assert code == 0 and status["Serial Number"]
        assert fmg.add(f"{objects}/address", name="agent-10.0.0.1", subnet=["10.0.0.1", "255.255.255.255"])[0] == 0
        assert fmg.add(f"{objects}/address", name="agent-10.0.0.2", subnet="10.0.0.2/32")[0] == 0
        code, row = fmg.get(f"{objects}/address/agent-10.0.0.2")
        assert code == 0 and row["subnet"] == ["10.0.0.2", "255.255.255.255"]
        assert fmg.add(f"{objects}/addrgrp", name="agent-group", member=["agent-10.0.0.1", "agent-10.0.0.2"])[0] == 0
        assert fmg.add(f"{objects}/address", name="agent-10.0.0.1", subnet="10.0.0.1/32")[0] == -2  # exists
        assert fmg.delete(f"{objects}/addrgrp/agent-group/member", data=["agent-10.0.0.1"])[0] == 0
        code, group = fmg.get(f"{objects}/addrgrp/agent-group")
        assert code == 0 and group["member"] == ["agent-10.0.0.2"]
        assert fmg.delete(f"{objects}/address/agent-10.0.0.1")[0] == 0
        assert fmg.get(f"{objects}/address/agent-10.0.0.1")[0] == -3
        assert fmg.delete(f"{objects}/addrgrp/agent-group")[0] == 0
        assert fmg.delete(f"{objects}/address/agent-10.0.0.2")[0] == 0
    finally:
        assert fmg.logout()[0] == 0


def pyfmg_flow(device) -> str:
    """pyFMG's normal use with the scenario's key; the code for the first non-zero JSON-RPC status."""
    client = device.client
    objects = f"pm/config/adom/{adom_of(client)}/obj/firewall/address"
    fmg = pyfmg(device)
    fmg.login()  # with an API key pyFMG sends nothing that can fail here but the workspace probe
    steps = [("status", lambda: fmg.get("/sys/status")), ("read", lambda: fmg.get(objects))]
    if client.write:
        steps += [("write", lambda: fmg.add(objects, name="agent-probe", subnet="192.0.2.1/32")),
                  ("cleanup", lambda: fmg.delete(f"{objects}/agent-probe"))]
    try:
        for role, call in steps:
            code = judge_jsonrpc(Call(role, "POST", "/jsonrpc"), call()[0])
            if code != OK:
                return code
    finally:
        fmg.logout()
    return OK


FMG_KEY_FAULTS = [("fmg-invalid-token", AUTHENTICATION), ("fmg-token-regenerated", AUTHENTICATION),
                  ("fmg-rpc-permit-read", AUTHORIZATION), ("fmg-no-adom-access", AUTHORIZATION)]


@needs_fortimanager
@pytest.mark.parametrize("name, code", FMG_KEY_FAULTS, ids=[n for n, _ in FMG_KEY_FAULTS])
def test_pyfmg_reports_the_expected_code(make_fortimanager, name, code):
    if name not in {sc.name for sc in mockfgt.catalogue()}:
        pytest.skip(f"{name} is not in the catalogue")
    device = make_fortimanager(name)
    assert device.expect == code
    assert pyfmg_flow(device) == code


# -- every supported version is a tested baseline (issue 15 item 7) --------------------------------
BASELINES = ["fgt-healthy", "fgt-healthy-6.4", "fgt-healthy-7.0", "fgt-healthy-7.2", "fgt-healthy-7.4",
             "fgt-healthy-7.6"]
GROUP_WITH_ALL = {"name": "agent-group", "member": [{"name": "all"}]}


@pytest.mark.parametrize("baseline", BASELINES)
def test_fortigate_api_full_flow_on_every_version(make_fortigate, trust, baseline):
    """fortigate-api's normal flow on each version's healthy device: create, a group with `all` as its
    member (fortinet-api.md H.4; it failed -3 on an empty table), update, delete; the same writes again
    answer revision_changed false (H.3: automation decides "changed" from that field alone)."""
    fgt = make_fortigate(baseline)
    with fortigate_api(fgt.client, trust(fgt.ca_bundle)) as api:
        addresses, groups = api.cmdb.firewall.address, api.cmdb.firewall.addrgrp
        assert api.fortigate.get("api/v2/monitor/system/status").json()["version"] == fgt.state.version_string
        assert addresses.create({"name": "agent-10.0.0.1", "subnet": "10.0.0.1/32"}).status_code == 200
        assert groups.create(GROUP_WITH_ALL).status_code == 200
        both = {"name": "agent-group", "member": [{"name": "all"}, {"name": "agent-10.0.0.1"}]}
        first = groups.update(both)
        assert first.status_code == 200 and first.json()["revision_changed"] is True
        for write in (lambda: groups.update(both),
                      lambda: addresses.update({"name": "agent-10.0.0.1", "subnet": "10.0.0.1/32"})):
            rerun = write()
            assert rerun.status_code == 200 and rerun.json()["revision_changed"] is False
            assert rerun.json()["revision"] == rerun.json()["old_revision"]
        assert groups.delete("agent-group").status_code == 200
        assert addresses.delete("agent-10.0.0.1").status_code == 200
        assert not addresses.is_exist("agent-10.0.0.1") and addresses.is_exist("all")


@pytest.mark.parametrize("baseline", BASELINES)
def test_pyfgt_full_flow_on_every_version(make_fortigate, baseline):
    """pyFGT's normal flow on each version's healthy device, `all` as a group member (H.4), a re-run of
    the same PUT reporting no change (H.3) and a member added through the sub-table URL (H.15)."""
    fgt = make_fortigate(baseline)
    with pyfgt(fgt.client) as api:
        assert api.get("monitor/system/status")[0] == "success"
        assert api.post("cmdb/firewall/address", name="agent-10.0.0.1", subnet="10.0.0.1/32")[0] == 200
        assert api.post("cmdb/firewall/addrgrp", **GROUP_WITH_ALL)[0] == 200
        code, answer = api.post("cmdb/firewall/addrgrp/agent-group/member", name="agent-10.0.0.1")
        assert code == 200 and answer["revision_changed"] is True
        code, answer = api.put("cmdb/firewall/addrgrp/agent-group",
                               member=[{"name": "all"}, {"name": "agent-10.0.0.1"}])
        assert code == 200 and answer["revision_changed"] is False
        code, group = api.get("cmdb/firewall/addrgrp/agent-group")
        assert [m["name"] for m in group["results"][0]["member"]] == ["all", "agent-10.0.0.1"]
        assert api.delete("cmdb/firewall/addrgrp/agent-group")[0] == 200
        assert api.delete("cmdb/firewall/address/agent-10.0.0.1")[0] == 200
        assert api.get("cmdb/firewall/address/agent-10.0.0.1")[0] == 404


@pytest.mark.parametrize("baseline", BASELINES)
def test_fortigate_api_password_login_on_every_version(make_fortigate, trust, baseline):
    """fortigate-api's /logincheck login finds the version's CSRF cookie (H.1: ccsrftoken, ccsrftoken_443,
    ccsrftoken_443_<hash>); from 7.6.3 /logincheck issues no session, so the library cannot log in there."""
    fgt = make_fortigate(baseline)
    if fgt.state.version >= (7, 6, 3):
        pytest.skip("FortiOS 7.6.3+ issues no session from /logincheck: fortigate-api's password login has no path")
    url = urlsplit(fgt.url)
    api = library("fortigate_api").FortiGateAPI(host=url.hostname, port=url.port, username=ADMIN,
                                                password=ADMIN_PASSWORD, verify=trust(fgt.ca_bundle),
                                                timeout=TIMEOUT_SECONDS)
    with api:
        assert api.cmdb.firewall.addrgrp.create(GROUP_WITH_ALL).status_code == 200
        assert api.cmdb.firewall.addrgrp.delete("agent-group").status_code == 200
    assert fgt.journal.requests(path="/logout")


@pytest.mark.parametrize("baseline", BASELINES)
def test_pyfgt_password_login_on_every_version(make_fortigate, baseline):
    """pyFGT's session-key login (POST /api/v2/authentication, from 6.4.2; status 6 on 7.6) on each version."""
    fgt = make_fortigate(baseline)
    api = library("pyFGT.fortigate").FortiGate(urlsplit(fgt.url).netloc, ADMIN, ADMIN_PASSWORD,
                                               verify_ssl=fgt.ca_bundle, timeout=TIMEOUT_SECONDS,
                                               disable_request_warnings=True)
    with api:
        assert api.post("cmdb/firewall/addrgrp", **GROUP_WITH_ALL)[0] == 200
        assert api.delete("cmdb/firewall/addrgrp/agent-group")[0] == 200
    assert fgt.journal.requests(method="DELETE", path="/api/v2/authentication", status=200)


# -- password logins (issue: every library's own login flow works against the mock) ------------------


def test_fortigate_api_password_login_flow(fortigate, trust):
    """fortigate-api logs in through /logincheck and sends the ccsrftoken back on writes."""
    url = urlsplit(fortigate.url)
    api = library("fortigate_api").FortiGateAPI(host=url.hostname, port=url.port, username=ADMIN,
                                                password=ADMIN_PASSWORD, verify=trust(fortigate.ca_bundle),
                                                timeout=TIMEOUT_SECONDS)
    with api:
        status = api.fortigate.get("api/v2/monitor/system/status")
        assert status.status_code == 200 and status.json()["serial"] == fortigate.state.serial
        assert api.cmdb.firewall.address.create({"name": "pw-1", "subnet": "10.0.0.9/32"}).status_code == 200
        assert api.cmdb.firewall.address.delete("pw-1").status_code == 200
    logins = fortigate.journal.requests(path="/logincheck")
    assert logins and logins[0]["status"] == 200
    writes = fortigate.journal.requests(method="POST", path="/api/v2/cmdb/firewall/address")
    assert writes[0]["headers"].get("X-Csrftoken") == "<redacted>"  # the CSRF token went back
    assert fortigate.journal.requests(path="/logout")


def test_fortigate_api_wrong_password_is_an_authentication_failure(make_fortigate, trust):
    device = make_fortigate("password-wrong")
    url = urlsplit(device.url)
    api = library("fortigate_api").FortiGateAPI(host=url.hostname, port=url.port, username=ADMIN,
                                                password=ADMIN_PASSWORD, verify=trust(device.ca_bundle),
                                                timeout=TIMEOUT_SECONDS)
    with api:  # its login does not read /logincheck's "0": the first call then meets the 401
        status = api.fortigate.get("api/v2/monitor/system/status")
    assert device.journal.requests(path="/logincheck")[0]["status"] == 200
    assert mockfgt.classify(status) == device.expect == AUTHENTICATION


def test_pyfgt_password_login_flow(fortigate):
    fortigate_module = library("pyFGT.fortigate")
    api = fortigate_module.FortiGate(urlsplit(fortigate.url).netloc, ADMIN, ADMIN_PASSWORD,
                                     verify_ssl=fortigate.ca_bundle, timeout=TIMEOUT_SECONDS,
                                     disable_request_warnings=True)
    with api:
        code, status = api.get("monitor/system/status")
        assert code == "success" and status["results"]["hostname"] == "fgt-mock"
        assert api.post("cmdb/firewall/address", name="pw-2", subnet="10.0.0.10/32")[0] == 200
        assert api.delete("cmdb/firewall/address/pw-2")[0] == 200
    # pyFGT asks /api/v2/authentication for a session key, uses it as Bearer and logs out with DELETE.
    assert fortigate.journal.requests(method="POST", path="/api/v2/authentication", status=200)
    assert fortigate.journal.requests(method="DELETE", path="/api/v2/authentication", status=200)


class PyFgtPoller:
    """An agent built on one pyFGT FortiGate object, polling the status; ``relogin``: on a 401 it logs in
    again before its next poll. pyFGT answers a 401 as (100, <Response [401]>) and keeps its dead key."""

    def __init__(self, client, ca_bundle: str, *, relogin: bool) -> None:
        fortigate_module = library("pyFGT.fortigate")
        self.api = fortigate_module.FortiGate(urlsplit(client.url).netloc, client.user, client.password,
                                              verify_ssl=ca_bundle, timeout=TIMEOUT_SECONDS,
                                              disable_request_warnings=True)
        self.relogin, self.dead = relogin, False
        self.api.login()

    def run(self) -> str:
        if self.dead and self.relogin:
            self.api.login()
            self.dead = False
        code, answer = self.api.get("monitor/system/status")
        if code == "success":
            return OK
        status = getattr(answer, "status_code", None)
        self.dead = status == 401
        return classify_status(status) if status else f"unexpected {code}"


@pytest.mark.parametrize("relogin", [True, False], ids=["logs-in-again", "keeps-its-dead-key"])
def test_pyfgt_session_walk_passes_only_for_an_agent_that_logs_in_again(make_fortigate, relogin):
    """session-expires-mid-run walked with one pyFGT object: the library keeps its session key after a
    401, so the agent around it must log in again; one that does not fails after the remedy."""
    fgt = make_fortigate("session-expires-mid-run")
    agent = PyFgtPoller(fgt.client, fgt.ca_bundle, relogin=relogin)
    seen = []
    try:
        for step in fgt.walk_phases():
            code = agent.run()
            seen.append((step.name, code))
            step.check(code)
    except AssertionError as failed:
        assert not relogin, failed
        assert "after the remedy: expected ok, the agent reported 202001" in str(failed)
    expected = [("start", OK), ("idled-out", AUTHENTICATION), ("remedy", OK if relogin else AUTHENTICATION)]
    assert seen == expected


@needs_fortimanager
def test_pyfmg_password_login_flow(make_fortimanager):
    device = make_fortimanager("fmg-healthy")
    password = device.state.admins["admin"].password  # fmg-healthy's password admin, random per start
    url = urlsplit(device.url)
    fmg = library("pyFMG.fortimgr").FortiManager(host=url.netloc, user="admin", passwd=password,
                                                 verify_ssl=device.ca_bundle, timeout=TIMEOUT_SECONDS,
                                                 disable_request_warnings=True)
    code, _ = fmg.login()
    assert code == 0
    try:
        objects = "pm/config/adom/root/obj/firewall/address"
        assert fmg.get("/sys/status")[0] == 0
        assert fmg.add(objects, name="pw-3", subnet=["10.0.0.11", "255.255.255.255"])[0] == 0
        assert fmg.delete(f"{objects}/pw-3")[0] == 0
    finally:
        assert fmg.logout()[0] == 0
    assert any(r["result"] and r["result"][0]["url"].strip("/") == "sys/login/user"
               for r in device.journal.requests(path="/jsonrpc"))


@needs_fortimanager
def test_pyfmg_wrong_password_is_refused_with_login_failed(make_fortimanager):
    device = make_fortimanager("fmg-healthy")
    url = urlsplit(device.url)
    fmg = library("pyFMG.fortimgr").FortiManager(host=url.netloc, user="admin", passwd="not-the-password",
                                                 verify_ssl=device.ca_bundle, timeout=TIMEOUT_SECONDS,
                                                 disable_request_warnings=True)
    # pyFMG goes on to its workspace check after the refused login, and raises there for want of a session.
    with pytest.raises(library("pyFMG.fortimgr").FMGValidSessionException):
        fmg.login()
    login = device.journal.requests(path="/jsonrpc")[0]["result"][0]
    assert login["code"] == -22
    assert judge_jsonrpc(Call("login", "POST", "/jsonrpc"), login["code"]) == AUTHENTICATION
