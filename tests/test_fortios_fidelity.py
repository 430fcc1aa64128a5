"""Round-2 fidelity of the mock FortiGate (fortinet-api.md section H), one point per test.

Each test's docstring names the H point and its evidence. Requests go over real TLS with requests;
expected values are typed out here, not imported from the code under test.
"""

from __future__ import annotations

import pytest

from fortios_client import RequestsApi, write_scenario

ADDRESSES, GROUPS = "cmdb/firewall/address", "cmdb/firewall/addrgrp"
STATUS = "monitor/system/status"


@pytest.fixture
def api(fortigate) -> RequestsApi:
    return RequestsApi(fortigate)


def at_version(make_fortigate, tmp_path, version: str, extra: str = "") -> RequestsApi:
    path = write_scenario(tmp_path, f"fgt-{version}", f'[device]\nversion = "{version}"\n{extra}')
    return RequestsApi(make_fortigate(path))


def names(api, path: str) -> list[str]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()["results"]]


# -- H.4: a factory-fresh device is not empty -------------------------------------------------------
def test_factory_objects_all_and_none_are_there(api):
    """H.4: captured configs and exporter test data show `all` (0.0.0.0/0, ipmask) and `none` (0.0.0.0/32)
    on every FortiGate; clients use {"name": "all"} as a group member freely."""
    all_ = api.get(f"{ADDRESSES}/all").json()["results"][0]
    none = api.get(f"{ADDRESSES}/none").json()["results"][0]
    assert (all_["type"], all_["subnet"], all_["q_origin_key"]) == ("ipmask", "0.0.0.0 0.0.0.0", "all")
    assert (none["type"], none["subnet"]) == ("ipmask", "0.0.0.0 255.255.255.255")
    assert {"FABRIC_DEVICE", "FIREWALL_AUTH_PORTAL_ADDRESS", "SSLVPN_TUNNEL_ADDR1"} <= set(names(api, ADDRESSES))
    assert {"all", "none"} <= set(names(api, "cmdb/firewall/address6"))
    groups = {row["name"]: [m["name"] for m in row["member"]] for row in api.get(GROUPS).json()["results"]}
    assert groups["G Suite"] == ["gmail.com", "wildcard.google.com"]
    # The flow that broke 7 of 9 libraries: a group with `all` as its member, then clean-up.
    assert api.post(GROUPS, json={"name": "agent-grp", "member": [{"name": "all"}]}).status_code == 200
    assert api.delete(f"{GROUPS}/agent-grp").status_code == 200


def test_every_vdom_has_the_factory_objects(make_fortigate, tmp_path):
    """H.4: the defaults live in each VDOM's own table."""
    fgt = make_fortigate(write_scenario(tmp_path, "two-vdoms", """
        [device]
        vdoms = ["root", "customer"]

        [[device.api_users]]
        name = "agent"
        vdoms = ["root", "customer"]
    """))
    api = RequestsApi(fgt)
    assert api.get(f"{ADDRESSES}/all", params={"vdom": "customer"}).status_code == 200


def test_scenarios_add_to_replace_or_drop_the_seed(make_fortigate, tmp_path):
    """H.4 / issue 15 item 2: a scenario's device.cmdb adds objects, replaces a factory object of the same
    name, and factory_defaults = false starts from empty tables."""
    api = RequestsApi(make_fortigate(write_scenario(tmp_path, "seeded", """
        [device.cmdb]
        "firewall/address" = [{ name = "none", subnet = "192.0.2.9/32", comment = "replaced" },
                              { name = "printer", subnet = "10.0.0.5/32" }]
        "firewall/addrgrp" = [{ name = "office", member = ["printer", "all"] }]
    """)))
    assert {"all", "none", "printer"} <= set(names(api, ADDRESSES))
    assert api.get(f"{ADDRESSES}/none").json()["results"][0]["comment"] == "replaced"
    empty = RequestsApi(make_fortigate(write_scenario(tmp_path, "bare", "[device]\nfactory_defaults = false\n")))
    assert names(empty, ADDRESSES) == [] and names(empty, GROUPS) == []


def test_factory_objects_follow_the_version(make_fortigate, tmp_path):
    """H.4: version-dependent defaults; FABRIC_DEVICE and the FQDN objects are absent on 6.0 (a choice,
    docs/fortios.md), `all` and `none` are everywhere."""
    old = at_version(make_fortigate, tmp_path, "6.0.4")
    present = set(names(old, ADDRESSES))
    assert {"all", "none"} <= present and "FABRIC_DEVICE" not in present and "gmail.com" not in present


# -- H.3: revision_changed is exact ---------------------------------------------------------------
def test_an_unchanged_put_keeps_the_revision_and_says_false(api):
    """H.3: from 6.2.3 a write that changes nothing answers revision_changed false and keeps revision
    (the vendor's automation maintainers; a 7.2.6 PUT capture)."""
    created = api.post(ADDRESSES, json={"name": "h1", "subnet": "192.0.2.1/32"}).json()
    assert created["revision_changed"] is True and created["old_revision"] != created["revision"]
    same = api.put(f"{ADDRESSES}/h1", json={"subnet": "192.0.2.1 255.255.255.255"}).json()
    assert same["status"] == "success" and same["revision_changed"] is False
    assert same["revision"] == same["old_revision"] == created["revision"]
    changed = api.put(f"{ADDRESSES}/h1", json={"comment": "now different"}).json()
    assert changed["revision_changed"] is True and changed["revision"] != created["revision"]


@pytest.mark.parametrize(("version", "tracked"), [("6.2.2", False), ("6.2.3", True), ("7.0.12", True)])
def test_revision_changed_appears_from_6_2_3(make_fortigate, tmp_path, version, tracked):
    """H.3: before 6.2.3 the field is absent."""
    api = at_version(make_fortigate, tmp_path, version)
    answer = api.post(ADDRESSES, json={"name": "h1", "subnet": "192.0.2.1/32"}).json()
    assert ("revision_changed" in answer) is tracked and ("old_revision" in answer) is tracked


# -- H.15: member sub-tables ----------------------------------------------------------------------
def test_member_subtable_get_post_delete(api):
    """H.15: automation adds or removes one member through .../addrgrp/<grp>/member[/<name>]; an append of a
    member already present and a DELETE of an absent one change nothing (H.3)."""
    api.post(ADDRESSES, json={"name": "h1", "subnet": "192.0.2.1/32"})
    api.post(GROUPS, json={"name": "grp", "member": [{"name": "all"}]})
    listed = api.get(f"{GROUPS}/grp/member").json()
    assert [m["name"] for m in listed["results"]] == ["all"] and listed["size"] == 1
    added = api.post(f"{GROUPS}/grp/member", json={"name": "h1"}).json()
    assert (added["status"], added["mkey"], added["revision_changed"]) == ("success", "h1", True)
    assert [m["name"] for m in api.get(f"{GROUPS}/grp").json()["results"][0]["member"]] == ["all", "h1"]
    one = api.get(f"{GROUPS}/grp/member/h1").json()
    assert one["results"] == [{"name": "h1", "q_origin_key": "h1"}] and one["mkey"] == "h1"
    again = api.post(f"{GROUPS}/grp/member", json={"name": "h1"}).json()
    assert again["revision_changed"] is False and again["revision"] == added["revision"]
    removed = api.delete(f"{GROUPS}/grp/member/h1").json()
    assert removed["revision_changed"] is True
    absent = api.delete(f"{GROUPS}/grp/member/h1").json()
    assert absent["status"] == "success" and absent["revision_changed"] is False
    assert api.get(f"{GROUPS}/grp/member/h1").status_code == 404


def test_member_subtable_writes_have_the_whole_group_checks(api, make_fortigate, tmp_path):
    """H.15: the same reference checks as whole-group writes: a member that does not exist is 500 -3, a
    missing group 404, and before 7.2 the last member cannot go (-56)."""
    api.post(GROUPS, json={"name": "grp", "member": [{"name": "all"}]})
    missing = api.post(f"{GROUPS}/grp/member", json={"name": "no-such-address"})
    assert (missing.status_code, missing.json()["error"]) == (500, -3)
    assert "mkey" not in missing.json()  # H.10
    assert api.post(f"{GROUPS}/nosuch/member", json={"name": "all"}).status_code == 404
    old = at_version(make_fortigate, tmp_path, "7.0.12")
    old.post(GROUPS, json={"name": "grp", "member": [{"name": "all"}]})
    last = old.delete(f"{GROUPS}/grp/member/all")
    assert (last.status_code, last.json()["error"]) == (500, -56)
    assert api.delete(f"{GROUPS}/grp/member/all").status_code == 200  # 7.4.5: empty groups are allowed


def test_member_subtable_needs_fwgrp_write(fortigate, api):
    """H.15 with A.2.1: a read profile may list members but not change them."""
    api.post(GROUPS, json={"name": "grp", "member": [{"name": "all"}]})
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "fwgrp", "access": "read"})
    assert api.get(f"{GROUPS}/grp/member").status_code == 200
    assert api.post(f"{GROUPS}/grp/member", json={"name": "none"}).status_code == 403


# -- H.6, H.8, H.9, H.10: envelopes -----------------------------------------------------------------
@pytest.mark.parametrize(("version", "status"), [("7.2.10", 200), ("7.4.5", 404)])
def test_cmdb_system_status_global_is_an_array_until_7_2(make_fortigate, tmp_path, version, status):
    """H.6: a client's token login read [0]["version"] from cmdb/system/status?global=1; it worked on 7.2.10
    and broke on 7.4.5, where the endpoint is gone."""
    api = at_version(make_fortigate, tmp_path, version)
    response = api.get("cmdb/system/status", params={"global": "1"})
    assert response.status_code == status
    if status == 200:
        assert isinstance(response.json(), list) and response.json()[0]["version"] == f"v{version}"


def test_get_by_name_has_mkey_and_no_list_fields(api):
    """H.8: a SOAR vendor's 7.2.5 test data: GET of one object has mkey, no size/matched_count/next_idx;
    system/vdom/<name> too."""
    for path, mkey in ((f"{ADDRESSES}/all", "all"), ("cmdb/system/vdom/root", "root")):
        body = api.get(path).json()
        assert body["mkey"] == mkey and not {"size", "matched_count", "next_idx"} & set(body)
    listed = api.get(ADDRESSES).json()
    assert {"size", "matched_count", "next_idx"} <= set(listed) and "mkey" not in listed


@pytest.mark.parametrize(("path", "where"), [("cmdb/firewall/nosuch", ("firewall", "nosuch")),
                                             ("monitor/system/nosuch", ("system", "nosuch")),
                                             ("monitor/system/api-user/nosuch", ("system", "api-user"))])
def test_unknown_path_404_envelope(api, path, where):
    """H.9: a 7.4.4 capture: {build, http_method, http_status, name, path, serial, status, version}."""
    response = api.get(path, params={"vdom": "root"})
    body = response.json()
    assert set(body) == {"build", "http_method", "http_status", "name", "path", "serial", "status", "version"}
    assert (body["path"], body["name"], body["http_status"], response.status_code) == (*where, 404, 404)


def test_post_errors_carry_no_mkey(api):
    """H.10: a 6.2.4 capture of -5 (duplicate) and -3 (missing reference) answers to POST: no mkey."""
    duplicate = api.post(ADDRESSES, json={"name": "all"})
    assert (duplicate.status_code, duplicate.json()["error"]) == (500, -5) and "mkey" not in duplicate.json()
    missing = api.post(GROUPS, json={"name": "g", "member": [{"name": "nosuch"}]})
    assert (missing.status_code, missing.json()["error"]) == (500, -3) and "mkey" not in missing.json()
    not_found = api.put(f"{ADDRESSES}/nosuch", json={"comment": "x"})  # other writes keep theirs
    assert not_found.json()["mkey"] == "nosuch"


# -- H.14: lockout counts failed credentials only ---------------------------------------------------
def test_requests_without_a_credential_do_not_count_toward_lockout(api):
    """H.14: the vendor's automation sends a credential-less status call and a logout after every task;
    only failed credentials count, so a healthy device never locks it out."""
    assert [api.get(STATUS, token=None).status_code for _ in range(5)] == [401] * 5
    assert api.get(STATUS).status_code == 200


def test_counting_requests_without_a_credential_is_a_setting(make_fortigate, tmp_path):
    """H.14 is a guess, so the other reading is one scenario key away (docs/fortios.md)."""
    fgt = make_fortigate(write_scenario(tmp_path, "strict", "[device.settings]\nlockout_counts_no_credential = true\n"))
    api = RequestsApi(fgt)
    assert [api.get(STATUS, token=None).status_code for _ in range(3)] == [401] * 3
    assert api.get(STATUS).status_code == 429


def test_a_session_authenticated_call_resets_the_count(api):
    """H.14: a successful login or session-authenticated call resets the count for that source."""
    login = api.post("authentication", json={"username": "netops", "secretkey": "Fortinet-Lab-2024!",
                                             "request_key": True}).json()
    assert login["status_message"] == "LOGIN_SUCCESS"
    for _ in range(2):  # 2 + 2 failures would reach the threshold of 3 without the reset in between
        assert [api.get(STATUS, token="Z" * 30).status_code for _ in range(2)] == [401, 401]
        assert api.get(STATUS, token=login["session_key"]).status_code == 200
