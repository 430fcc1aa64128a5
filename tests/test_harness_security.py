"""The harness itself must be safe to run: loopback control, no credentials in records, keys 0600,
and nothing written to the system's trust store or anywhere but the certificate and temp folders."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import ssl
import stat
import subprocess
import time
from pathlib import Path

import certifi
import pytest
import requests

import mockfgt
from mockfgt import Harness

from deadlines import seconds
from run_cli import cli_env, mockfgt_command
from stress.wire import one_shot

STATUS = "/api/v2/monitor/system/status"


def _auth(harness) -> dict:
    return {"Authorization": f"Bearer {harness.control_token}"}


# -- the control API -----------------------------------------------------------------------------
def test_the_control_api_listens_on_loopback_by_default(mockfgt_ca):
    with Harness(ca=mockfgt_ca) as harness:
        harness.add("fgt-healthy")
        harness.start()
        assert harness.control_url.startswith("http://127.0.0.1:")
        assert requests.get(harness.control_url + "/devices", headers=_auth(harness), timeout=seconds(5)).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "fmg.example"])
def test_the_control_api_refuses_any_other_address_without_the_flag(mockfgt_ca, host):
    with pytest.raises(ValueError, match="allow-remote-control"):
        Harness(ca=mockfgt_ca, control_host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_spellings_are_accepted(mockfgt_ca, host):
    with Harness(ca=mockfgt_ca, control_host=host) as harness:
        harness.start()
        assert requests.get(harness.control_url + "/devices", headers=_auth(harness), timeout=seconds(5)).json() == []


def test_the_flag_lets_the_control_api_listen_elsewhere(mockfgt_ca):
    with Harness(ca=mockfgt_ca, control_host="0.0.0.0", allow_remote_control=True) as harness:
        harness.start()
        assert harness.control_url.startswith("http://0.0.0.0:")


# -- credentials ---------------------------------------------------------------------------------
@pytest.fixture
def debug_log():
    """Every record of the mockfgt loggers, down to DEBUG, formatted as a handler would write it."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    logger, handler = logging.getLogger("mockfgt"), Keep(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _fortios_credentials(fgt) -> list[str]:
    """Send every kind of FortiOS credential, right and wrong, in every place; return the secrets sent."""
    token, password = fgt.token, fgt.state.sessions.admins["netops"].password
    secrets = [token, password, "WrongToken0123456789abcdefghij", "wrong-password-7"]
    get = lambda path, **kw: requests.get(fgt.url + path, verify=fgt.ca_bundle, timeout=seconds(5), **kw)  # noqa: E731
    post = lambda path, **kw: requests.post(fgt.url + path, verify=fgt.ca_bundle,  # noqa: E731
                                            timeout=seconds(5), **kw)
    # What succeeds first: three failures from one source lock it out (the rest still reaches the journal).
    get(STATUS, headers={"Authorization": f"Bearer {token}"})
    generated = post("/api/v2/monitor/system/api-user/generate-key", json={"api-user": "agent"},
                     headers={"Authorization": f"Bearer {token}"}).json()["results"]["access_token"]
    secrets.append(generated)
    login = post("/api/v2/authentication", json={"username": "netops", "secretkey": password, "request_key": True})
    secrets.append(login.json()["session_key"])
    form = post("/logincheck", data=f"username=netops&secretkey={password}",
                headers={"Content-Type": "text/plain"})  # a form the device reads whatever the type says
    secrets += [c.value for c in form.cookies]
    get(STATUS, headers={"Cookie": "; ".join(f"{c.name}={c.value}" for c in form.cookies),
                         "X-CSRFTOKEN": form.cookies.get("ccsrftoken", "none")})
    get(STATUS, headers={"Authorization": f"Bearer {secrets[2]}"})
    get(STATUS + f"?access_token={generated}")
    get(STATUS, headers={"Authorization": generated})  # no scheme at all
    post("/api/v2/authentication", json={"username": "netops", "secretkey": secrets[3]})
    post("/logincheck", data=b'{"username": "netops", "secretkey": "' + password.encode())  # broken JSON
    one_shot(fgt, f"GET {STATUS}?access_token={generated} x HTTP/1.1\r\n\r\n".encode())  # a refused request line
    return [s for s in secrets if s]


def _fortimanager_credentials(fmg) -> list[str]:
    key, password = fmg.token, fmg.state.admins["admin"].password
    rpc = lambda body, **kw: requests.post(fmg.url + "/jsonrpc", json=body, verify=fmg.ca_bundle,  # noqa: E731
                                           timeout=seconds(5), **kw).json()
    status = {"id": 1, "method": "get", "params": [{"url": "/sys/status"}]}
    rpc(status, headers={"Authorization": f"Bearer {key}"})
    rpc(status, params={"access_token": key})
    session = rpc({"id": 2, "method": "exec",
                   "params": [{"url": "/sys/login/user", "data": {"user": "admin", "passwd": password}}]})["session"]
    rpc({"id": 3, "method": "exec", "params": [{"url": "/sys/login/user",
                                                "data": [{"user": "admin", "passwd": "not-it-9"}]}]})
    rpc({**status, "session": session})
    return [key, password, session, "not-it-9"]


def test_credentials_never_reach_the_journal_the_control_api_or_the_logs(mockfgt_ca, debug_log, tmp_path):
    admin_profile = tmp_path / "fgt-sysgrp-rw.toml"  # the agent may generate keys: a new key crosses the wire
    admin_profile.write_text('extends = "fgt-healthy"\nsummary = "keys"\nexpect = "ok"\n'
                             '[device.accprofiles.agent_rw]\nsysgrp = "read-write"\n')
    with Harness(ca=mockfgt_ca) as harness:
        fgt, fmg = harness.add(admin_profile), harness.add("fmg-healthy")
        harness.start()
        secrets = _fortios_credentials(fgt) + _fortimanager_credentials(fmg)
        records = json.dumps([fgt.journal.events(), fmg.journal.events()])
        over_control = "".join(requests.get(f"{harness.control_url}/devices/{d.name}/journal", headers=_auth(harness),
                                            timeout=seconds(5)).text
                               for d in (fgt, fmg))
    assert len(secrets) >= 10 and fgt.journal.requests() and debug_log
    for secret in secrets:
        assert secret not in records
        assert secret not in over_control
        assert not [line for line in debug_log if secret in line], secret


def test_serve_prints_no_credential_a_client_sends(tmp_path):
    """`mockfgt serve` prints its own token once in the ready block; nothing a client sends is ever printed."""
    manifest = tmp_path / "m.json"
    server = subprocess.Popen([*mockfgt_command(), "serve", "--port", "0", "--manifest", str(manifest),
                               "--certs-dir", str(tmp_path / "certs")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        document = _wait_for(manifest)
        entry = document["devices"][0]
        sent = ["WrongToken0123456789abcdefghij", "hunter2-password"]
        for secret in sent:
            requests.get(entry["url"] + STATUS, headers={"Authorization": f"Bearer {secret}"},
                         verify=entry["ca_bundle"], timeout=seconds(5))
        requests.post(entry["url"] + "/logincheck", data={"username": "netops", "secretkey": sent[1]},
                      verify=entry["ca_bundle"], timeout=seconds(5))
        requests.get(entry["url"] + STATUS + f"?access_token={entry['token']}", verify=entry["ca_bundle"],
                     timeout=seconds(5))
    finally:
        server.terminate()
        out, err = server.communicate(timeout=seconds(10))
    assert server.returncode == 0, err
    for secret in sent:
        assert secret not in out + err
    assert (out + err).count(entry["token"]) == 2  # the ready block: the token line and the curl line
    # The control token once, on the Control API line; the suggested ctl command reads the manifest
    # rather than taking it as an argument, which ps would show to every user.
    assert (out + err).count(document["control_token"]) == 1
    assert "ctl --manifest" in out


def _wait_for(manifest: Path) -> dict:
    deadline = time.monotonic() + seconds(10)
    while time.monotonic() < deadline:
        if manifest.exists():
            return json.loads(manifest.read_text())
        time.sleep(0.05)
    raise AssertionError("the manifest never appeared")


# -- key files -----------------------------------------------------------------------------------
def test_every_private_key_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)  # the most permissive umask a user could have
    try:
        with Harness(certs_dir=tmp_path / "certs", control_port=None) as harness:
            harness.add_catalogue()
            harness.start(manifest=tmp_path / "m.json")
            for device in harness.devices.values():
                device.ca.issue_client_cert(device.material_dir)
    finally:
        os.umask(old)
    keys = [p for p in (tmp_path / "certs").rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert len(keys) >= len(mockfgt.catalogue())
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in keys if stat.S_IMODE(p.stat().st_mode) != 0o600}
    assert not loose


# -- nothing outside the certificate and temp folders -------------------------------------------------
def _trust_store() -> dict[str, str]:
    """A fingerprint of every file the system and the clients trust: bundles and CA folders."""
    paths = ssl.get_default_verify_paths()
    files = [paths.cafile, paths.openssl_cafile, certifi.where()]
    folders = [paths.capath, paths.openssl_capath, "/usr/local/share/ca-certificates", "/usr/share/ca-certificates"]
    found = {}
    for file in files:
        if file and Path(file).is_file():
            found[file] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    for folder in folders:
        if folder and Path(folder).is_dir():
            found[folder] = hashlib.sha256("\n".join(sorted(os.listdir(folder))).encode()).hexdigest()
    return found


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_serving_the_whole_catalogue_writes_only_under_the_certs_and_temp_folders(tmp_path):
    trust_before = _trust_store()
    home, tmp, cwd, certs = (tmp_path / n for n in ("home", "tmp", "cwd", "certs"))
    for folder in (home, tmp, cwd):
        folder.mkdir()
    manifest = tmp / "m.json"
    env = cli_env(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    server = subprocess.Popen([*mockfgt_command(), "serve", "--all", "--manifest", str(manifest),
                               "--certs-dir", str(certs)], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    try:
        doc = _wait_for(manifest)
        by_name = {d["name"]: d for d in doc["devices"]}
        healthy = by_name["fgt-healthy"]
        answer = requests.get(healthy["url"] + STATUS, headers={"Authorization": f"Bearer {healthy['token']}"},
                              verify=healthy["ca_bundle"], timeout=seconds(5))
        assert answer.status_code == 200
        for name in ("private-ca", "self-signed-factory", "expired-cert"):  # remedies that change certificates
            assert requests.post(f"{doc['control_url']}/devices/{name}/remedy", timeout=seconds(30),
                                 headers={"Authorization": f"Bearer {doc['control_token']}"}).status_code == 200
        ca_pem = Path(doc["ca_bundle"]).read_text().strip()
    finally:
        server.terminate()
        out = server.communicate(timeout=seconds(30))[0]
    assert server.returncode == 0, out
    assert _trust_store() == trust_before
    assert ca_pem not in Path(certifi.where()).read_text()
    assert _tree(home) == set() and _tree(cwd) == set()
    assert Path(doc["ca_bundle"]).is_relative_to(certs)
