"""No credential a client sends is ever stored in a device's journal, however it is spelled (issue 13).

The device decodes what it reads: a form key %-encoded (``secret%6Bey``), a JSON key written with
unicode escapes (``"pass\\u0077d"``), a body of any size or a broken one. The journal must see the
same key, so each request here goes over HTTPS to a device, and each secret is then looked for in the
journal as a test reads it, as the control API serves it and as ``mockfgt ctl journal`` prints it.
"""

from __future__ import annotations

import json

import pytest
import requests

from mockfgt import Harness

from deadlines import seconds
from run_cli import control_auth, run_mockfgt

LOGINCHECK = "/logincheck"
AUTHENTICATION = "/api/v2/authentication"
PAD = "x" * (70 * 1024)  # past the 64 KiB the journal parses as JSON


@pytest.fixture(scope="module")
def harness(mockfgt_ca):
    with Harness(ca=mockfgt_ca) as h:
        h.add("fgt-healthy")
        h.add("fmg-healthy")
        h.start()
        yield h


def _fresh(harness, name: str):
    device = harness.device(name)
    device.reset()
    device.journal.clear()
    return device


@pytest.fixture
def fgt(harness):
    return _fresh(harness, "fgt-healthy")


@pytest.fixture
def fmg(harness):
    return _fresh(harness, "fmg-healthy")


def _post(device, path: str, body: bytes, content_type: str | None) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    # requests adds no Content-Type of its own for a bytes body
    return requests.post(device.url + path, data=body, headers=headers, verify=device.ca_bundle,
                         timeout=seconds(10))


def _leaks(harness, device, secret: str) -> list[str]:
    """Where ``secret`` is stored: the in-process journal, the control API."""
    where = []
    if secret in json.dumps(device.journal.events()):
        where.append("journal")
    answer = requests.get(f"{harness.control_url}/devices/{device.name}/journal", timeout=seconds(10),
                          headers=control_auth(harness))
    assert answer.status_code == 200
    if secret in answer.text:
        where.append("control API")
    return where


def _password(fgt) -> str:
    return fgt.state.sessions.admins["netops"].password


# -- a form whose key is %-encoded, whatever Content-Type it claims -----------------------------------
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("key", ["secret%6Bey", "secret%6bey", "%73%65cretkey", "secretkey"])
def test_a_logincheck_form_with_an_encoded_key_is_redacted(harness, fgt, key, content_type):
    password = _password(fgt)
    answer = _post(fgt, LOGINCHECK, f"username=netops&{key}={password}&ajax=1".encode(), content_type)
    assert answer.text.startswith("1")  # the device decoded the key and logged in: it was a credential
    assert _leaks(harness, fgt, password) == []
    entry = fgt.assert_request_made("POST", LOGINCHECK, status=200, count=1)[0]
    assert "username=netops" in entry["body"]  # the rest of the body is still shown


def test_a_form_password_with_punctuation_is_redacted_whole(harness, fgt):
    """The device reads a form value up to the next '&': commas, semicolons and brackets are in it."""
    _post(fgt, LOGINCHECK, b"username=netops&secret%6Bey=Pw,Comma;Semi]Bracket}Brace&ajax=1", "text/plain")
    for fragment in ("Comma", "Semi", "Bracket", "Brace"):
        assert _leaks(harness, fgt, fragment) == [], fragment


def test_a_logincheck_password_in_the_query_with_an_encoded_key_is_redacted(harness, fgt):
    password = _password(fgt)
    answer = requests.post(fgt.url + f"{LOGINCHECK}?username=netops&secret%6Bey={password}",
                           verify=fgt.ca_bundle, timeout=seconds(10))
    assert answer.text.startswith("1")
    assert _leaks(harness, fgt, password) == []


# -- JSON keys written with unicode escapes, at any size ----------------------------------------------
@pytest.mark.parametrize("pad_first", [False, True], ids=["key-first", "pad-first"])
def test_a_json_login_over_64_kib_with_an_escaped_key_is_redacted(harness, fgt, pad_first):
    password = _password(fgt)
    fields = [r'"username": "netops"', rf'"secret\u006bey": "{password}"']
    if pad_first:
        fields.insert(0, f'"comment": "{PAD[:8 * 1024]}"')  # the key still inside what is stored
    fields.append(f'"pad": "{PAD}"')
    body = ("{" + ", ".join(fields) + "}").encode()
    assert len(body) > 64 * 1024
    answer = _post(fgt, AUTHENTICATION, body, "application/json")
    assert answer.status_code == 200 and answer.json()["status_message"] == "LOGIN_SUCCESS"
    assert _leaks(harness, fgt, password) == []


def test_a_fortimanager_login_over_64_kib_with_an_escaped_passwd_is_redacted(harness, fmg):
    password = fmg.state.admins["admin"].password
    body = ('{"id": 1, "method": "exec", "params": [{"url": "/sys/login/user", "data": '
            rf'{{"user": "admin", "pass\u0077d": "{password}"}}}}], "pad": "{PAD}"}}').encode()
    answer = _post(fmg, "/jsonrpc", body, "application/json")
    assert answer.json()["result"][0]["status"]["code"] == 0  # logged in: the escaped key was read
    session = answer.json()["session"]
    assert _leaks(harness, fmg, password) == []
    assert _leaks(harness, fmg, session) == []


@pytest.mark.parametrize("escaped", [r"secret\u006bey", r"pass\u0077ord", r"\u0073ecretkey"])
def test_a_small_json_body_with_an_escaped_key_is_redacted(harness, fgt, escaped):
    body = ('{"username": "netops", "' + escaped + '": "Escaped-Key-Secret-1"}').encode()
    _post(fgt, AUTHENTICATION, body, "application/json")
    assert _leaks(harness, fgt, "Escaped-Key-Secret-1") == []


# -- broken JSON ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    r'{"username": "netops", "secret\u006bey": "Broken-Json-Secret-2"',  # unterminated object
    r'{"username": "netops", "secret\u006bey": "Broken-Json-Secret-2", }',  # trailing comma
    r'{"username": "netops", "pass\u0077d": ["Broken-Json-Secret-2"',  # a list value, unterminated
    r'{"secret\u006bey": "Broken-Json-Secret-2',  # unterminated string
    r"{'secretkey': 'Broken-Json-Secret-2'",  # Python-style quotes
    '{"data": {"passwd"  :\n"Broken-Json-Secret-2"} oops',
], ids=["unterminated", "trailing-comma", "list-value", "open-string", "single-quotes", "newline"])
def test_broken_json_with_an_escaped_key_is_redacted(harness, fgt, body):
    _post(fgt, AUTHENTICATION, body.encode(), "application/json")
    assert fgt.journal.requests(path=AUTHENTICATION)
    assert _leaks(harness, fgt, "Broken-Json-Secret-2") == []


# -- headers and the query ------------------------------------------------------------------------------
def test_credential_headers_of_any_spelling_are_redacted(harness, fgt):
    secret = "Header-Secret-3-abcdef"
    requests.get(fgt.url + "/api/v2/monitor/system/status", verify=fgt.ca_bundle, timeout=seconds(10),
                 headers={"X-Auth-Token": secret, "Access-Token": secret, "X-Api-Key": secret,
                          "Referer": f"https://agent.example/?access_token={secret}"})
    assert _leaks(harness, fgt, secret) == []


# -- every gap at once, as `mockfgt ctl journal` prints it ------------------------------------------
def test_ctl_journal_prints_no_credential_of_any_spelling(harness, fgt, fmg):
    password, fmg_password = _password(fgt), fmg.state.admins["admin"].password
    _post(fgt, LOGINCHECK, f"username=netops&secret%6Bey={password}".encode(), None)
    _post(fgt, AUTHENTICATION, ('{"username": "netops", "secret\\u006bey": "' + password + '", "pad": "'
                                + PAD + '"}').encode(), "application/json")
    _post(fgt, AUTHENTICATION, ('{"username": "netops", "secret\\u006bey": "' + password).encode(), None)
    _post(fmg, "/jsonrpc", ('{"id": 1, "method": "exec", "params": [{"url": "/sys/login/user", "data": '
                            '{"user": "admin", "pass\\u0077d": "' + fmg_password + '"}}], "pad": "'
                            + PAD + '"}').encode(), "application/json")
    printed = ""
    for device in (fgt, fmg):
        result = run_mockfgt("ctl", "--control", harness.control_url, "journal", device.name,
                             MOCKFGT_CONTROL_TOKEN=harness.control_token)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)  # the journal was printed, not an error
        printed += result.stdout + result.stderr
    assert len(fgt.journal.requests()) == 3
    assert password not in printed and fmg_password not in printed
