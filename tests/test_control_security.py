"""The control API trusts nobody by default: not another local user, not a web page, not a name.

Each test is one finding of the review, over real HTTP on loopback: tokens, Host and Origin checks,
content types, names that look like paths, bounded input, escaped device names, and `mockfgt ctl`.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from mockfgt import Harness, scenario

from deadlines import seconds
from run_cli import cli_env, mockfgt_command
from stress import control as hostile

EVIL = "http://evil.example"
ODD_NAMES = ("customer 4711", "kundé", "cust#1")


@pytest.fixture
def harness(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca) as h:
        h.add("fgt-healthy")
        h.add("fmg-healthy")  # a password login: the manifest holds an admin password too
        h.start(manifest=tmp_path / "m.json")
        yield h


def call(h, method, path, *, token=True, **kwargs):
    headers = {"Authorization": f"Bearer {h.control_token}"} if token is True else {}
    headers.update(kwargs.pop("headers", {}))
    return requests.request(method, h.control_url + path, headers=headers, timeout=seconds(10), **kwargs)


def ctl(*args, **env):
    clean = {k: v for k, v in cli_env(**env).items() if not k.startswith("MOCKFGT_") or k in env}
    return subprocess.run([*mockfgt_command(), "ctl", *args], capture_output=True, text=True, env=clean,
                          timeout=seconds(30))


def assert_refused(answer, status: int, h) -> dict:
    """A refusal: the status, a JSON error, no CORS header, and no secret of the run in it."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
    assert "Traceback" not in answer.text
    for secret in hostile.secrets_of(h):
        assert secret not in answer.text
    return answer.json()


# -- the token -------------------------------------------------------------------------------------
def test_the_token_is_random_per_run_and_only_in_the_0600_manifest(harness, mockfgt_ca):
    document = json.loads(harness.manifest_path.read_text())
    assert document["control_token"] == harness.control_token and len(harness.control_token) >= 40
    assert stat.S_IMODE(harness.manifest_path.stat().st_mode) == 0o600
    with Harness(ca=mockfgt_ca) as other:
        assert other.control_token != harness.control_token


def test_no_token_is_401(harness):
    for method, path in (("GET", "/manifest"), ("GET", "/devices"), ("POST", "/devices/fgt-healthy/remedy"),
                         ("GET", "/devices/no-such-device")):  # an unknown device says nothing either
        body = assert_refused(call(harness, method, path, token=False), 401, harness)
        assert "token" in body["error"]


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer ", "bearer", "Basic YWRtaW46cGFzcw==",
                                    "Bearer kund\xe9"])  # a latin-1 byte must not crash compare_digest
def test_a_wrong_token_is_401(harness, header):
    before = harness.device("fgt-healthy").token
    answer = call(harness, "POST", "/devices/fgt-healthy/regenerate-key", token=False, json={},
                  headers={"Authorization": header.encode("latin-1")})
    assert_refused(answer, 401, harness)
    assert harness.device("fgt-healthy").token == before


def test_a_prefix_of_the_token_is_401(harness):
    answer = call(harness, "GET", "/devices", token=False,
                  headers={"Authorization": f"Bearer {harness.control_token[:-1]}"})
    assert_refused(answer, 401, harness)


# -- web pages: cross-origin and DNS rebinding -----------------------------------------------------
def test_a_text_plain_post_from_another_origin_changes_nothing(harness):
    body = '{"scenario": "expired-cert"}'
    for with_token in (False, True):  # refused on its Origin, even for a caller that had the token
        answer = call(harness, "POST", "/devices/fgt-healthy/scenario", token=with_token, data=body,
                      headers={"Origin": EVIL, "Content-Type": "text/plain"})
        assert "cross-origin" in assert_refused(answer, 403, harness)["error"]
    assert harness.device("fgt-healthy").scenario.name == "fgt-healthy"


def test_a_cross_origin_preflight_gets_no_cors_headers(harness):
    answer = call(harness, "OPTIONS", "/devices/fgt-healthy/scenario",
                  headers={"Origin": EVIL, "Access-Control-Request-Method": "POST",
                           "Access-Control-Request-Headers": "authorization, content-type"})
    assert_refused(answer, 403, harness)


def test_text_plain_and_forms_are_415_even_with_the_token(harness):
    for content_type, data in (("text/plain", '{"scenario": "expired-cert"}'),
                               ("application/x-www-form-urlencoded", "scenario=expired-cert"),
                               ("multipart/form-data; boundary=x", "--x\r\n\r\nexpired-cert\r\n--x--\r\n")):
        answer = call(harness, "POST", "/devices/fgt-healthy/scenario", data=data,
                      headers={"Content-Type": content_type})
        assert "application/json" in assert_refused(answer, 415, harness)["error"]
    assert harness.device("fgt-healthy").scenario.name == "fgt-healthy"


def test_the_apis_own_origin_is_served(harness):
    answer = call(harness, "POST", "/devices/fgt-healthy/reset", headers={"Origin": harness.control_url})
    assert answer.status_code == 200 and answer.json()["name"] == "fgt-healthy"
    assert not [n for n in answer.headers if n.lower().startswith("access-control-")]


def test_a_rebound_host_gets_403_and_no_tokens(harness):
    port = harness.control_address[1]
    for with_token in (False, True):
        answer = call(harness, "GET", "/manifest", token=with_token, headers={"Host": f"rebind.evil.example:{port}"})
        assert "not this control API" in assert_refused(answer, 403, harness)["error"]
    same_origin_to_the_page = call(harness, "POST", "/devices/fgt-healthy/scenario", token=False,
                                   data='{"scenario": "expired-cert"}',
                                   headers={"Host": f"rebind.evil.example:{port}", "Content-Type": "text/plain",
                                            "Origin": f"http://rebind.evil.example:{port}"})
    assert_refused(same_origin_to_the_page, 403, harness)
    assert harness.device("fgt-healthy").scenario.name == "fgt-healthy"


def test_loopback_host_spellings_pass_and_others_do_not(harness):
    port = harness.control_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert call(harness, "GET", "/devices", headers={"Host": host}).status_code == 200, host
    for host in (f"127.0.0.1:{port + 1}", "127.0.0.1", f"127.0.0.1.nip.io:{port}", f"0.0.0.0:{port}"):
        assert_refused(call(harness, "GET", "/devices", headers={"Host": host}), 403, harness)


def test_a_request_without_host_is_refused(harness):
    connection = http.client.HTTPConnection(*harness.control_address, timeout=seconds(10))
    try:
        connection.putrequest("GET", "/manifest", skip_host=True)
        connection.putheader("Authorization", f"Bearer {harness.control_token}")
        connection.endheaders()
        answer = connection.getresponse()
        text = answer.read().decode()
    finally:
        connection.close()
    assert answer.status == 403 and harness.control_token not in text


def test_hostile_requests_in_bulk_are_all_refused(harness):
    figures = hostile.attack(harness, rounds=2)
    assert figures.requests == 2 * len(figures.by_kind) >= 20
    assert len(hostile.secrets_of(harness)) >= 3  # the leak check has something to find
    assert figures.ok, figures.lines()


# -- another local user ----------------------------------------------------------------------------
def _as_nobody() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as user nobody")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    group = next((g for g in ("nogroup", "nobody") if _group_exists(g)), None)
    if shutil.which("setpriv") and group:
        return ["setpriv", "--reuid=nobody", f"--regid={group}", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    pytest.skip("neither setpriv nor runuser is available")


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_another_local_user_cannot_read_the_manifest_so_gets_401(mockfgt_ca):
    as_nobody = _as_nobody()
    env = {k: v for k, v in cli_env().items() if not k.startswith("MOCKFGT_")}
    probe = subprocess.run([*as_nobody, *mockfgt_command(), "ctl", "--help"], capture_output=True, env=env,
                           timeout=seconds(30))
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot run {mockfgt_command()[0]}: {probe.stderr[-200:]!r}")
    # A folder every user can enter and list, as /tmp or a shared CI workspace: only the file's own
    # mode (0600) keeps nobody out, which is what this test is about.
    folder = Path(tempfile.mkdtemp(prefix="mockfgt-shared-"))
    folder.chmod(0o755)
    try:
        with Harness(ca=mockfgt_ca) as h:
            h.add("fgt-healthy")
            h.start(manifest=folder / "m.json")
            key = h.device("fgt-healthy").token

            def nobody(*args):
                return subprocess.run([*as_nobody, *args], capture_output=True, text=True, env=env,
                                      timeout=seconds(30))

            via_manifest = nobody(*mockfgt_command(), "ctl", "--manifest", str(h.manifest_path), "devices")
            assert via_manifest.returncode == 2 and "Permission denied" in via_manifest.stderr
            direct = nobody(*mockfgt_command(), "ctl", "--control", h.control_url, "regenerate-key", "fgt-healthy")
            assert direct.returncode == 1 and "needs its token" in direct.stderr, direct.stderr
            listed = nobody(*mockfgt_command(), "ctl", "--control", h.control_url, "devices")
            assert listed.returncode == 1 and key not in listed.stdout + listed.stderr
            if shutil.which("curl"):  # a raw request, not our client: the same 401
                raw = nobody("curl", "-sS", "-w", "\n%{http_code}", "--max-time", str(seconds(10)),
                             f"{h.control_url}/manifest")
                assert raw.stdout.endswith("\n401") and key not in raw.stdout and h.control_token not in raw.stdout
            assert h.device("fgt-healthy").token == key  # nothing was regenerated
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- names are names -------------------------------------------------------------------------------
def test_path_like_scenario_names_are_refused_without_the_files_contents(harness, tmp_path, monkeypatch):
    secret = "s3cret-from-a-root-only-file"
    private = tmp_path / "private.toml"
    private.write_text(f'summary = "x"\nexpect = "{secret}"\n')
    private.chmod(0o600)
    with pytest.raises(scenario.ScenarioError, match=secret):  # opened as a file, it would be repeated
        scenario.load(private)
    monkeypatch.chdir(tmp_path)  # the server's working folder: 'private.toml' and 'private' resolve here
    for name in (str(private), "private.toml", "./private", "../" + tmp_path.name + "/private.toml",
                 "/etc/shadow", "/etc/passwd", "/dev/zero", ".hidden", "a\\b", "fgt-healthy\n"):
        answer = call(harness, "POST", "/devices/fgt-healthy/scenario", json={"scenario": name})
        error = assert_refused(answer, 400, harness)["error"]
        assert secret not in error and "root:" not in error and "not a scenario name" in error, (name, error)
    assert harness.device("fgt-healthy").scenario.name == "fgt-healthy"


def test_a_scenario_name_still_switches(harness):
    answer = call(harness, "POST", "/devices/fgt-healthy/scenario", json={"scenario": "expired-cert"})
    assert answer.status_code == 200 and answer.json()["scenario"] == "expired-cert"


# -- bounded input ---------------------------------------------------------------------------------
def test_a_50_mib_body_is_413(harness):
    body = b'{"scenario": "' + b"x" * (50 << 20) + b'"}'
    answer = call(harness, "POST", "/devices/fgt-healthy/scenario", data=body,
                  headers={"Content-Type": "application/json"})
    assert "at most" in assert_refused(answer, 413, harness)["error"]


def test_a_body_over_one_mib_is_413_declared_or_chunked(harness):
    body = b'{"op": "' + b"x" * (2 << 20) + b'"}'
    declared = call(harness, "POST", "/devices/fgt-healthy/op", data=body, headers={"Content-Type": "application/json"})
    assert_refused(declared, 413, harness)
    chunked = call(harness, "POST", "/devices/fgt-healthy/op", data=iter([body[:1000], body[1000:]]),
                   headers={"Content-Type": "application/json"})
    assert_refused(chunked, 413, harness)


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_json_is_400_with_a_reason(harness, depth):
    answer = call(harness, "POST", "/devices/fgt-healthy/op", data="[" * depth + "]" * depth,
                  headers={"Content-Type": "application/json"})
    assert "nested too deeply" in assert_refused(answer, 400, harness)["error"]


def test_long_names_are_refused_cleanly_and_echoed_short(harness):
    device = assert_refused(call(harness, "GET", "/devices/" + "d" * 300), 404, harness)["error"]
    assert "d" * 101 not in device and "300 characters" in device
    path = assert_refused(call(harness, "GET", "/nowhere/" + "p" * 5000), 404, harness)["error"]
    assert len(path) < 300
    long_scenario = call(harness, "POST", "/devices/fgt-healthy/scenario", json={"scenario": "s" * 300})
    assert "s" * 101 not in assert_refused(long_scenario, 400, harness)["error"]
    op = call(harness, "POST", "/devices/fgt-healthy/op", json={"op": "o" * 200})
    op_error = assert_refused(op, 400, harness)["error"]
    assert "o" * 101 not in op_error and "200 characters" in op_error
    huge_op = call(harness, "POST", "/devices/fgt-healthy/op", json={"op": "o" * (900 << 10)})
    assert len(assert_refused(huge_op, 400, harness)["error"]) < 300


# -- names with spaces, accents and # through ctl -------------------------------------------------
def test_ctl_addresses_devices_by_any_name(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca) as h:
        for name in ODD_NAMES:
            h.add("fgt-healthy", name=name)
        h.start(manifest=tmp_path / "m.json")
        document = json.loads(h.manifest_path.read_text())
        for entry in document["devices"]:  # the manifest's own URL for the device works as given
            assert " " not in entry["control_url"] and "#" not in entry["control_url"]
            shown = requests.get(entry["control_url"], timeout=seconds(10),
                                 headers={"Authorization": f"Bearer {document['control_token']}"})
            assert shown.status_code == 200 and shown.json()["name"] == entry["name"]
        for name in ODD_NAMES:
            shown = ctl("--manifest", str(h.manifest_path), "show", name, "name")
            assert shown.returncode == 0 and shown.stdout.strip() == name, shown.stderr
            used = ctl("use", name, "expired-cert", MOCKFGT_MANIFEST=str(h.manifest_path))
            assert used.returncode == 0 and json.loads(used.stdout)["name"] == name, used.stderr
            assert h.device(name).scenario.name == "expired-cert"


# -- ctl -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["notaurl", "ftp://127.0.0.1:1", "http://", "http://[::1", "http://127.0.0.1:port"])
def test_ctl_with_a_control_that_is_not_a_url_is_a_usage_error(url):
    done = ctl("--control", url, "devices")
    assert done.returncode == 2 and "not a control API URL" in done.stderr and "Traceback" not in done.stderr


def test_ctl_takes_the_token_from_the_environment_or_the_flag(harness):
    url = harness.control_url
    by_variable = ctl("--control", url, "devices", MOCKFGT_CONTROL_TOKEN=harness.control_token)
    assert by_variable.returncode == 0 and len(json.loads(by_variable.stdout)) == 2
    by_flag = ctl("--control", url, "--token", harness.control_token, "show", "fgt-healthy", "name")
    assert by_flag.returncode == 0 and by_flag.stdout.strip() == "fgt-healthy"
    without = ctl("--control", url, "devices")
    assert without.returncode == 1 and "needs its token" in without.stderr


def test_a_switch_whose_port_cannot_listen_again_is_409_not_500(tmp_path):
    """The listener raises when a refusing device cannot listen again; the control API says so."""
    with Harness(certs_dir=tmp_path / "certs") as harness:
        device = harness.add("port-closed")
        harness.start()
        device._listener._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as before the fix
        with socket.socket() as intruder:
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            intruder.bind(("127.0.0.1", device.port))
            intruder.listen(1)
            answer = requests.post(f"{harness.control_url}/devices/port-closed/scenario", json={"scenario": "fgt-healthy"},
                                   headers={"Authorization": f"Bearer {harness.control_token}"}, timeout=seconds(10))
    assert answer.status_code == 409
    assert "cannot listen on port" in answer.json()["error"]
