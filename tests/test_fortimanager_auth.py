"""FortiManager credentials over real sockets: keys by version, sessions that idle out, trusted hosts
checked against the real peer address, the stock certificate, scenario errors and the CLI."""

from __future__ import annotations

import json
import shlex
import socket
import ssl
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

import mockfgt
from mockfgt.probe import probe

from deadlines import seconds
from fmgrpc import Rpc, admin_password, key_rpc, scenario_file


def version_file(tmp_path, version: str):
    return scenario_file(tmp_path, f"fmg-{version}", f'extends = "fmg-healthy"\n[device]\nversion = "{version}"\n')


# -- keys by version -------------------------------------------------------------------------------
@pytest.mark.parametrize(("version", "bearer", "query"), [
    ("7.2.1", -11, -11),  # no API keys before 7.2.2
    ("7.2.2", 0, 0),
    ("7.4.6", 0, 0),
    ("7.4.7", 0, -11),  # ?access_token= removed
    ("7.6.1", 0, 0),
    ("7.6.2", 0, -11),
    ("8.0.0", 0, -11),
])
def test_bearer_and_query_keys_by_version(fortimanager, tmp_path, version, bearer, query):
    fortimanager.use(version_file(tmp_path, version))
    assert Rpc(fortimanager, key=fortimanager.token).code("get", "/sys/status") == bearer
    assert Rpc(fortimanager, query_key=fortimanager.token).code("get", "/sys/status") == query


def test_query_key_can_be_turned_back_on(fortimanager, tmp_path):
    fortimanager.use(version_file(tmp_path, "7.6.3"))
    fortimanager.apply({"op": "set-query-token", "enabled": True})
    assert Rpc(fortimanager, query_key=fortimanager.token).code("get", "/sys/status") == 0


def test_regenerated_key_fails_at_once_and_the_new_one_works(fortimanager):
    old = fortimanager.token
    fortimanager.apply({"op": "regenerate-key", "user": "agent"})
    assert Rpc(fortimanager, key=old).code("get", "/sys/status") == -11
    assert Rpc(fortimanager, key=fortimanager.token).code("get", "/sys/status") == 0


def test_a_bad_bearer_key_is_not_rescued_by_a_valid_session(fortimanager):
    rpc = Rpc(fortimanager)
    rpc.login("admin", admin_password(fortimanager))
    assert Rpc(fortimanager, key="A" * 30, session=rpc.session).code("get", "/sys/status") == -11
    assert Rpc(fortimanager, session=rpc.session).code("get", "/sys/status") == 0


# -- sessions and the idle timeout -------------------------------------------------------------------
def test_a_session_idles_out_with_the_device_setting(fortimanager):
    fortimanager.apply({"op": "set-idle-timeout", "seconds": 0})
    rpc = Rpc(fortimanager)
    assert rpc.login("admin", admin_password(fortimanager))["result"][0]["status"]["code"] == 0
    assert rpc.code("get", "/sys/status") == -11  # idle for longer than 0 s: gone


def test_a_session_outlives_calls_within_the_idle_timeout(fortimanager):
    rpc = Rpc(fortimanager)
    rpc.login("admin", admin_password(fortimanager))
    assert [rpc.code("get", "/sys/status") for _ in range(3)] == [0, 0, 0]


def test_idle_timeout_from_a_scenario_file(make_fortimanager, tmp_path):
    text = 'extends = "fmg-healthy"\n[device.settings]\nidle_timeout_api = 0.2\n'
    path = scenario_file(tmp_path, "short-idle", text)
    fmg = make_fortimanager(path)
    rpc = Rpc(fmg)
    rpc.login("admin", admin_password(fmg))
    time.sleep(0.4)  # past the idle timeout, whatever the machine's speed
    assert rpc.code("get", "/sys/status") == -11


def test_expired_session_scenario_remedy_logs_in_again(fortimanager):
    device = fortimanager.use("fmg-session-expired")
    assert device.client.auth == "session" and device.client.session is not None and device.client.token is None
    assert Rpc(device, session=device.client.session).code("get", "/sys/status") == -11
    fixed = device.remedy()
    assert fixed.auth == "password" and probe(fixed, kind="fortimanager").code == mockfgt.OK


# -- trusted hosts against the real peer address ------------------------------------------------------
def test_trusthosts_refuse_the_key_and_the_login_from_outside(fortimanager):
    fortimanager.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["192.0.2.0/24"]})
    fortimanager.apply({"op": "set-trusthosts", "user": "admin", "trusthosts": ["192.0.2.0 255.255.255.0"]})
    assert key_rpc(fortimanager).code("get", "/sys/status") == -11
    assert Rpc(fortimanager).login("admin", admin_password(fortimanager))["result"][0]["status"]["code"] == -22
    fortimanager.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["192.0.2.0/24", "127.0.0.1/32"]})
    assert key_rpc(fortimanager).code("get", "/sys/status") == 0


def test_trusthost_slots_over_jsonrpc(fortimanager):
    fortimanager.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["192.0.2.0/24"]})
    admin = Rpc(fortimanager)
    admin.login("admin", admin_password(fortimanager))
    url = "/cli/global/system/admin/user/agent"
    row = admin.one("get", url)["data"]
    assert row["trusthost1"] == ["192.0.2.0", "255.255.255.0"] and row["trusthost10"] == ["0.0.0.0", "0.0.0.0"]
    assert row["ip6-trusthost1"] == "::/0"
    assert admin.code("update", url, {"trusthost2": ["127.0.0.1", "255.255.255.255"]}) == 0
    assert key_rpc(fortimanager).code("get", "/sys/status") == 0
    assert admin.code("update", url, {"trusthost2": "300.1.1.1/32"}) == -10
    assert admin.code("update", url, {"ip6-trusthost1": "10.0.0.0/8"}) == -10
    assert admin.code("update", url, {"trusthost11": "10.0.0.0/8"}) == -10  # ten slots per family


def test_trusthost_updates_need_super_user(fortimanager):
    fortimanager.apply({"op": "set-profile", "user": "agent", "profile": "Standard_User"})
    rpc = key_rpc(fortimanager)
    assert rpc.code("get", "/cli/global/system/admin/user/agent") == 0
    assert rpc.code("update", "/cli/global/system/admin/user/agent", {"trusthost3": "10.0.0.0/8"}) == -11


def test_trusthosts_are_per_address_family_on_ipv6(make_fortimanager):
    fmg = make_fortimanager(host="::1")
    fmg.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["192.0.2.0/24"]})
    assert key_rpc(fmg).code("get", "/sys/status") == 0  # no IPv6 slot set: any IPv6 source
    fmg.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["192.0.2.0/24", "2001:db8::/32"]})
    assert key_rpc(fmg).code("get", "/sys/status") == -11
    fmg.apply({"op": "set-trusthosts", "user": "agent", "trusthosts": ["2001:db8::/32", "::1/128"]})
    assert key_rpc(fmg).code("get", "/sys/status") == 0


# -- scenario files ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "key", "words"), [
    ('[[device.admins]]\nname = "agent"\nprofile = "Boss"\n', "device.admins[0].profile", "Super_User"),
    ('[[device.admins]]\nname = "agent"\nadoms = ["nowhere"]\n', "device.admins[0].adoms", "all_adoms"),
    ('[[device.admins]]\nname = "agent"\npassword = "x"\n', "device.admins[0].password", "user_type"),
    ('[[device.admins]]\nname = "agent"\ntrusthosts = [' + ", ".join(f'"10.0.{i}.0/24"' for i in range(11)) + "]\n",
     "device.admins[0].trusthosts", "at most 10"),
    ('[device.settings]\nworkspace_mode = "on"\n', "device.settings.workspace_mode", "normal"),
    ('[device.profiles.mine]\nfirewall = "read"\n', "device.profiles.mine.firewall", "policy-objects"),
    ('[[device.devices]]\nname = "fgt"\nadom = "other"\n', "device.devices[0].adom", "device.adoms"),
    ('[client]\nauth = "cookie"\n', "client.auth", "password"),
])
def test_bad_scenario_files_name_the_key_and_what_is_allowed(tmp_path, body, key, words):
    path = scenario_file(tmp_path, "bad", f'extends = "fmg-healthy"\n{body}')
    with pytest.raises(mockfgt.ScenarioError) as caught:
        mockfgt.load_scenario(path)
    assert caught.value.key == key and words in caught.value.message and str(path) in str(caught.value)


# -- the stock certificate -------------------------------------------------------------------------
def test_stock_certificate_is_self_signed_cn_serial_without_san(fortimanager):
    fortimanager.use("fmg-stock-cert")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", fortimanager.port), timeout=seconds(10)) as raw:
        with ctx.wrap_socket(raw) as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    subject = {a.oid: a.value for a in cert.subject}
    assert subject[NameOID.ORGANIZATION_NAME] == "Fortinet"
    assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "FortiManager"
    assert subject[NameOID.COMMON_NAME] == fortimanager.scenario.device["serial"] and cert.issuer == cert.subject
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


# -- the CLI ----------------------------------------------------------------------------------------
def test_serve_prints_a_jsonrpc_curl_line_that_works(tmp_path, curl):
    server = subprocess.Popen(
        [sys.executable, "-m", "mockfgt.cli", "serve", "--scenario", "fmg-healthy", "--port", "0",
         "--certs-dir", str(tmp_path / "certs")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        while not lines or "Press Ctrl+C" not in lines[-1]:
            lines.append(server.stdout.readline())
            assert lines[-1], "".join(lines)
        text = "".join(lines)
        assert "FortiManager 'fmg-healthy' ready" in text and "/jsonrpc" in text and "API key" in text
        command = shlex.split(next(line for line in lines if line.strip().startswith("curl")))
        done = subprocess.run([curl, "--silent", *command[1:]], capture_output=True, text=True, timeout=seconds(30))
        answer = json.loads(done.stdout)
        assert answer["result"][0]["status"]["code"] == 0 and answer["result"][0]["url"] == "/sys/status"
    finally:
        server.terminate()
        server.wait(timeout=seconds(10))
