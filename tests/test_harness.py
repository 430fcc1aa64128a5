"""Many devices, the manifest, the control API, `mockfgt ctl` and the request journal, over real sockets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mockfgt import Harness

from deadlines import seconds

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STATUS = "/api/v2/monitor/system/status"


@pytest.fixture
def harness(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca) as h:
        h.add("fgt-healthy")
        h.add("expired-cert")
        h.add("token-regenerated")
        h.start(manifest=tmp_path / "run" / "mockfgt.json")
        yield h


def control(h, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {h.control_token}", **kwargs.pop("headers", {})}
    return requests.request(method, h.control_url + path, headers=headers, timeout=seconds(5), **kwargs)


def status(device_entry, token, **kwargs):
    return requests.get(device_entry["url"] + STATUS, headers={"Authorization": f"Bearer {token}"},
                        verify=device_entry["ca_bundle"], timeout=seconds(5), **kwargs)


# -- manifest -----------------------------------------------------------------------------------
def test_manifest_describes_every_device(harness):
    doc = json.loads(harness.manifest_path.read_text())
    assert doc["control_url"] == harness.control_url
    by_name = {d["name"]: d for d in doc["devices"]}
    assert set(by_name) == {"fgt-healthy", "expired-cert", "token-regenerated"}
    healthy = by_name["fgt-healthy"]
    assert status(healthy, healthy["token"]).status_code == 200
    assert by_name["expired-cert"]["expect"] == "202003" and by_name["expired-cert"]["expect_insecure"] == "ok"
    stale = by_name["token-regenerated"]
    assert stale["client"]["token"] != stale["token"]  # what the agent holds vs the live key
    assert status(stale, stale["client"]["token"]).status_code == 401
    assert healthy["control_url"] == f"{harness.control_url}/devices/fgt-healthy"


def test_manifest_gives_private_ca_and_client_certificate_paths(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca, control_port=None) as h:
        h.add("private-ca")
        h.add("client-cert-required")
        h.start(manifest=tmp_path / "m.json")
        doc = {d["name"]: d for d in json.loads((tmp_path / "m.json").read_text())["devices"]}
    assert Path(doc["private-ca"]["private_ca_bundle"]).is_file()
    pair = doc["client-cert-required"]["client_certificate"]
    assert Path(pair["cert"]).is_file() and Path(pair["key"]).is_file()
    assert doc["private-ca"]["control_url"] is None


def test_manifest_write_is_atomic_and_removed_on_stop(mockfgt_ca, tmp_path):
    path = tmp_path / "m.json"
    path.write_text("stale from an earlier run")
    h = Harness(ca=mockfgt_ca)
    h.add("fgt-healthy")
    h.start(manifest=path)
    json.loads(path.read_text())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mockfgt-manifest-")]
    h.stop()
    assert not path.exists()


# -- control API --------------------------------------------------------------------------------
def test_control_lists_and_shows_devices(harness):
    listed = control(harness, "GET", "/devices").json()
    assert [d["name"] for d in listed] == ["fgt-healthy", "expired-cert", "token-regenerated"]
    assert control(harness, "GET", "/devices/expired-cert").json()["scenario"] == "expired-cert"


def test_control_switches_scenario_and_resets(harness):
    answer = control(harness, "POST", "/devices/fgt-healthy/scenario", json={"scenario": "read-only-profile"})
    assert answer.status_code == 200 and answer.json()["expect"] == "202002"
    device = harness.device("fgt-healthy")
    assert device.scenario.name == "read-only-profile"
    control(harness, "POST", "/devices/fgt-healthy/scenario", json={"scenario": "fgt-healthy"})
    requests.post(device.url + "/api/v2/cmdb/firewall/address", json={"name": "x", "subnet": "192.0.2.9/32"},
                  headers={"Authorization": f"Bearer {device.token}"}, verify=device.ca_bundle, timeout=seconds(5))
    assert "x" in device.state.table("root", "firewall/address")
    control(harness, "POST", "/devices/fgt-healthy/reset")
    assert "x" not in device.state.table("root", "firewall/address")


def test_control_remedy_fixes_the_fault(harness):
    entry = control(harness, "GET", "/devices/expired-cert").json()
    with pytest.raises(requests.exceptions.SSLError):
        status(entry, entry["token"])
    fixed = control(harness, "POST", "/devices/expired-cert/remedy").json()
    assert status(fixed, fixed["token"]).status_code == 200


def test_control_regenerates_key_and_rewrites_manifest(harness):
    before = control(harness, "GET", "/devices/fgt-healthy").json()
    after = control(harness, "POST", "/devices/fgt-healthy/regenerate-key", json={}).json()
    assert after["token"] != before["token"]
    assert status(after, before["token"]).status_code == 401
    assert status(after, after["token"]).status_code == 200
    on_disk = {d["name"]: d for d in json.loads(harness.manifest_path.read_text())["devices"]}
    assert on_disk["fgt-healthy"]["token"] == after["token"]


def test_control_sets_trusthosts(harness):
    entry = control(harness, "POST", "/devices/fgt-healthy/trusthosts", json={"trusthosts": ["192.0.2.0/24"]}).json()
    assert status(entry, entry["token"]).status_code == 401
    control(harness, "POST", "/devices/fgt-healthy/trusthosts", json={"trusthosts": ["127.0.0.1/32"]})
    assert status(entry, entry["token"]).status_code == 200


def test_control_errors_are_json_with_a_reason(harness):
    missing = control(harness, "GET", "/devices/nope")
    assert missing.status_code == 404 and "fgt-healthy" in missing.json()["error"]
    bad_scenario = control(harness, "POST", "/devices/fgt-healthy/scenario", json={"scenario": "expird-cert"})
    assert bad_scenario.status_code == 400 and "expired-cert" in bad_scenario.json()["error"]
    as_json = {"Content-Type": "application/json"}
    no_body = control(harness, "POST", "/devices/fgt-healthy/scenario", data="not json", headers=as_json)
    assert no_body.status_code == 400 and "not JSON" in no_body.json()["error"]
    a_list = control(harness, "POST", "/devices/fgt-healthy/scenario", data="[]", headers=as_json)
    assert a_list.status_code == 400 and "JSON object" in a_list.json()["error"]
    bad_op = control(harness, "POST", "/devices/fgt-healthy/op", json={"op": "regenerate-kye", "user": "agent"})
    assert bad_op.status_code == 400 and "regenerate-key" in bad_op.json()["error"]
    wrong_method = control(harness, "DELETE", "/devices/fgt-healthy")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]


def test_control_refuses_a_non_loopback_address_unless_asked(mockfgt_ca):
    with pytest.raises(ValueError, match="not loopback"):
        Harness(ca=mockfgt_ca, control_host="0.0.0.0")


# -- journal ------------------------------------------------------------------------------------
def test_journal_records_requests_with_credentials_redacted(fortigate):
    token = fortigate.token
    requests.post(fortigate.url + "/api/v2/cmdb/firewall/address?access_token=" + token,
                  json={"name": "j1", "subnet": "192.0.2.1/32"},
                  headers={"Authorization": f"Bearer {token}"}, verify=fortigate.ca_bundle, timeout=seconds(5))
    entry = fortigate.assert_request_made("POST", "/api/v2/cmdb/firewall/address", status=200)[0]
    assert entry["headers"]["Authorization"] == "Bearer <redacted>"
    assert entry["query"] == "access_token=<redacted>"
    assert json.loads(entry["body"]) == {"name": "j1", "subnet": "192.0.2.1/32"}
    assert entry["result"]["mkey"] == "j1"
    assert entry["tls"]["version"] in ("TLSv1.2", "TLSv1.3") and entry["tls"]["client_certificate"] is False
    assert token not in json.dumps(fortigate.journal.events())


def test_journal_redacts_passwords_in_bodies(fortigate):
    requests.post(fortigate.url + "/logincheck", data={"username": "admin", "secretkey": "hunter2"},
                  verify=fortigate.ca_bundle, timeout=seconds(5))
    requests.post(fortigate.url + "/jsonrpc", json={"params": [{"data": {"user": "a", "passwd": "hunter2"}}]},
                  verify=fortigate.ca_bundle, timeout=seconds(5))
    assert "hunter2" not in json.dumps(fortigate.journal.events())


def test_journal_shows_the_alert_of_a_client_that_refused_the_certificate(make_fortigate, curl):
    device = make_fortigate()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(device.url + STATUS, verify=True, timeout=seconds(5))  # the system store: harness CA unknown
    subprocess.run([curl, "-s", "-o", "/dev/null", "--cacert", device.ca_bundle,
                    f"https://localhost:{device.port}{STATUS}"], check=False, env=_clean_env())
    failed = [e for e in device.journal.events() if e["event"] == "tls-failed"]
    assert failed and failed[0]["tls"]["alert"] == "unknown ca"
    answered = device.assert_request_made("GET", STATUS, status=401, count=1)[0]
    assert answered["tls"]["sni"] == "localhost"


def test_journal_records_connection_faults(make_fortigate):
    device = make_fortigate("reset-on-connect")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(device.url + STATUS, verify=device.ca_bundle, timeout=seconds(5))
    assert device.journal.events()[0]["event"] == "reset"


def test_assert_request_made_explains_what_was_seen(fortigate):
    requests.get(fortigate.url + STATUS, verify=fortigate.ca_bundle, timeout=seconds(5))
    with pytest.raises(AssertionError, match=r"(?s)found 0.*GET /api/v2/monitor/system/status -> 401"):
        fortigate.assert_request_made("POST", "/api/v2/cmdb/firewall/address")


def test_journal_over_control_api_since_and_clear(harness):
    entry = control(harness, "GET", "/devices/fgt-healthy").json()
    status(entry, entry["token"])
    status(entry, "wrong")
    events = control(harness, "GET", "/devices/fgt-healthy/journal").json()
    assert [e["status"] for e in events] == [200, 401]
    later = control(harness, "GET", f"/devices/fgt-healthy/journal?since={events[0]['seq']}").json()
    assert [e["status"] for e in later] == [401]
    control(harness, "DELETE", "/devices/fgt-healthy/journal")
    assert control(harness, "GET", "/devices/fgt-healthy/journal").json() == []


# -- the command line ---------------------------------------------------------------------------
def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def ctl(*args, env=None):
    return subprocess.run([str(BIN / "mockfgt"), "ctl", *args], capture_output=True, text=True,
                          env=env or _clean_env(), timeout=seconds(30))


def test_ctl_steers_a_harness(harness):
    url = harness.control_url
    shown = ctl("--control", url, "--token", harness.control_token, "show", "fgt-healthy", "url")
    assert shown.returncode == 0 and shown.stdout.strip() == harness.device("fgt-healthy").url
    env = {**_clean_env(), "MOCKFGT_MANIFEST": str(harness.manifest_path)}
    regenerated = ctl("regenerate-key", "fgt-healthy", env=env)
    assert json.loads(regenerated.stdout)["token"] == harness.device("fgt-healthy").token
    wrong = ctl("--control", url, "show", "fgt-healthy", "url", env={**env, "MOCKFGT_CONTROL_TOKEN": "wrong"})
    assert wrong.returncode == 1 and "needs its token" in wrong.stderr  # the variable wins over the manifest
    missing = ctl("--control", url, "show", "fgt-healthy", "nope", env=env)  # the manifest's token: that run's
    assert missing.returncode == 1 and "fields here" in missing.stderr


def test_ctl_says_what_is_missing():
    no_target = ctl("devices", env={k: v for k, v in _clean_env().items() if not k.startswith("MOCKFGT_")})
    assert no_target.returncode == 2
    unreachable = ctl("--control", "http://127.0.0.1:9", "devices")
    assert unreachable.returncode == 3 and "is `mockfgt serve` running" in unreachable.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_recipe_shell_script(curl):
    done = subprocess.run(["bash", str(ROOT / "tests" / "shell" / "ci-recipe.sh")], capture_output=True,
                          text=True, env=_clean_env(), timeout=seconds(120))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ci-recipe: ok" in done.stdout


def test_serve_refuses_a_single_port_for_several_devices():
    done = subprocess.run([str(BIN / "mockfgt"), "serve", "--scenario", "fgt-healthy", "--scenario",
                           "expired-cert", "--port", "8443"], capture_output=True, text=True, timeout=seconds(30))
    assert done.returncode == 2 and "--base-port" in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_a_remote_control_api_without_the_flag(tmp_path):
    done = subprocess.run([str(BIN / "mockfgt"), "serve", "--port", "0", "--control-host", "0.0.0.0",
                           "--certs-dir", str(tmp_path)], capture_output=True, text=True, timeout=seconds(30))
    assert done.returncode == 2 and "--allow-remote-control" in done.stderr and "Traceback" not in done.stderr


def test_serve_a_directory_with_base_ports(tmp_path, mockfgt_ca):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "one.toml").write_text('extends = "fgt-healthy"\nsummary = "one"\n')
    (folder / "two.toml").write_text('extends = "expired-cert"\nsummary = "two"\n')
    manifest = tmp_path / "m.json"
    server = subprocess.Popen([str(BIN / "mockfgt"), "serve", "--scenario", str(folder), "--base-port", "0",
                               "--manifest", str(manifest), "--certs-dir", str(tmp_path / "certs")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_clean_env())
    try:
        import time
        deadline = time.monotonic() + seconds(10)
        while not manifest.exists() and time.monotonic() < deadline:
            server.poll()
            assert server.returncode is None, server.stdout.read()
            time.sleep(0.1)
        devices = {d["name"]: d for d in json.loads(manifest.read_text())["devices"]}
        assert set(devices) == {"one", "two"} and devices["two"]["expect"] == "202003"
        assert status(devices["one"], devices["one"]["token"]).status_code == 200
    finally:
        server.terminate()
        assert server.wait(timeout=seconds(10)) == 0


def test_fortimanager_in_the_manifest_control_and_journal(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca) as h:
        fmg = h.add("fmg-healthy")
        h.start(manifest=tmp_path / "m.json")
        entry = {d["name"]: d for d in json.loads((tmp_path / "m.json").read_text())["devices"]}["fmg-healthy"]
        assert entry["kind"] == "fortimanager" and entry["token"] in entry["tokens"].values()
        admin, password = "admin", fmg.state.admins["admin"].password  # fmg-healthy's password login
        login = {"id": 1, "method": "exec",
                 "params": [{"url": "/sys/login/user", "data": {"user": admin, "passwd": password}}]}
        answer = requests.post(entry["url"] + "/jsonrpc", json=login, verify=entry["ca_bundle"],
                               timeout=seconds(5)).json()
        session = answer.get("session")
        status = {"id": 2, "method": "get", "params": [{"url": "/sys/status"}], "session": session}
        first = requests.post(entry["url"] + "/jsonrpc", json=status, verify=entry["ca_bundle"],
                              timeout=seconds(5)).json()
        control(h, "POST", "/devices/fmg-healthy/expire-sessions")
        after = requests.post(entry["url"] + "/jsonrpc", json=status, verify=entry["ca_bundle"],
                              timeout=seconds(5)).json()
        journal = control(h, "GET", "/devices/fmg-healthy/journal").json()
    assert session and first["result"][0]["status"]["code"] == 0
    assert after["result"][0]["status"]["code"] == -11  # the control API ended the session
    assert journal[-1]["result"][0] == {"url": "/sys/status", "code": -11}
    assert password not in json.dumps(journal) and session not in json.dumps(journal)
