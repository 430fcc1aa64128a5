"""FortiOS authentication and authorisation over the wire: tokens, trusted hosts, profiles, VDOMs, lockout.

Every request goes over a real TLS socket to a mock FortiGate, from requests or httpx. Expected
bodies are the reference's captures (fortinet-api.md A.1.4, A.2, A.5, D), typed out here rather than
imported from the code under test.
"""

from __future__ import annotations

import time

import pytest

from fortios_client import RequestsApi, httpx_client, write_scenario

# fortinet-api.md A.1.4 and H.11, FortiOS 7.4.x, byte for byte: Apache's line breaks, two spaces after
# "requested.", a final newline, 503 bytes.
UNAUTHORIZED_74 = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>401 Unauthorized</title>\n'
    "</head><body>\n<h1>Unauthorized</h1>\n<p>This server could not verify that you\nare authorized to access "
    "the document\nrequested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\n"
    "browser doesn't understand how to supply\nthe credentials required.</p>\n<p>Additionally, a 401 "
    "Unauthorized\nerror was encountered while trying to use an ErrorDocument to handle the request.</p>\n"
    "</body></html>\n"
)
assert len(UNAUTHORIZED_74.encode()) == 503
# Apache's stock 429 page (fortinet-api.md H.11).
TOO_MANY_REQUESTS_TEXT = "The user has sent too many requests\nin a given amount of time."
STATUS = "monitor/system/status"
ADDRESSES = "cmdb/firewall/address"


def assert_unauthorized_page(response, page: str = UNAUTHORIZED_74) -> None:
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == page


# -- tokens -------------------------------------------------------------------------------------
def test_bearer_token_in_the_header_is_accepted(fortigate):
    response = RequestsApi(fortigate).get(STATUS)
    assert response.status_code == 200
    assert response.json()["status"] == "success"
    with httpx_client(fortigate) as client:
        assert client.get(STATUS).json()["serial"] == fortigate.scenario.device["serial"]


def test_generated_keys_look_like_the_devices(fortigate):
    token = fortigate.token
    assert len(token) == 30 and token.isalnum() and token.isascii()


@pytest.mark.parametrize("token", [None, "not-a-key", "A" * 30], ids=["missing", "odd", "unknown"])
def test_missing_or_unknown_token_gets_the_apache_401_page(fortigate, token):
    """fortinet-api.md A.1.4 and H.11: exporter and provider issues quote the raw 7.4.x body, 503 bytes."""
    assert_unauthorized_page(RequestsApi(fortigate).get(STATUS, token=token))


def test_unknown_token_401_is_the_same_for_httpx_and_on_cmdb(fortigate):
    with httpx_client(fortigate, token="B" * 30) as client:
        response = client.get(ADDRESSES)
    assert response.status_code == 401
    assert response.text == UNAUTHORIZED_74


def test_6x_devices_send_the_older_authorization_required_page(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "old-fgt", '[device]\nversion = "6.4.14"\n'))
    response = RequestsApi(fgt).get(STATUS, token=None)
    assert response.status_code == 401
    assert "<title>401 Authorization Required</title>" in response.text
    assert "Additionally" not in response.text


def test_query_token_is_refused_from_7_4_5_by_default(fortigate):
    api = RequestsApi(fortigate)
    response = api.get(STATUS, token=None, params={"access_token": fortigate.token})
    assert_unauthorized_page(response)
    assert api.get(STATUS).status_code == 200  # the same key in the header works


def test_query_token_is_accepted_before_7_4_5(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "fgt-744", '[device]\nversion = "7.4.4"\n'))
    with httpx_client(fgt, token="") as client:
        response = client.get(STATUS, params={"access_token": fgt.token}, headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json()["version"] == "v7.4.4"


def test_rest_api_key_url_query_enable_lets_the_query_token_in(fortigate):
    fortigate.apply({"op": "set-query-token", "enabled": True})
    response = RequestsApi(fortigate).get(STATUS, token=None, params={"access_token": fortigate.token})
    assert response.status_code == 200


def test_a_regenerated_key_is_refused_at_once(fortigate):
    old = fortigate.token
    fortigate.apply({"op": "regenerate-key", "user": "agent"})
    api = RequestsApi(fortigate)
    assert_unauthorized_page(api.get(STATUS, token=old))
    assert api.get(STATUS, token=fortigate.token).status_code == 200


def test_a_disabled_api_user_is_refused(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "disabled", """
        [[device.api_users]]
        name = "agent"
        enabled = false
    """))
    assert_unauthorized_page(RequestsApi(fgt).get(STATUS))


# -- trusted hosts: checked against the real peer -----------------------------------------------
TRUSTS_ONLY_IPV4_LOOPBACK = """
    [[device.api_users]]
    name = "agent"
    trusthosts = ["127.0.0.1/32"]
"""


def test_trusthost_is_checked_against_the_peer_address(make_fortigate, tmp_path):
    scenario = write_scenario(tmp_path, "v4-only", TRUSTS_ONLY_IPV4_LOOPBACK)
    on_v4 = make_fortigate(scenario)
    on_v6 = make_fortigate(scenario, host="::1")
    assert RequestsApi(on_v4).get(STATUS).status_code == 200
    # Same user, same key, same trusthosts: only the peer differs (::1 is outside 127.0.0.1/32).
    assert_unauthorized_page(RequestsApi(on_v6).get(STATUS))


def test_ipv6_trusthost_admits_the_ipv6_peer_only(make_fortigate, tmp_path):
    scenario = write_scenario(tmp_path, "v6-only", """
        [[device.api_users]]
        name = "agent"
        trusthosts = ["::1/128", "192.0.2.0 255.255.255.0"]
    """)
    assert RequestsApi(make_fortigate(scenario, host="::1")).get(STATUS).status_code == 200
    assert_unauthorized_page(RequestsApi(make_fortigate(scenario)).get(STATUS))


def test_set_trusthosts_takes_effect_on_the_next_request(fortigate):
    api = RequestsApi(fortigate)
    fortigate.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["192.0.2.0/24"]})
    assert_unauthorized_page(api.get(STATUS))
    fortigate.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["127.0.0.0 255.0.0.0"]})
    assert api.get(STATUS).status_code == 200


# -- access profiles ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("access", "read_status", "write_status"),
    [("none", 403, 403), ("read", 200, 403), ("read-write", 200, 200)],
)
def test_fwgrp_access_decides_reads_and_writes(fortigate, access, read_status, write_status):
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "fwgrp", "access": access})
    api = RequestsApi(fortigate)
    assert api.get(ADDRESSES).status_code == read_status
    created = api.post(ADDRESSES, json={"name": "h1", "subnet": "192.0.2.1/32"})
    assert created.status_code == write_status
    assert created.json()["http_status"] == write_status


def test_denied_write_gets_the_fortios_403_envelope(fortigate):
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "fwgrp", "access": "read"})
    response = RequestsApi(fortigate).put(f"{ADDRESSES}/h1", json={"comment": "x"})
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    # Shape of the captured 403 on PUT (reference A.5, issue #292): no 'error' field.
    assert set(body) == {"http_method", "revision", "revision_changed", "mkey", "status", "http_status",
                         "vdom", "path", "name", "serial", "version", "build"}
    assert body["revision_changed"] is False
    assert (body["http_method"], body["status"], body["http_status"], body["mkey"]) == ("PUT", "error", 403, "h1")
    assert (body["path"], body["name"], body["vdom"], body["version"]) == ("firewall", "address", "root", "v7.4.5")


def test_sysgrp_guards_device_settings(fortigate):
    api = RequestsApi(fortigate)
    assert api.get("cmdb/system/global").status_code == 200  # agent_rw has sysgrp read
    fortigate.apply({"op": "set-access", "profile": "agent_rw", "group": "sysgrp", "access": "none"})
    denied = api.get("cmdb/system/global")
    assert denied.status_code == 403 and denied.json()["status"] == "error"
    assert api.get(STATUS).status_code == 200  # access group 'any'


# -- VDOMs --------------------------------------------------------------------------------------
TWO_VDOMS = '[device]\nvdoms = ["root", "customer"]\n'


def test_vdom_not_assigned_gets_the_captured_403(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "two-vdoms", TWO_VDOMS))
    response = RequestsApi(fgt).get(STATUS, params={"vdom": "customer"})
    assert response.status_code == 403
    # Exactly the KB ta-p/344460 capture (reference A.2).
    assert response.json() == {"http_method": "GET", "status": "error", "http_status": 403, "vdom": "customer",
                               "path": "system", "name": "status", "action": ""}


def test_unknown_vdom_is_refused_like_an_unassigned_one(fortigate):
    response = RequestsApi(fortigate).get(ADDRESSES, params={"vdom": "nosuch"})
    assert response.status_code == 403
    assert response.json()["vdom"] == "nosuch"


def test_assigning_the_vdom_lets_the_user_in(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "two-vdoms", TWO_VDOMS))
    fgt.apply({"op": "assign-vdom", "user": "agent", "vdom": "customer"})
    response = RequestsApi(fgt).get(ADDRESSES, params={"vdom": "customer"})
    assert response.status_code == 200 and response.json()["vdom"] == "customer"


# -- lockout ------------------------------------------------------------------------------------
def fail_login(api, times: int) -> list[int]:
    return [api.get(STATUS, token="Z" * 30).status_code for _ in range(times)]


def test_lockout_after_three_failures_blocks_even_the_right_key(fortigate):
    """fortinet-api.md A.1.4; the body is Apache's stock 429 page (H.11, a browser render of the device's)."""
    api = RequestsApi(fortigate)
    assert fail_login(api, 3) == [401, 401, 401]
    blocked = api.get(STATUS)
    assert blocked.status_code == 429
    assert blocked.headers["Content-Type"].startswith("text/html")
    assert TOO_MANY_REQUESTS_TEXT in blocked.text and "Additionally, a 429 Too Many Requests" in blocked.text


def test_a_success_resets_the_failure_count(fortigate):
    api = RequestsApi(fortigate)
    assert fail_login(api, 2) == [401, 401]
    assert api.get(STATUS).status_code == 200
    assert fail_login(api, 2) == [401, 401]
    assert api.get(STATUS).status_code == 200


def test_lockout_ends_after_its_duration(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "short-lockout", """
        [device.settings]
        admin_lockout_threshold = 1
        admin_lockout_duration = 1
    """))
    api = RequestsApi(fgt)
    assert fail_login(api, 1) == [401]
    assert api.get(STATUS).status_code == 429
    time.sleep(1.2)
    assert api.get(STATUS).status_code == 200


def test_threshold_zero_never_locks_out(make_fortigate, tmp_path):
    fgt = make_fortigate(write_scenario(tmp_path, "no-lockout", """
        [device.settings]
        admin_lockout_threshold = 0
    """))
    api = RequestsApi(fgt)
    assert set(fail_login(api, 5)) == {401}
    assert api.get(STATUS).status_code == 200


def test_clear_lockouts_lifts_a_lockout(fortigate):
    fortigate.apply({"op": "lock-out", "address": "127.0.0.1"})
    api = RequestsApi(fortigate)
    assert api.get(STATUS).status_code == 429
    fortigate.apply({"op": "clear-lockouts"})
    assert api.get(STATUS).status_code == 200


def test_lockout_is_per_source_address(make_fortigate):
    fgt = make_fortigate(host="::1")
    fgt.apply({"op": "lock-out", "address": "127.0.0.1"})
    assert RequestsApi(fgt).get(STATUS).status_code == 200  # the peer is ::1, not 127.0.0.1
