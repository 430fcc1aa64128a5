"""FortiOS monitor endpoints and the device-wide endpoints clients read on connect, over the wire."""

from __future__ import annotations

import pytest

from fortios_client import RequestsApi, httpx_client, write_scenario

STATUS = "monitor/system/status"
GENERATE_KEY = "monitor/system/api-user/generate-key"
DYNAMIC = "monitor/system/external-resource/dynamic"


@pytest.fixture
def api(fortigate) -> RequestsApi:
    return RequestsApi(fortigate)


# -- system/status ------------------------------------------------------------------------------
def test_status_envelope_and_identity(api):
    body = api.get(STATUS).json()
    # Monitor success: no http_status (fortigate_exporter capture); 7.x adds action "".
    assert list(body) == ["http_method", "results", "vdom", "path", "name", "action", "status",
                          "serial", "version", "build"]
    assert (body["serial"], body["version"], body["build"]) == ("FGVM02TM24000001", "v7.4.5", 2702)
    assert body["results"] == {"model_name": "FortiGate", "model_number": "VM64", "model": "FGVM64",
                               "hostname": "fgt-mock", "log_disk_status": "available"}


def test_status_follows_the_emulated_version(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "fgt-623", """
        [device]
        version = "6.2.3"
        hostname = "branch-7"
        serial = "FGT60FTK20000042"
    """))
    with httpx_client(fgt) as client:
        body = client.get(STATUS).json()
    assert (body["version"], body["build"], body["serial"]) == ("v6.2.3", 1066, "FGT60FTK20000042")
    assert body["results"]["hostname"] == "branch-7"
    assert "action" not in body  # 6.x omits it on a plain GET


def test_status_select_echoes_the_action(api):
    body = api.get(STATUS + "/select").json()
    assert body["action"] == "select" and body["results"]["model"] == "FGVM64"


@pytest.mark.parametrize("path", ["monitor/system/status/", "monitor/system//status"])
def test_status_tolerates_slashes(api, path):
    assert api.get(path).status_code == 200


# -- generate-key -------------------------------------------------------------------------------
ADMIN = """
    [[device.api_users]]
    name = "agent"
    accprofile = "agent_rw"

    [[device.api_users]]
    name = "admin-api"
    accprofile = "super_admin"
"""


@pytest.fixture
def admin_device(make_fortigate, tmp_path):
    return make_fortigate(write_scenario(tmp_path, "with-admin", ADMIN))


def admin_api(device) -> RequestsApi:
    return RequestsApi(device, token=device.state.api_users["admin-api"].token)


def test_generate_key_returns_a_new_key_once_and_the_old_one_dies(admin_device):
    admin = admin_api(admin_device)
    old = admin_device.token
    response = admin.post(GENERATE_KEY, json={"api-user": "agent"})
    assert response.status_code == 200
    results = response.json()["results"]
    new = results["access_token"]
    assert results["api_key"] == new and new != old
    assert len(new) == 30 and new.isalnum()
    agent = RequestsApi(admin_device, token=None)
    assert agent.get(STATUS, token=old).status_code == 401
    assert agent.get(STATUS, token=new).status_code == 200
    again = admin.post(GENERATE_KEY, json={"api-user": "agent"}).json()["results"]["access_token"]
    assert again not in (old, new)
    assert agent.get(STATUS, token=new).status_code == 401


def test_regenerating_ones_own_key_ends_the_callers_key(admin_device):
    admin = admin_api(admin_device)
    new = admin.post(GENERATE_KEY, json={"api-user": "admin-api"}).json()["results"]["access_token"]
    assert admin.get(STATUS).status_code == 401
    assert admin.get(STATUS, token=new).status_code == 200


def test_generate_key_needs_sysgrp_read_write(api):
    response = api.post(GENERATE_KEY, json={"api-user": "agent"})  # agent_rw has sysgrp read
    assert response.status_code == 403
    assert response.json()["http_status"] == 403
    assert api.get(STATUS).status_code == 200  # and the key was not replaced


def test_generate_key_for_an_unknown_user_is_404(admin_device):
    response = admin_api(admin_device).post(GENERATE_KEY, json={"api-user": "ghost"})
    assert response.status_code == 404 and response.json()["mkey"] == "ghost"
    assert "error" not in response.json()  # like every captured 404


def test_generate_key_without_a_user_is_refused(admin_device):
    response = admin_api(admin_device).post(GENERATE_KEY, json={})
    assert response.status_code == 500 and response.json()["error"] == -651


def test_generate_key_is_post_only(admin_device):
    assert admin_api(admin_device).get(GENERATE_KEY).status_code == 405


# -- external-resource/dynamic ------------------------------------------------------------------
FEED = "mockfgt-blocklist"


@pytest.fixture
def feed_api(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "feed", ADMIN))
    return admin_api(fgt)


def push(api, *commands) -> tuple[int, dict]:
    response = api.post(DYNAMIC, json={"commands": list(commands)})
    return response.status_code, response.json()


def test_dynamic_feed_add_remove_snapshot(feed_api):
    entries = feed_api.device.state.external_resources[FEED]
    status, body = push(feed_api, {"name": FEED, "command": "add", "entries": ["192.0.2.1", "192.0.2.2"]})
    assert status == 200 and body["status"] == "success"
    assert body["results"] == [{"name": FEED, "entries": 2}]
    push(feed_api, {"name": FEED, "command": "add", "entries": ["192.0.2.2", "192.0.2.3"]})
    assert entries == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    push(feed_api, {"name": FEED, "command": "remove", "entries": ["192.0.2.1"]})
    assert entries == ["192.0.2.2", "192.0.2.3"]
    status, body = push(feed_api, {"name": FEED, "command": "snapshot", "entries": ["198.51.100.9"]})
    assert entries == ["198.51.100.9"] and body["results"][0]["entries"] == 1


def test_dynamic_feed_unknown_resource_is_refused_and_nothing_changes(feed_api):
    entries = feed_api.device.state.external_resources[FEED]
    status, body = push(
        feed_api,
        {"name": FEED, "command": "add", "entries": ["192.0.2.1"]},
        {"name": "no-such-feed", "command": "add", "entries": ["192.0.2.2"]},
    )
    assert (status, body["error"], body["mkey"]) == (500, -3, "no-such-feed")
    assert entries == []  # the batch is checked before anything is applied


@pytest.mark.parametrize("payload", [{}, {"commands": []}, {"commands": [{"name": FEED, "command": "flush"}]},
                                     {"commands": [{"name": FEED, "command": "add", "entries": "192.0.2.1"}]}])
def test_dynamic_feed_malformed_commands_are_400(feed_api, payload):
    response = feed_api.post(DYNAMIC, json=payload)
    assert response.status_code == 400 and response.json()["http_status"] == 400


def test_dynamic_feed_needs_sysgrp_read_write(api):
    assert api.post(DYNAMIC, json={"commands": [{"name": FEED, "command": "add", "entries": []}]}).status_code == 403


# -- endpoints clients read on connect (reference G.9) -----------------------------------------
def test_cmdb_system_global_is_a_singleton(api):
    body = api.get("cmdb/system/global").json()
    assert body["http_status"] == 200 and isinstance(body["results"], dict)
    results = body["results"]
    assert results["hostname"] == "fgt-mock"
    assert (results["admin-lockout-threshold"], results["admin-lockout-duration"]) == (3, 60)
    assert results["rest-api-key-url-query"] == "disable"
    assert results["vdom-mode"] == "no-vdom"


def test_system_global_reflects_the_query_token_setting(fortigate, api):
    fortigate.apply({"op": "set-query-token", "enabled": True})
    assert api.get("cmdb/system/global").json()["results"]["rest-api-key-url-query"] == "enable"


def test_system_global_before_7_4_5_has_no_query_token_setting(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "fgt-72", '[device]\nversion = "7.2.0"\n'))
    results = RequestsApi(fgt).get("cmdb/system/global").json()["results"]
    assert "rest-api-key-url-query" not in results
    assert results["admin-server-cert"] == "self-sign"


def test_cmdb_system_vdom_lists_the_vdoms(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "two-vdoms", '[device]\nvdoms = ["root", "customer"]\n'))
    api = RequestsApi(fgt)
    assert [row["name"] for row in api.get("cmdb/system/vdom").json()["results"]] == ["root", "customer"]
    assert api.get("cmdb/system/vdom/customer").json()["results"][0]["q_origin_key"] == "customer"
    assert api.get("cmdb/system/vdom/nosuch").status_code == 404
    assert api.get("cmdb/system/global").json()["results"]["vdom-mode"] == "multi-vdom"


def test_cmdb_system_dns_needs_sysgrp_not_netgrp(fortigate, api):
    """fortinet-api.md H.5: the FortiOS 6.4 API specification puts cmdb/system/dns in sysgrp."""
    results = api.get("cmdb/system/dns").json()["results"]  # agent_rw: sysgrp read, no netgrp
    assert results["primary"] == "96.45.45.45"
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "sysgrp", "access": "none"})
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "netgrp", "access": "read-write"})
    assert api.get("cmdb/system/dns").status_code == 403


def test_system_endpoints_are_read_only(api, admin_device):
    assert api.put("cmdb/system/global", json={"hostname": "x"}).status_code == 403  # sysgrp read
    refused = admin_api(admin_device).put("cmdb/system/global", json={"hostname": "x"})
    assert refused.status_code == 405 and refused.json()["http_status"] == 405


@pytest.mark.parametrize("path", ["monitor/license/status", "monitor/license/status/select"])
def test_license_status_is_open_to_any_profile(api, path):
    body = api.get(path).json()
    assert body["status"] == "success"
    assert body["results"]["vdom"] == {"type": "platform", "can_upgrade": False, "used": 1, "max": 10}


def test_system_interface_is_keyed_by_name_and_needs_netgrp(fortigate, api):
    assert api.get("monitor/system/interface").status_code == 403
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "netgrp", "access": "read"})
    body = api.get("monitor/system/interface/select", params={"scope": "global", "include_vlan": "true"}).json()
    port1 = body["results"]["port1"]
    assert (port1["name"], port1["ip"], port1["mask"], port1["link"]) == ("port1", "192.168.1.99", 24, True)
    assert body["action"] == "select"


# -- ?action=schema and ?action=default (reference G.7, A.2.3) ---------------------------------
@pytest.mark.parametrize("table", ["address", "address6", "addrgrp", "addrgrp6"])
def test_schema_of_address_tables(api, table):
    body = api.get(f"cmdb/firewall/{table}", params={"action": "schema"}).json()
    results = body["results"]
    assert body["http_status"] == 200
    assert (results["name"], results["category"], results["mkey"], results["mkey_type"]) == (table, "table", "name",
                                                                                             "string")
    assert results["access_group"] == "fwgrp"
    assert results["children"]["name"]["size"] == 79


def test_schema_describes_options_and_datasources(api):
    address = api.get("cmdb/firewall/address", params={"action": "schema"}).json()["results"]["children"]
    assert {"name": "ipmask"} in address["type"]["options"] and address["type"]["default"] == "ipmask"
    group = api.get("cmdb/firewall/addrgrp", params={"action": "schema"}).json()["results"]["children"]
    assert group["member"]["children"]["name"]["datasource"] == ["firewall.address.name", "firewall.addrgrp.name"]


def test_schema_of_system_endpoints(api):
    assert api.get("cmdb/system/global", params={"action": "schema"}).json()["results"]["category"] == "complex"
    assert api.get("cmdb/system/vdom", params={"action": "schema"}).json()["results"]["mkey"] == "name"


def test_default_row(api):
    row = api.get("cmdb/firewall/address", params={"action": "default"}).json()["results"]
    assert row["uuid"] == "00000000-0000-0000-0000-000000000000" and row["subnet"] == "0.0.0.0 0.0.0.0"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unsupported_actions_are_refused(api, method):
    response = api.request(method, "cmdb/firewall/address", params={"action": "clone", "nkey": "b"},
                           json={"name": "a"})
    assert response.status_code == 400
    assert "a" not in [row["name"] for row in api.get("cmdb/firewall/address").json()["results"]]
