"""A mock FortiManager driven over real HTTPS with requests and httpx: JSON-RPC sessions, workspace
locks, objects, installs, status codes, the proxy fan-out and what real clients send (reference G.12-17)."""

from __future__ import annotations

import re

import pytest
import requests

import mockfgt
from mockfgt.classify import classify_jsonrpc
from mockfgt.probe import probe

from deadlines import seconds
from fmgrpc import LIBRARIES, Rpc, admin_password, key_rpc, scenario_file

ADDRESSES = "/pm/config/adom/root/obj/firewall/address"
GROUPS = "/pm/config/adom/root/obj/firewall/addrgrp"
WORKSPACE = "/dvmdb/adom/root/workspace"


def ok(entry: dict) -> dict:
    assert entry["status"] == {"code": 0, "message": "OK"}, entry
    return entry


# -- a whole session, as an agent runs it -------------------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES)
def test_login_lock_write_commit_install_poll_logout(fortimanager, library):
    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    rpc = Rpc(fortimanager, library)
    login = rpc.login("admin", admin_password(fortimanager))
    assert ok(login["result"][0])["url"] == "/sys/login/user" and len(rpc.session) == 88

    assert ok(rpc.one("get", "/cli/global/system/global", fields=["workspace-mode"], verbose=1))["data"][
        "workspace-mode"] == "normal"
    ok(rpc.one("exec", f"{WORKSPACE}/lock"))
    assert ok(rpc.one("add", ADDRESSES, {"name": "host_1", "subnet": "10.0.0.1/32"}))["data"] == {"name": "host_1"}
    ok(rpc.one("add", GROUPS, {"name": "grp_1", "member": ["host_1"]}))
    assert ok(rpc.one("get", f"{WORKSPACE}/dirty"))["data"] == {"dirty": 1}
    ok(rpc.one("exec", f"{WORKSPACE}/commit"))
    assert ok(rpc.one("get", f"{WORKSPACE}/dirty"))["data"] == {"dirty": 0}
    lock = ok(rpc.one("get", f"{WORKSPACE}/lockinfo"))["data"][0]
    assert lock["lock_user"] == "admin" and lock["obj_url"] == "/dvmdb/adom/root"

    task = ok(rpc.one("exec", "/securityconsole/install/package",
                      {"adom": "root", "pkg": "default", "scope": [{"name": "fgt-branch-01", "vdom": "root"}],
                       "flags": ["none"]}))["data"]["task"]
    states = [ok(rpc.one("get", f"/task/task/{task}", verbose=1))["data"] for _ in range(5)]
    done = next(s for s in states if s["percent"] == 100)
    assert states[0]["state"] == "running" and done["state"] == "done" and done["num_err"] == 0
    assert done["line"][0]["name"] == "fgt-branch-01"

    ok(rpc.one("exec", f"{WORKSPACE}/unlock"))
    assert "data" not in ok(rpc.one("get", f"{WORKSPACE}/lockinfo"))  # no data while unlocked
    ok(rpc.one("exec", "/sys/logout"))
    assert rpc.code("get", "/sys/status") == -11
    # What was committed stays: another client sees it.
    group = ok(key_rpc(fortimanager, library).one("get", f"{GROUPS}/grp_1"))["data"]
    assert group["member"] == ["host_1"]
    rpc.close()


def test_the_reference_probe_locks_commits_and_unlocks_in_workspace_mode(fortimanager):
    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    result = probe(fortimanager.client, kind="fortimanager")
    assert result.code == mockfgt.OK and result.step == "8 calls"
    assert "data" not in ok(key_rpc(fortimanager).one("get", f"{WORKSPACE}/lockinfo"))


def test_the_fortimanager_fixture_is_a_fresh_healthy_device(fortimanager):
    assert isinstance(fortimanager, mockfgt.FortiManager)
    assert fortimanager.scenario.name == "fmg-healthy" and fortimanager.expect == mockfgt.OK
    assert re.fullmatch(r"[a-z0-9]{32}", fortimanager.token)
    assert fortimanager.client.auth == "token" and fortimanager.client.user == "agent"
    assert ok(key_rpc(fortimanager).one("get", ADDRESSES))["data"] == []
    assert probe(fortimanager.client, kind="fortimanager").code == mockfgt.OK


# -- status codes -----------------------------------------------------------------------------------
def test_object_status_codes(fortimanager):
    rpc = key_rpc(fortimanager)
    ok(rpc.one("add", ADDRESSES, {"name": "h", "subnet": "10.0.0.1 255.255.255.255"}))
    assert rpc.one("add", ADDRESSES, {"name": "h", "subnet": "10.0.0.2/32"})["status"] == {
        "code": -2, "message": "Object already exists"}
    assert rpc.one("get", f"{ADDRESSES}/nope")["status"] == {"code": -3, "message": "Object does not exist"}
    assert rpc.one("get", "/pm/config/adom/root/obj/nothing/here")["status"] == {"code": -6, "message": "Invalid url"}
    assert rpc.one("add", ADDRESSES, {"name": "bad", "subnet": "not-an-address"})["status"] == {
        "code": -10, "message": "The data is invalid for selected url"}
    assert rpc.code("add", GROUPS, {"name": "g", "member": ["missing"]}) == -10
    ok(rpc.one("add", GROUPS, {"name": "g", "member": ["h"]}))
    assert rpc.code("delete", f"{ADDRESSES}/h") == -10131  # still in a group
    for code, method in ((-2, "add"), (-3, "get"), (-6, "get"), (-10, "add")):
        assert classify_jsonrpc(code, method=method, url=ADDRESSES) == mockfgt.OK


def test_credential_status_codes_and_their_classes(fortimanager):
    anonymous = Rpc(fortimanager)
    assert anonymous.one("get", "/sys/status")["status"] == {"code": -11, "message": "No permission for the resource"}
    assert Rpc(fortimanager, key="x" * 30).code("get", "/sys/status") == -11
    assert Rpc(fortimanager, session="bm90IGEgc2Vzc2lvbg==").code("get", "/sys/status") == -11
    assert classify_jsonrpc(-11, method="get", url="/sys/status") == mockfgt.AUTHENTICATION
    assert mockfgt.classify(anonymous.call("get", {"url": "/sys/status"})) == mockfgt.AUTHENTICATION
    assert mockfgt.classify(key_rpc(fortimanager).call("get", {"url": "/sys/status"})) == mockfgt.OK

    failed = anonymous.login("admin", "wrong password")
    assert failed["result"][0]["status"] == {"code": -22, "message": "Login fail"} and "session" not in failed
    assert anonymous.login("nobody", "x")["result"][0]["status"]["code"] == -22
    assert classify_jsonrpc(-22, method="exec", url="sys/login/user") == mockfgt.AUTHENTICATION


def test_rpc_permit_none_refuses_the_login_itself(fortimanager):
    fortimanager.apply({"op": "set-rpc-permit", "user": "admin", "rpc_permit": "none"})
    answer = Rpc(fortimanager).login("admin", admin_password(fortimanager))
    assert answer["result"][0]["status"]["code"] == -11 and "session" not in answer
    assert classify_jsonrpc(-11, method="exec", url="/sys/login/user") == mockfgt.AUTHORIZATION


def test_rpc_permit_read_reads_but_cannot_write(fortimanager):
    fortimanager.apply({"op": "set-rpc-permit", "user": "agent", "rpc_permit": "read"})
    rpc = key_rpc(fortimanager)
    ok(rpc.one("get", ADDRESSES))
    assert rpc.code("add", ADDRESSES, {"name": "h", "subnet": "10.0.0.1/32"}) == -11
    assert classify_jsonrpc(-11, method="add", url=ADDRESSES, credential="accepted") == mockfgt.AUTHORIZATION


def test_workspace_write_without_lock_and_lock_held_by_another_session(fortimanager):
    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    rpc = key_rpc(fortimanager)
    assert rpc.one("add", ADDRESSES, {"name": "h", "subnet": "10.0.0.1/32"})["status"] == {
        "code": -10147, "message": "no write permission"}
    fortimanager.apply({"op": "lock-adom", "user": "admin", "adom": "root"})
    locked = rpc.one("exec", f"{WORKSPACE}/lock")
    assert locked["status"] == {"code": -20055, "message": "Workspace is locked by other user"}
    assert rpc.code("exec", f"{WORKSPACE}/unlock") == -20055
    assert ok(rpc.one("get", f"{WORKSPACE}/lockinfo"))["data"][0]["lock_user"] == "admin"
    assert rpc.code("add", ADDRESSES, {"name": "h", "subnet": "10.0.0.1/32"}) == -10147
    assert classify_jsonrpc(-10147, method="add", url=ADDRESSES) == mockfgt.AUTHORIZATION
    fortimanager.apply({"op": "unlock-adom", "adom": "root"})
    ok(rpc.one("exec", f"{WORKSPACE}/lock"))


def test_workspace_urls_outside_workspace_mode(fortimanager):
    rpc = key_rpc(fortimanager)
    assert rpc.one("exec", f"{WORKSPACE}/lock")["status"] == {
        "code": -9, "message": "current adom is not in the workspace mode"}


def test_uncommitted_work_is_private_and_unlock_discards_it(fortimanager):
    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    holder, other = key_rpc(fortimanager), Rpc(fortimanager)
    other.login("admin", admin_password(fortimanager))
    ok(holder.one("exec", f"{WORKSPACE}/lock/"))
    ok(holder.one("add", ADDRESSES, {"name": "draft", "subnet": "10.0.0.9/32"}))
    assert [r["name"] for r in ok(holder.one("get", ADDRESSES))["data"]] == ["draft"]
    assert ok(other.one("get", ADDRESSES))["data"] == []
    assert ok(other.one("get", f"{WORKSPACE}/dirty"))["data"] == {"dirty": 0}  # only your own work counts
    ok(holder.one("exec", f"{WORKSPACE}/unlock/"))
    assert ok(holder.one("get", ADDRESSES))["data"] == []


def test_ending_a_session_releases_its_lock(fortimanager):
    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    first = Rpc(fortimanager)
    first.login("admin", admin_password(fortimanager))
    ok(first.one("exec", f"{WORKSPACE}/lock"))
    assert key_rpc(fortimanager).code("exec", f"{WORKSPACE}/lock") == -20055
    ok(first.one("exec", "/sys/logout"))
    ok(key_rpc(fortimanager).one("exec", f"{WORKSPACE}/lock"))


# -- objects ----------------------------------------------------------------------------------------
def test_fortimanager_object_shapes(fortimanager):
    rpc = key_rpc(fortimanager)
    for spelling in ("10.1.0.0/16", "10.1.0.0 255.255.0.0", ["10.1.0.0", "255.255.0.0"]):
        ok(rpc.one("set", ADDRESSES, {"name": "net", "subnet": spelling}))
        address = ok(rpc.one("get", f"{ADDRESSES}/net", verbose=1))["data"]
        assert address["subnet"] == ["10.1.0.0", "255.255.0.0"] and address["type"] == "ipmask"
        assert isinstance(address["oid"], int)
    assert ok(rpc.one("get", f"{ADDRESSES}/net"))["data"]["type"] == 0  # enums are numbers without verbose
    ok(rpc.one("add", GROUPS, {"name": "grp", "member": "net"}))
    assert ok(rpc.one("get", f"{GROUPS}/grp"))["data"]["member"] == ["net"]


def test_group_member_sub_url_and_renames(fortimanager):
    rpc = key_rpc(fortimanager)
    for name in ("a", "b", "c"):
        ok(rpc.one("add", ADDRESSES, {"name": name, "subnet": f"10.0.0.{ord(name)}/32"}))
    ok(rpc.one("add", GROUPS, {"name": "grp", "member": ["a"]}))
    ok(rpc.one("add", f"{GROUPS}/grp/member", ["b", "c"]))
    assert ok(rpc.one("get", f"{GROUPS}/grp/member"))["data"] == ["a", "b", "c"]
    ok(rpc.one("delete", f"{GROUPS}/grp/member", ["b"]))
    assert ok(rpc.one("set", f"{ADDRESSES}/a", {"name": "a2"}))["data"] == {"name": "a2"}
    assert ok(rpc.one("get", f"{GROUPS}/grp"))["data"]["member"] == ["a2", "c"]
    ok(rpc.one("update", f"{ADDRESSES}/c", {"comment": "kept"}))
    assert ok(rpc.one("get", f"{ADDRESSES}/c"))["data"]["subnet"] == ["10.0.0.99", "255.255.255.255"]
    ok(rpc.one("unset", f"{GROUPS}/grp/member"))
    ok(rpc.one("delete", f"{ADDRESSES}/c"))
    assert rpc.code("update", f"{ADDRESSES}/c", {"comment": "gone"}) == -3


def test_get_options_filter_fields_range(fortimanager):
    rpc = key_rpc(fortimanager)
    ok(rpc.one("add", ADDRESSES, [{"name": f"host_{i}", "subnet": f"10.0.0.{i}/32"} for i in range(5)]))
    hits = ok(rpc.one("get", ADDRESSES, filter=["name", "like", "host_%"], fields=["subnet"], range=[1, 2]))["data"]
    assert [h["name"] for h in hits] == ["host_1", "host_2"] and set(hits[0]) == {"name", "oid", "subnet"}
    either = [["name", "==", "host_0"], "||", ["name", "==", "host_4"]]
    assert [h["name"] for h in ok(rpc.one("get", ADDRESSES, filter=either))["data"]] == ["host_0", "host_4"]


# -- devices, tasks, proxy ----------------------------------------------------------------------------
FLEET = """
extends = "fmg-healthy"
summary = "three managed FortiGates: one down, one answering 403"
expect = "ok"

[[device.devices]]
name = "fgt-up"
[[device.devices]]
name = "fgt-down"
conn_status = "down"
[[device.devices]]
name = "fgt-refusing"
proxy_status = 403
"""


def test_proxy_fan_out_reports_each_device_inside_an_outer_ok(fortimanager, tmp_path):
    fortimanager.use(scenario_file(tmp_path, "fleet", FLEET))
    entry = ok(key_rpc(fortimanager).one("exec", "/sys/proxy/json", {
        "action": "get", "resource": "/api/v2/monitor/system/status?vdom=root",
        "target": ["adom/root/group/All_FortiGate"]}))
    by_target = {d["target"]: d for d in entry["data"]}
    assert by_target["fgt-up"]["status"]["code"] == 0
    assert by_target["fgt-up"]["response"]["results"]["hostname"] == "fgt-up"
    assert by_target["fgt-down"]["status"]["code"] != 0 and "response" not in by_target["fgt-down"]
    refusing = by_target["fgt-refusing"]
    assert refusing["status"]["code"] == 0 and refusing["response"]["http_status"] == 403


def test_install_to_an_unreachable_device_finishes_with_an_error(fortimanager, tmp_path):
    fortimanager.use(scenario_file(tmp_path, "fleet", FLEET))
    rpc = key_rpc(fortimanager)
    task = ok(rpc.one("exec", "/securityconsole/install/package", {"adom": "root", "pkg": "default"}))["data"]["task"]
    states = [ok(rpc.one("get", f"/task/task/{task}", verbose=1))["data"] for _ in range(3)]
    assert states[-1]["percent"] == 100 and states[-1]["num_err"] == 1 and states[-1]["state"] == "error"
    assert {line["name"]: line["state"] for line in states[-1]["line"]}["fgt-down"] == "error"


def test_managed_devices_and_adoms(fortimanager):
    rpc = key_rpc(fortimanager)
    device = ok(rpc.one("get", "/dvmdb/device/fgt-branch-01", verbose=1))["data"]
    assert device["conn_status"] == "up" and device["os_type"] == "fos" and device["sn"].startswith("FGVM")
    assert ok(rpc.one("get", "/dvmdb/adom/root/device"))["data"][0]["conn_status"] == 1
    adoms = ok(rpc.one("get", "/dvmdb/adom", fields=["name"], filter=["restricted_prds", "==", "fos"]))["data"]
    assert [a["name"] for a in adoms] == ["root"]
    assert rpc.code("get", "/dvmdb/adom/elsewhere") == -11  # not in the admin's ADOM list


# -- batches and what real clients send (reference G.12-17) ---------------------------------------------
def test_a_batch_gets_one_result_per_params_item(fortimanager):
    answer = key_rpc(fortimanager).call("get", {"url": "/sys/status"}, {"url": "dvmdb/adom/root"},
                                        {"url": "/no/such/url"})
    assert [r["status"]["code"] for r in answer["result"]] == [0, 0, -6]
    assert [r["url"] for r in answer["result"]] == ["/sys/status", "dvmdb/adom/root", "/no/such/url"]


def test_urls_with_or_without_slashes_are_echoed_as_sent(fortimanager):
    rpc = key_rpc(fortimanager)
    for url in ("sys/status", "/sys/status", "/sys/status/", "pm/config/adom/root/obj/firewall/address/"):
        assert ok(rpc.one("get", url))["url"] == url


def test_requests_without_id_or_session_and_no_session_in_answers_to_a_key(fortimanager):
    """H.2: answers to API-key (Bearer) requests carry no ``session`` (unconfirmed; our guess)."""
    rpc = key_rpc(fortimanager)
    answer = rpc.post({"method": "get", "params": [{"url": "/sys/status"}]})
    assert answer["id"] is None and ok(answer["result"][0]) and "session" not in answer
    login = Rpc(fortimanager).login("admin", admin_password(fortimanager))
    assert isinstance(login["session"], str)
    assert "session" not in rpc.call("get", {"url": "/sys/status"}, session=login["session"])  # Bearer wins


@pytest.mark.parametrize("library", LIBRARIES)
def test_answers_to_a_session_carry_its_number_which_lockinfo_reports_as_lock_sid(fortimanager, library):
    """H.2 (corrects G.14): a login answers the session string; every later answer to a request made with
    that session, -11 included, carries ``"session": <integer>``, the number ``workspace/lockinfo``
    reports as ``lock_sid`` (captured: ``"session": 13807`` on a -11 answer; a provider compares the two
    before it trusts its lock)."""
    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    rpc = Rpc(fortimanager, library)
    login = rpc.login("admin", admin_password(fortimanager))
    assert isinstance(login["session"], str) and len(login["session"]) == 88

    status = rpc.call("get", {"url": "/sys/status"})
    number = status["session"]
    assert ok(status["result"][0]) and isinstance(number, int) and not isinstance(number, bool)
    assert rpc.call("exec", {"url": f"{WORKSPACE}/lock"})["session"] == number
    info = rpc.call("get", {"url": f"{WORKSPACE}/lockinfo"})
    assert info["session"] == number == ok(info["result"][0])["data"][0]["lock_sid"]

    fortimanager.apply({"op": "set-rpc-permit", "user": "admin", "rpc_permit": "read"})
    refused = rpc.call("add", {"url": ADDRESSES, "data": {"name": "h", "subnet": "10.0.0.1/32"}})
    assert refused["result"][0]["status"]["code"] == -11 and refused["session"] == number
    batch = rpc.call("get", {"url": "/sys/status"}, {"url": "/no/such/url"})
    assert [r["status"]["code"] for r in batch["result"]] == [0, -6] and batch["session"] == number

    other = Rpc(fortimanager, library)
    other.login("admin", admin_password(fortimanager))
    assert other.call("get", {"url": "/sys/status"})["session"] != number  # each session has its own

    assert rpc.call("exec", {"url": "/sys/logout"})["session"] == number
    gone = rpc.call("get", {"url": "/sys/status"})  # a session the device no longer knows has no number
    assert gone["result"][0]["status"]["code"] == -11 and "session" not in gone
    rpc.close()
    other.close()


def test_sys_status_and_system_global_shapes(fortimanager):
    rpc = key_rpc(fortimanager)
    status = ok(rpc.one("get", "/sys/status"))["data"]
    assert re.fullmatch(r"v7\.4\.5-build\d{4} \d{6} \(GA\)", status["Version"])
    assert (status["Major"], status["Minor"], status["Patch"]) == (7, 4, 5)
    assert status["Serial Number"] == "FMVMELTM24000001" and status["Platform Type"] == "FMG-VM64-KVM"
    settings = ok(rpc.one("get", "/cli/global/system/global", fields=["workspace-mode", "adom-status"]))["data"]
    assert settings == {"workspace-mode": 0, "adom-status": 1}


def test_api_keys_look_real(fortimanager):
    """H.13: FortiManager API keys are 32 lowercase alphanumerics, as ``execute api-user generate-key``
    prints them in the published examples (``33fzwipq4amujunzgzn46mg1to9p8wbi``)."""
    assert re.fullmatch(r"[a-z0-9]{32}", fortimanager.token)
    fortimanager.apply({"op": "regenerate-key", "user": "agent"})
    assert re.fullmatch(r"[a-z0-9]{32}", fortimanager.token)
    assert key_rpc(fortimanager).code("get", "/sys/status") == 0


# -- the global ADOM (reference H.16) ---------------------------------------------------------------
GLOBAL_WORKSPACE = "/dvmdb/global/workspace"
GLOBAL_ADDRESSES = "/pm/config/global/obj/firewall/address"


def test_a_fresh_device_has_the_global_adom_next_to_root(fortimanager):
    """H.16: the global ADOM exists on a factory-fresh FortiManager; automation reads
    ``/dvmdb/global/workspace/lockinfo`` right after login in workspace mode, locks it with
    ``/dvmdb/global/workspace/lock`` and writes ``/pm/config/global/obj/firewall/address``."""
    rpc = key_rpc(fortimanager)  # the agent's ADOM list is ["root"]: global is everyone's
    assert ok(rpc.one("get", GLOBAL_ADDRESSES))["data"] == []
    ok(rpc.one("add", GLOBAL_ADDRESSES, {"name": "g-host", "subnet": "192.0.2.7/32"}))
    assert ok(rpc.one("get", f"{GLOBAL_ADDRESSES}/g-host"))["data"]["subnet"] == ["192.0.2.7", "255.255.255.255"]
    assert ok(rpc.one("get", ADDRESSES))["data"] == []  # root's objects are its own
    assert rpc.code("get", f"{GLOBAL_WORKSPACE}/lockinfo") == -9  # not in workspace mode yet
    assert [a["name"] for a in ok(rpc.one("get", "/dvmdb/adom"))["data"]] == ["root"]  # reached by its own URLs

    fortimanager.apply({"op": "set-workspace-mode", "mode": "normal"})
    session = Rpc(fortimanager)
    session.login("admin", admin_password(fortimanager))
    assert "data" not in ok(session.one("get", f"{GLOBAL_WORKSPACE}/lockinfo"))  # unlocked
    assert session.code("add", GLOBAL_ADDRESSES, {"name": "g-2", "subnet": "192.0.2.8/32"}) == -10147
    ok(session.one("exec", f"{GLOBAL_WORKSPACE}/lock"))
    info = session.call("get", {"url": f"{GLOBAL_WORKSPACE}/lockinfo"})
    lock = ok(info["result"][0])["data"][0]
    assert lock["obj_url"] == "/dvmdb/global" and lock["lock_user"] == "admin" and lock["lock_sid"] == info["session"]
    assert "data" not in ok(session.one("get", f"{WORKSPACE}/lockinfo"))  # root stays unlocked
    assert rpc.code("exec", f"{GLOBAL_WORKSPACE}/lock") == -20055  # held by the session
    ok(session.one("add", GLOBAL_ADDRESSES, {"name": "g-2", "subnet": "192.0.2.8/32"}))
    ok(session.one("exec", f"{GLOBAL_WORKSPACE}/commit"))
    ok(session.one("exec", f"{GLOBAL_WORKSPACE}/unlock"))
    assert ok(rpc.one("get", f"{GLOBAL_ADDRESSES}/g-2"))["data"]["name"] == "g-2"


CUSTOMER_ONLY = """
extends = "fmg-healthy"
[device]
adoms = ["customer"]
[[device.admins]]
name = "agent"
adoms = ["customer"]
[[device.devices]]
name = "fgt-customer"
adom = "customer"
[[device.objects."firewall/address"]]
name = "shared-dns"
subnet = "198.51.100.53/32"
adom = "global"
"""

NO_GLOBAL = """
extends = "fmg-healthy"
[device.settings]
global_adom = false
"""


def test_scenarios_replace_the_seeded_adoms_and_may_drop_global(fortimanager, tmp_path):
    """H.16 with issue 15 item 2: scenario files can still add to or replace the seeded ADOMs."""
    fortimanager.use(scenario_file(tmp_path, "customer-only", CUSTOMER_ONLY))
    rpc = key_rpc(fortimanager)
    assert [a["name"] for a in ok(rpc.one("get", "/dvmdb/adom"))["data"]] == ["customer"]
    assert ok(rpc.one("get", f"{GLOBAL_ADDRESSES}/shared-dns"))["data"]["subnet"][0] == "198.51.100.53"
    assert rpc.code("get", ADDRESSES) == -11  # root is gone (and outside the agent's list)

    fortimanager.use(scenario_file(tmp_path, "no-global", NO_GLOBAL))
    rpc = key_rpc(fortimanager)
    assert rpc.code("get", GLOBAL_ADDRESSES) == -6 and rpc.code("get", "/dvmdb/global") == -3
    assert ok(rpc.one("get", ADDRESSES))["data"] == []


# -- malformed requests: the device's error, never a traceback ------------------------------------------
def test_malformed_json_and_envelopes_answer_minus_10(fortimanager):
    url, ca = f"{fortimanager.url}/jsonrpc", fortimanager.ca_bundle
    for body in ("{not json", "[1, 2]", '{"method": "get"}', '{"method": "fly", "params": [{"url": "/sys/status"}]}',
                 "\xff\xfe"):
        response = requests.post(url, data=body.encode("latin-1"), verify=ca, timeout=seconds(10))
        assert response.status_code == 200
        assert response.json()["result"][0]["status"]["code"] == -10
        assert "Traceback" not in response.text


def test_non_post_and_other_paths_get_the_web_server_pages(fortimanager):
    ca = fortimanager.ca_bundle
    get = requests.get(f"{fortimanager.url}/jsonrpc", verify=ca, timeout=seconds(10))
    assert get.status_code == 405 and get.headers["Allow"] == "POST" and "Method Not Allowed" in get.text
    other = requests.post(f"{fortimanager.url}/api/v2/monitor/system/status", verify=ca, timeout=seconds(10))
    assert other.status_code == 404 and other.headers["Content-Type"].startswith("text/html")


def test_a_params_item_without_url(fortimanager):
    answer = key_rpc(fortimanager).call("get", {"data": {}}, {"url": "/sys/status"})
    assert [r["status"]["code"] for r in answer["result"]] == [-6, 0]


def test_the_task_log_keeps_the_newest_tasks_only(fortimanager, monkeypatch):
    """Install tasks are kept up to TASKS_KEPT (1,000); older records go, as the device's task log
    rotates, so a client installing in a loop cannot grow the device without end."""
    from mockfgt.fortimanager import tasks

    monkeypatch.setattr(tasks, "TASKS_KEPT", 3)
    rpc = key_rpc(fortimanager)
    ids = [ok(rpc.one("exec", "/securityconsole/install/package", {"adom": "root", "pkg": "default"}))["data"]["task"]
           for _ in range(5)]
    assert [rpc.code("get", f"/task/task/{task}") for task in ids] == [-3, -3, 0, 0, 0]
