"""FortiOS CMDB address tables over the wire: create, read, update, delete, and what clients send.

The four tables an address-managing agent uses (firewall/address, address6, addrgrp, addrgrp6),
driven with requests and httpx; error codes and envelopes as in fortinet-api.md A.2, A.3 and D.
"""

from __future__ import annotations

import subprocess

import pytest

from fortios_client import RequestsApi, httpx_client, write_scenario

WRITE_ENVELOPE = ["http_method", "revision", "old_revision", "revision_changed", "mkey", "status", "http_status",
                  "vdom", "path", "name", "serial", "version", "build"]
NOT_FOUND_ENVELOPE = {"http_method", "revision", "mkey", "status", "http_status", "vdom", "path", "name",
                      "serial", "version", "build"}


class Table:
    """One table under test: its URL, a valid new row, and the member table for groups."""

    def __init__(self, path: str, row: dict, member_of: str | None = None):
        self.path, self.row, self.member_of = path, row, member_of

    def __repr__(self) -> str:
        return self.path


ADDRESS = Table("cmdb/firewall/address", {"name": "host-1", "subnet": "192.0.2.1/32"})
ADDRESS6 = Table("cmdb/firewall/address6", {"name": "host6-1", "ip6": "2001:db8::1/128"})
ADDRGRP = Table("cmdb/firewall/addrgrp", {"name": "grp-1", "member": [{"name": "host-1"}]}, ADDRESS.path)
ADDRGRP6 = Table("cmdb/firewall/addrgrp6", {"name": "grp6-1", "member": [{"name": "host6-1"}]}, ADDRESS6.path)
ALL_TABLES = [ADDRESS, ADDRESS6, ADDRGRP, ADDRGRP6]
MEMBER_ROW = {ADDRESS.path: ADDRESS.row, ADDRESS6.path: ADDRESS6.row}


@pytest.fixture
def api(fortigate, tmp_path) -> RequestsApi:
    """The healthy device without its factory objects (``factory_defaults = false``): these tests count,
    page and purge rows, and a table that starts empty says plainly what each write did."""
    fortigate.use(write_scenario(tmp_path, "empty-tables", "[device]\nfactory_defaults = false\n"))
    return RequestsApi(fortigate)


def create(api, table: Table, **changes) -> dict:
    """Create ``table``'s sample row (and the address a group needs); returns the POST envelope."""
    if table.member_of:
        assert api.post(table.member_of, json=MEMBER_ROW[table.member_of]).status_code == 200
    response = api.post(table.path, json={**table.row, **changes})
    assert response.status_code == 200, response.text
    return response.json()


def rows(api, path: str, **params) -> list[dict]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()["results"]


# -- create / read / update / delete ------------------------------------------------------------
@pytest.mark.parametrize("table", ALL_TABLES, ids=repr)
def test_create_answers_the_write_envelope(api, table):
    before = api.get(table.path).json()["revision"]
    env = create(api, table)
    assert list(env) == WRITE_ENVELOPE  # field order of the 7.2.4 capture (reference A.2)
    assert (env["http_method"], env["status"], env["http_status"], env["mkey"]) == ("POST", "success", 200,
                                                                                     table.row["name"])
    assert env["revision_changed"] is True and env["revision"] != env["old_revision"]
    assert table.member_of or env["old_revision"] == before
    assert (env["path"], env["name"]) == tuple(table.path.split("/")[1:])
    assert env["version"] == "v7.4.5" and env["build"] == 2702 and env["serial"] == "FGVM02TM24000001"


@pytest.mark.parametrize("table", ALL_TABLES, ids=repr)
def test_list_and_get_by_name_return_full_rows(api, table):
    create(api, table)
    name = table.row["name"]
    listed = api.get(table.path).json()
    assert [r["name"] for r in listed["results"] if r["name"] == name] == [name]
    one = api.get(f"{table.path}/{name}").json()
    assert one["http_status"] == 200 and one["mkey"] == name
    assert len(one["results"]) == 1
    row = one["results"][0]
    assert row["q_origin_key"] == name and len(row["uuid"]) == 36
    assert row["comment"] == "" and row["color"] == 0  # defaults are present, as on the device


@pytest.mark.parametrize("table", ALL_TABLES, ids=repr)
def test_update_changes_the_row_and_the_revision(api, table):
    create(api, table)
    name = table.row["name"]
    before = api.get(table.path).json()["revision"]
    env = api.put(f"{table.path}/{name}", json={"comment": "updated", "color": 3}).json()
    assert env["http_method"] == "PUT" and env["mkey"] == name and env["old_revision"] == before
    row = rows(api, f"{table.path}/{name}")[0]
    assert (row["comment"], row["color"]) == ("updated", 3)


@pytest.mark.parametrize("table", ALL_TABLES, ids=repr)
def test_delete_then_get_is_404_without_error_code(api, table):
    create(api, table)
    name = table.row["name"]
    deleted = api.delete(f"{table.path}/{name}")
    assert deleted.status_code == 200 and deleted.json()["mkey"] == name
    missing = api.get(f"{table.path}/{name}")
    assert missing.status_code == 404
    body = missing.json()
    assert set(body) == NOT_FOUND_ENVELOPE  # the captured 404 carries no 'error' (reference A.2.1)
    assert (body["status"], body["http_status"], body["mkey"]) == ("error", 404, name)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_missing_object_is_404_for_every_verb(api, method):
    response = api.request(method, f"{ADDRESS.path}/nosuch", json={"comment": "x"})
    assert response.status_code == 404
    body = response.json()
    assert (body["http_method"], body["http_status"], body["mkey"]) == (method, 404, "nosuch")
    assert "error" not in body


def test_address_subnet_comes_back_in_dotted_form_with_mirrors(api):
    create(api, ADDRESS, subnet="10.1.0.0 255.255.0.0")
    row = rows(api, f"{ADDRESS.path}/host-1")[0]
    assert row["subnet"] == "10.1.0.0 255.255.0.0"
    assert (row["start-ip"], row["end-ip"], row["wildcard"]) == ("10.1.0.0", "255.255.0.0", "10.1.0.0 255.255.0.0")
    assert row["type"] == "ipmask" and row["obj-type"] == "ip"


def test_address6_prefix_is_normalised(api):
    create(api, ADDRESS6, ip6="2001:DB8:0::5/64")
    assert rows(api, f"{ADDRESS6.path}/host6-1")[0]["ip6"] == "2001:db8::5/64"


def test_group_members_carry_q_origin_key(api):
    create(api, ADDRGRP)
    assert rows(api, f"{ADDRGRP.path}/grp-1")[0]["member"] == [{"name": "host-1", "q_origin_key": "host-1"}]


# -- refusals with FortiOS error codes ----------------------------------------------------------
@pytest.mark.parametrize("table", ALL_TABLES, ids=repr)
def test_duplicate_create_is_500_error_minus_5(api, table):
    create(api, table)
    before = api.get(table.path).json()["revision"]
    response = api.post(table.path, json=table.row)
    assert response.status_code == 500
    body = response.json()
    assert (body["status"], body["http_status"], body["error"]) == ("error", 500, -5)
    assert body["revision_changed"] is False and body["revision"] == before


@pytest.mark.parametrize("table", [ADDRGRP, ADDRGRP6], ids=repr)
def test_group_member_that_does_not_exist_is_500_error_minus_3(api, table):
    response = api.post(table.path, json={"name": "g", "member": [{"name": "ghost"}]})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == -3
    assert "entry not found in datasource" in body["cli_error"] and "'ghost'" in body["cli_error"]
    assert api.get(f"{table.path}/g").status_code == 404  # nothing was created


def test_excluded_member_must_exist_too(api):
    create(api, ADDRGRP)
    response = api.put(f"{ADDRGRP.path}/grp-1", json={"exclude": "enable", "exclude-member": ["ghost"]})
    assert response.status_code == 500 and response.json()["error"] == -3


@pytest.mark.parametrize("table", [ADDRGRP, ADDRGRP6], ids=repr)
def test_delete_of_a_referenced_object_is_refused_with_minus_23(api, table):
    create(api, table)
    member = table.row["member"][0]["name"]
    refused = api.delete(f"{table.member_of}/{member}")
    assert refused.status_code == 500
    assert (refused.json()["error"], refused.json()["mkey"]) == (-23, member)
    assert api.get(f"{table.member_of}/{member}").status_code == 200
    assert api.delete(f"{table.path}/{table.row['name']}").status_code == 200
    assert api.delete(f"{table.member_of}/{member}").status_code == 200


def test_an_excluded_address_counts_as_a_reference(api):
    create(api, ADDRGRP)
    assert api.post(ADDRESS.path, json={"name": "other", "subnet": "192.0.2.2/32"}).status_code == 200
    api.put(f"{ADDRGRP.path}/grp-1", json={"exclude": "enable", "exclude-member": [{"name": "other"}]})
    assert api.delete(f"{ADDRESS.path}/other").json()["error"] == -23


def test_invalid_values_are_500_with_their_codes(api):
    bad_ip = api.post(ADDRESS.path, json={"name": "x", "subnet": "300.0.0.1/32"}).json()
    assert (bad_ip["http_status"], bad_ip["error"]) == (500, -8)
    bad_color = api.post(ADDRESS.path, json={"name": "x", "color": 99}).json()
    assert bad_color["error"] == -650
    long_name = api.post(ADDRESS.path, json={"name": "n" * 80}).json()
    assert long_name["error"] == -72
    no_name = api.post(ADDRESS.path, json={"subnet": "192.0.2.9/32"}).json()
    assert no_name["error"] == -651


def test_put_of_member_replaces_the_list(api):
    create(api, ADDRGRP)
    for name in ("h2", "h3"):
        api.post(ADDRESS.path, json={"name": name, "subnet": "192.0.2.7/32"})
    api.put(f"{ADDRGRP.path}/grp-1", json={"member": [{"name": "h2"}, {"name": "h3"}]})
    assert [m["name"] for m in rows(api, f"{ADDRGRP.path}/grp-1")[0]["member"]] == ["h2", "h3"]
    api.put(f"{ADDRGRP.path}/grp-1", json={"member": [{"name": "h3"}]})
    assert [m["name"] for m in rows(api, f"{ADDRGRP.path}/grp-1")[0]["member"]] == ["h3"]
    assert api.delete(f"{ADDRESS.path}/host-1").status_code == 200  # no longer referenced


def test_rename_through_put_follows_into_groups(api):
    create(api, ADDRGRP)
    env = api.put(f"{ADDRESS.path}/host-1", json={"name": "host-renamed"}).json()
    assert env["mkey"] == "host-renamed"
    assert rows(api, f"{ADDRGRP.path}/grp-1")[0]["member"][0]["name"] == "host-renamed"


def test_empty_group_is_allowed_from_7_2(api):
    assert api.post(ADDRGRP.path, json={"name": "empty"}).status_code == 200


def test_empty_group_is_refused_before_7_2(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "fgt-70", '[device]\nversion = "7.0.12"\n'))
    response = RequestsApi(fgt).post(ADDRGRP.path, json={"name": "empty", "member": []})
    assert response.status_code == 500
    assert response.json()["error"] == -56
    assert response.json()["version"] == "v7.0.12"


def test_6x_write_envelopes_have_no_revision_change_fields(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "fgt-604", '[device]\nversion = "6.0.4"\n'))
    api = RequestsApi(fgt)
    created = api.post(ADDRESS.path, json=ADDRESS.row).json()
    assert "old_revision" not in created and "revision_changed" not in created
    assert (created["version"], created["build"], created["status"]) == ("v6.0.4", 231, "success")
    missing = api.put(f"{ADDRESS.path}/nosuch", json={}).json()
    # The 6.0.4 capture of a PUT on a missing object (reference A.2, ansible/ansible #58914).
    assert set(missing) == {"build", "http_method", "http_status", "mkey", "name", "path", "revision", "serial",
                            "status", "vdom", "version"}


def test_delete_on_the_table_url_purges_unreferenced_objects(api):
    create(api, ADDRGRP)
    api.post(ADDRESS.path, json={"name": "loose", "subnet": "192.0.2.3/32"})
    assert api.delete(ADDRESS.path).status_code == 200
    assert [r["name"] for r in rows(api, ADDRESS.path)] == ["host-1"]  # still in grp-1


# -- revision -----------------------------------------------------------------------------------
def test_revision_changes_on_writes_only(api):
    first = api.get(ADDRESS.path).json()["revision"]
    assert api.get(ADDRESS.path).json()["revision"] == first
    create(api, ADDRESS)
    second = api.get(ADDRESS.path).json()["revision"]
    assert second != first
    api.post(ADDRESS.path, json=ADDRESS.row)  # refused duplicate: no change
    assert api.get(ADDRESS.path).json()["revision"] == second
    api.put(f"{ADDRESS.path}/host-1", json={"comment": "c"})
    third = api.get(ADDRESS.path).json()["revision"]
    api.delete(f"{ADDRESS.path}/host-1")
    assert len({first, second, third, api.get(ADDRESS.path).json()["revision"]}) == 4


# -- query parameters ---------------------------------------------------------------------------
@pytest.fixture
def three_addresses(api):
    for i, comment in enumerate(["web", "db", "web-backup"], start=1):
        api.post(ADDRESS.path, json={"name": f"a{i}", "subnet": f"198.51.100.{i}/32", "comment": comment})


def test_filter_operators_and_combinations(api, three_addresses):
    def names(*filters):
        return [r["name"] for r in rows(api, ADDRESS.path, filter=list(filters))]

    assert names("name==a2") == ["a2"]
    assert names("name!=a2") == ["a1", "a3"]
    assert names("comment=@web") == ["a1", "a3"]
    assert names("comment!@web") == ["a2"]
    assert names("name==a1,name==a2") == ["a1", "a2"]  # comma: OR
    assert names("comment=@web", "name!=a1") == ["a3"]  # repeated filter: AND


def test_format_limits_the_fields(api, three_addresses):
    results = rows(api, ADDRESS.path, format="name|subnet")
    assert results[0] == {"q_origin_key": "a1", "name": "a1", "subnet": "198.51.100.1 255.255.255.255"}


def test_start_and_count_page_through_a_table(api, three_addresses):
    page = api.get(ADDRESS.path, params={"start": 1, "count": 1}).json()
    assert [r["name"] for r in page["results"]] == ["a2"]
    assert (page["size"], page["matched_count"], page["next_idx"]) == (1, 3, 1)


# -- VDOMs --------------------------------------------------------------------------------------
@pytest.fixture
def two_vdoms(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "two-vdoms", """
        [device]
        vdoms = ["root", "customer"]
        factory_defaults = false

        [[device.api_users]]
        name = "agent"
        vdoms = ["root", "customer"]
    """))
    return RequestsApi(fgt)


def test_objects_live_in_their_vdom(two_vdoms):
    api = two_vdoms
    created = api.post(ADDRESS.path, params={"vdom": "customer"}, json=ADDRESS.row).json()
    assert created["vdom"] == "customer"
    assert rows(api, ADDRESS.path, vdom="customer")[0]["name"] == "host-1"
    assert rows(api, ADDRESS.path) == []  # no vdom: the user's first VDOM, root
    assert api.get(ADDRESS.path, params={"vdom": "root"}).json()["vdom"] == "root"
    assert api.get(f"{ADDRESS.path}/host-1").status_code == 404


@pytest.mark.parametrize("params", [{"vdom": "*"}, {"global": "1"}, {"vdom": "root,customer"}])
def test_all_vdoms_answer_an_array_of_envelopes(two_vdoms, params):
    two_vdoms.post(ADDRESS.path, params={"vdom": "customer"}, json=ADDRESS.row)
    answer = two_vdoms.get(ADDRESS.path, params=params).json()
    assert isinstance(answer, list)
    assert [env["vdom"] for env in answer] == ["root", "customer"]
    assert [len(env["results"]) for env in answer] == [0, 1]
    assert all(env["http_status"] == 200 for env in answer)


def test_empty_vdom_parameter_means_the_default_vdom(api):
    response = api.get(ADDRESS.path, params={"vdom": ""})
    assert response.status_code == 200 and response.json()["vdom"] == "root"


def test_scope_global_is_accepted(api):
    response = api.get("cmdb/system/global", params={"scope": "global"})
    assert response.status_code == 200 and response.json()["results"]["hostname"] == "fgt-mock"


# -- what clients put on the wire ---------------------------------------------------------------
def test_percent_encoded_and_raw_slash_names(api):
    create(api, ADDRESS, name="10.0.0.0/8", subnet="10.0.0.0/8")
    encoded = api.get(f"{ADDRESS.path}/10.0.0.0%2F8")
    assert encoded.status_code == 200 and encoded.json()["results"][0]["name"] == "10.0.0.0/8"
    raw = api.get(f"{ADDRESS.path}/10.0.0.0/8")
    assert raw.status_code == 200 and raw.json()["mkey"] == "10.0.0.0/8"
    assert api.delete(f"{ADDRESS.path}/10.0.0.0%2F8").status_code == 200


def test_spaces_and_unicode_in_names_round_trip(api):
    with httpx_client(api.device) as client:
        assert client.post(ADDRESS.path, json={"name": "branch office é", "subnet": "192.0.2.0/24"}).status_code == 200
        response = client.get(f"{ADDRESS.path}/branch%20office%20%C3%A9")
    assert response.json()["results"][0]["name"] == "branch office é"


@pytest.mark.parametrize("suffix", ["/", "//", "///host-1/", "//host-1"])
def test_trailing_and_double_slashes_are_normalised(api, suffix):
    create(api, ADDRESS)
    response = api.get(ADDRESS.path + suffix)
    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "host-1"


def test_double_slash_inside_the_path(api):
    response = api.get("cmdb//firewall//address")
    assert response.status_code == 200 and response.json()["name"] == "address"


@pytest.mark.parametrize("content_type", [None, "json", "application/json", "text/plain",
                                          "application/x-www-form-urlencoded"])
def test_json_body_is_read_whatever_the_content_type(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.post(ADDRESS.path, data=b'{"name": "h", "subnet": "192.0.2.5/32"}', headers=headers)
    assert response.status_code == 200, response.text
    assert rows(api, f"{ADDRESS.path}/h")[0]["subnet"] == "192.0.2.5 255.255.255.255"


def test_json_body_on_a_get_is_ignored(api, three_addresses):
    with httpx_client(api.device) as client:
        response = client.request("GET", ADDRESS.path, content=b'{"vdom": "root", "filter": "x"}')
    assert response.status_code == 200 and len(response.json()["results"]) == 3


def test_curl_creates_and_reads_an_address(api, curl):
    device = api.device
    base = [curl, "--silent", "--show-error", "--cacert", device.ca_bundle,
            "-H", f"Authorization: Bearer {device.token}"]
    url = f"{device.url}/api/v2/{ADDRESS.path}"
    subprocess.run([*base, "-X", "POST", "--data", '{"name":"via-curl","subnet":"192.0.2.77/32"}', url],
                   check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
    out = subprocess.run([*base, "-w", "\n%{http_code}", url + "/via-curl"], check=True, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"}).stdout
    body, code = out.rsplit("\n", 1)
    assert code == "200" and '"subnet":"192.0.2.77 255.255.255.255"' in body


def test_a_full_table_refuses_the_next_entry_with_error_minus_4(tmp_path, make_fortigate):
    """A CMDB table holds table_max_entries (a model's table size) and no more: error -4, "Maximum
    number of entries has been reached" (ref A.2.2); a deletion makes room. It also bounds memory."""
    path = write_scenario(tmp_path, "small-table", "[device.settings]\ntable_max_entries = 30\n")
    api = RequestsApi(make_fortigate(str(path)))
    present = len(api.get(ADDRESS.path).json()["results"])  # the factory objects count too
    assert present < 30
    for i in range(30 - present):
        assert api.post(ADDRESS.path, json={"name": f"h{i}", "subnet": f"192.0.2.{i + 1}/32"}).status_code == 200
    full = api.post(ADDRESS.path, json={"name": "one-more", "subnet": "192.0.2.200/32"})
    assert full.status_code == 500 and full.json()["error"] == -4
    assert api.delete(f"{ADDRESS.path}/h0").status_code == 200
    assert api.post(ADDRESS.path, json={"name": "one-more", "subnet": "192.0.2.200/32"}).status_code == 200
