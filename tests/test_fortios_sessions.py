"""Password sessions on the mock FortiGate, driven over real HTTPS with requests and httpx.

Covers ``/logincheck`` (cookies, the quoted CSRF token, what 7.6.3 changed), ``/api/v2/authentication``
(session keys, cookie mode, renew, logout, versions without it), CSRF on writes, logout, idle
expiry, the post-login banner, the lockout shared by password and token failures, and the scenario
keys that configure admins and password agents.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
import time
from pathlib import Path

import httpx
import pytest
import requests

import mockfgt
from mockfgt.fortios.client import csrf_token_from
from mockfgt.probe import probe
from mockfgt.scenario import ScenarioError, load

from deadlines import seconds

ADMIN, PASSWORD = "netops", "Fortinet-Lab-2024!"  # the admin of scenarios/fgt-healthy.toml
STATUS = "/api/v2/monitor/system/status"
ADDRESSES = "/api/v2/cmdb/firewall/address"
LEGACY_VERSIONS = ["6.2.4", "7.4.5", "7.6.2"]  # /logincheck still issues a session
NEW_VERSIONS = ["7.6.3", "7.6.4"]  # /logincheck issues nothing; cookies renamed


# -- clients ----------------------------------------------------------------------------------
class Agent:
    """One HTTP client (requests or httpx) with its own cookie jar, talking to one device."""

    def __init__(self, library: str, device: mockfgt.FortiGate):
        self.library, self.url, self.device = library, device.url, device
        if library == "requests":
            self.http = requests.Session()
            self.http.trust_env = False  # no proxies or CA bundles from the environment
            self.options = {"verify": device.ca_bundle, "timeout": seconds(10)}
        else:
            context = ssl.create_default_context(cafile=device.ca_bundle)
            self.http = httpx.Client(verify=context, timeout=seconds(10), trust_env=False)
            self.options = {}

    def request(self, method: str, path: str, **kwargs):
        return self.http.request(method, self.url + path, **kwargs, **self.options)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def send_raw(self, method: str, path: str, body: bytes, content_type: str = "application/json"):
        """A body sent as given, under whatever Content-Type (some clients mislabel forms as JSON)."""
        argument = "data" if self.library == "requests" else "content"
        return self.request(method, path, headers={"Content-Type": content_type}, **{argument: body})

    def cookies(self) -> dict[str, str]:
        jar = self.http.cookies if self.library == "requests" else self.http.cookies.jar
        return {cookie.name: cookie.value for cookie in jar}

    def csrf(self) -> str | None:
        return csrf_token_from(self.cookies().items())

    def logincheck(self, password: str = PASSWORD, username: str = ADMIN):
        return self.post("/logincheck", data={"username": username, "secretkey": password, "ajax": "1"})

    def api_login(self, password: str = PASSWORD, **fields):
        return self.post("/api/v2/authentication", json={"username": ADMIN, "secretkey": password, **fields})

    def key_login(self, password: str = PASSWORD, **fields) -> str:
        answer = self.api_login(password, request_key=True, **fields).json()
        assert answer["status_message"] == "LOGIN_SUCCESS", answer
        return answer["session_key"]

    def create_address(self, name: str, headers: dict | None = None):
        return self.post(ADDRESSES, json={"name": name, "subnet": "192.0.2.10/32"}, headers=headers or {})

    def close(self):
        self.http.close()


def set_cookies(response) -> list[str]:
    """Every Set-Cookie header of a requests or httpx response, as sent."""
    if isinstance(response, requests.Response):
        return response.raw.headers.getlist("Set-Cookie")
    return response.headers.get_list("set-cookie")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(params=["requests", "httpx"])
def library(request) -> str:
    return request.param


@pytest.fixture
def agent(library):
    """``agent(device)``: a fresh client of this test's library for that device."""
    made = []

    def make(device) -> Agent:
        made.append(Agent(library, device))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def fortigate_at(mockfgt_ca, tmp_path_factory):
    """``fortigate_at("7.6.3", admin_timeout=1)``: a FortiGate of that version and settings, reset.

    Devices are shared across the module by (version, settings) and reset for each use.
    """
    folder = tmp_path_factory.mktemp("session-variants")
    devices: dict[tuple, mockfgt.FortiGate] = {}

    def get(version: str = "7.4.5", **settings) -> mockfgt.FortiGate:
        key = (version, tuple(sorted(settings.items())))
        if key not in devices:
            path = folder / f"variant-{len(devices)}.toml"
            path.write_text(variant(version, settings))
            devices[key] = mockfgt.FortiGate(path, ca=mockfgt_ca).start()
        return devices[key].reset()

    yield get
    for device in devices.values():
        device.stop()


def variant(version: str, settings: dict, extra: str = "") -> str:
    lines = ['summary = "fgt-healthy at another version"', 'extends = "fgt-healthy"', 'expect = "ok"',
             "[device]", f'version = "{version}"', "[device.settings]"]
    lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n" + extra


# -- /logincheck --------------------------------------------------------------------------------
def cookie_names_of(version: str, port: int) -> tuple[str, str]:
    """Regular expressions for the session and CSRF cookie names a version sets (fortinet-api.md H.1)."""
    if version < "7.0":  # "ccsrftoken" # < v7
        return r"APSCOOKIE_\d+", "ccsrftoken"
    if version < "7.2.4":  # "ccsrftoken_443" # >= v7
        return rf"APSCOOKIE_{port}", rf"ccsrftoken_{port}"
    return rf"APSCOOKIE_{port}_[0-9a-f]{{7}}", rf"ccsrftoken_{port}_[0-9a-f]{{7}}"  # ccsrftoken_443_3334d10


@pytest.mark.parametrize("version", [*LEGACY_VERSIONS, "7.0.12", "7.2.3"])
def test_logincheck_cookie_names_follow_the_version(fortigate_at, agent, version):
    """fortinet-api.md H.1: a widely used client's test table (ccsrftoken below 7.0, ccsrftoken_443 from
    7.0, ccsrftoken_443_3334d10 from 7.2.4) and scripts reading APSCOOKIE_443 / ccsrftoken_443."""
    device = fortigate_at(version)
    client = agent(device)
    response = client.logincheck()
    assert response.status_code == 200 and response.text == '1document.location="/ng/";\n'  # H.12: a newline
    session_name, csrf_name = cookie_names_of(version, device.port)
    headers = set_cookies(response)
    session = [h for h in headers if re.match(rf'{session_name}="[^"]+"', h)]
    csrf = [h for h in headers if re.match(rf'{csrf_name}="', h)]
    assert len(headers) == 2 and len(session) == len(csrf) == 1, headers
    token = csrf[0].split('"')[1]
    assert re.fullmatch(r"[0-9A-F]{32}", token)
    if version >= "7.2.4":  # the same suffix on both names
        assert session[0].split("=")[0].split("_", 1)[1] == csrf[0].split("=")[0].split("_", 1)[1]
    if version >= "7.0":
        assert "ccsrftoken" not in client.cookies()  # a client that looks only for it fails, as on the device
    assert client.cookies()[csrf[0].split("=")[0]] == f'"{token}"'  # the jar keeps the quotes clients strip
    assert csrf_token_from(client.cookies().items()) == token


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_logincheck_session_reads_and_writes_with_the_csrf_token(fortigate_at, agent, version):
    client = agent(fortigate_at(version))
    client.logincheck()
    assert client.get(STATUS).status_code == 200  # reads need no CSRF token
    token = client.csrf()
    assert client.create_address("bare", {"X-CSRFTOKEN": token}).status_code == 200
    assert client.create_address("quoted", {"X-CSRFTOKEN": f'"{token}"'}).status_code == 200
    assert client.create_address("lower", {"x-csrftoken": token}).status_code == 200
    deleted = client.request("DELETE", f"{ADDRESSES}/bare", headers={"X-CSRFTOKEN": token})
    assert deleted.status_code == 200


def test_writes_without_the_csrf_token_get_the_403_envelope(fortigate, agent):
    client = agent(fortigate)
    client.logincheck()
    for headers in ({}, {"X-CSRFTOKEN": "0123456789ABCDEF0123456789ABCDEF"}):
        response = client.create_address("nope", headers)
        assert response.status_code == 403
        body = response.json()
        assert (body["status"], body["http_status"], body["http_method"]) == ("error", 403, "POST")
        assert body["revision_changed"] is False and body["version"] == "v7.4.5"
        assert (body["path"], body["name"], body["vdom"]) == ("firewall", "address", "root")
    assert client.request("DELETE", f"{ADDRESSES}/x").status_code == 403
    assert client.request("PUT", f"{ADDRESSES}/x", json={"comment": "c"}).status_code == 403
    assert "nope" not in client.get(ADDRESSES).text


@pytest.mark.parametrize("version", [*LEGACY_VERSIONS, *NEW_VERSIONS])
def test_logincheck_refuses_a_wrong_password(fortigate_at, agent, version):
    client = agent(fortigate_at(version))
    response = client.logincheck("not-the-password")
    assert response.status_code == 200 and response.text.startswith("0")
    if version in LEGACY_VERSIONS:  # what Terraform and scripts recognise as a failed login
        session_name, csrf_name = cookie_names_of(version, client.device.port)
        assert any(re.match(f'{csrf_name}="0%260"', h) for h in set_cookies(response))
        assert any(re.match(f'{session_name}="0%260"', h) for h in set_cookies(response))
    assert client.get(STATUS).status_code == 401


@pytest.mark.parametrize("version", NEW_VERSIONS)
def test_logincheck_from_7_6_3_answers_success_but_sets_no_cookie(fortigate_at, agent, version):
    client = agent(fortigate_at(version))
    response = client.logincheck()
    assert response.status_code == 200 and response.text.startswith("1")
    assert set_cookies(response) == [] and client.cookies() == {}
    assert client.get(STATUS).status_code == 401


def test_get_logincheck_answers_and_takes_query_credentials(fortigate_at, agent):
    """fortinet-api.md H.12: a bare GET /logincheck answers "0" before 7.2.4; on 7.2.4+ (httpsd log in
    an automation issue) 302 Found to /error/403/, also while the source is locked out."""
    older = agent(fortigate_at("7.2.3"))
    bare = older.get("/logincheck")
    assert bare.status_code == 200 and bare.text == "0"
    fortigate = fortigate_at("7.4.5")
    client = agent(fortigate)
    stay, follow = ({"allow_redirects": False}, {}) if client.library == "requests" else ({}, {"follow_redirects": True})
    bare = client.request("GET", "/logincheck", **stay)
    assert bare.status_code == 302 and bare.headers["Location"] == "/error/403/"
    followed = client.get("/logincheck", **follow)
    assert followed.status_code == 403 and "<title>403 Forbidden</title>" in followed.text
    fortigate.apply({"op": "lock-out", "address": "127.0.0.1"})
    fortigate.apply({"op": "lock-out", "address": "::1"})
    assert client.request("GET", "/logincheck", **stay).status_code == 302
    fortigate.apply({"op": "clear-lockouts"})
    login = client.get("/logincheck", params={"username": ADMIN, "secretkey": PASSWORD})
    assert login.text.startswith("1") and client.get(STATUS).status_code == 200


def test_logincheck_reads_the_form_whatever_the_content_type(fortigate, agent):
    client = agent(fortigate)  # Terraform sends the form with Content-Type: application/json
    response = client.send_raw("POST", "/logincheck", f"username={ADMIN}&secretkey={PASSWORD}&ajax=1".encode())
    assert response.text.startswith("1") and client.get(STATUS).status_code == 200


# -- /api/v2/authentication -----------------------------------------------------------------------
@pytest.mark.parametrize(("version", "status"), [("6.4.2", 5), ("7.4.5", 5), ("7.6.3", 6)])
def test_session_key_login_answers_the_versions_status(fortigate_at, agent, version, status):
    client = agent(fortigate_at(version))
    answer = client.api_login(request_key=True, ack_pre_disclaimer=True, ack_post_disclaimer=True).json()
    assert answer["status"] == status and answer["status_message"] == "LOGIN_SUCCESS"
    assert re.fullmatch(r"[A-Za-z0-9]{30}", answer["session_key"])


def test_session_key_works_as_bearer_and_needs_no_csrf(fortigate, agent):
    client = agent(fortigate)
    key = client.key_login()
    assert client.cookies() == {}
    assert client.get(STATUS, headers=bearer(key)).status_code == 200
    assert client.create_address("by-key", bearer(key)).status_code == 200


def test_password_field_is_accepted_instead_of_secretkey(fortigate, agent):
    client = agent(fortigate)
    answer = client.post("/api/v2/authentication",
                         json={"username": ADMIN, "password": PASSWORD, "request_key": True}).json()
    assert answer["status_message"] == "LOGIN_SUCCESS"


def test_wrong_password_answers_login_failed_in_the_body(fortigate, agent):
    client = agent(fortigate)
    response = client.api_login("wrong", request_key=True)
    assert response.status_code == 200
    assert response.json() == {"status": -1, "status_message": "LOGIN_FAILED"}


def test_renew_and_logout_of_a_session_key(fortigate, agent):
    client = agent(fortigate)
    key = client.key_login()
    renewed = client.request("PUT", "/api/v2/authentication", headers=bearer(key))
    assert renewed.status_code == 200 and renewed.json()["status_message"] == "LOGIN_SUCCESS"
    logout = client.request("DELETE", "/api/v2/authentication", headers=bearer(key))
    assert logout.status_code == 200 and logout.json()["status_message"] == "HTTP_AUTHD_LOGOUT_SUCCESS"
    assert client.get(STATUS, headers=bearer(key)).status_code == 401
    assert client.request("PUT", "/api/v2/authentication", headers=bearer(key)).status_code == 401


def test_logout_by_session_key_in_a_form_body(fortigate, agent):
    client = agent(fortigate)  # Terraform's logout: DELETE with "session_key=<key>" labelled as JSON
    key = client.key_login()
    response = client.send_raw("DELETE", "/api/v2/authentication", f"session_key={key}".encode())
    assert response.status_code == 200
    assert client.get(STATUS, headers=bearer(key)).status_code == 401


@pytest.mark.parametrize("version", ["7.4.5", "7.6.3"])
def test_cookie_mode_uses_the_versions_cookie_names(fortigate_at, agent, version):
    device = fortigate_at(version)
    client = agent(device)
    answer = client.api_login().json()
    assert answer["status_message"] == "LOGIN_SUCCESS" and "session_key" not in answer
    names = set(client.cookies())
    if version == "7.6.3":
        assert {n.split("_")[0] for n in names} == {"session", "ccsrf"}
        assert all(re.fullmatch(rf"(session_key|ccsrf_token)_{device.port}_\d+", n) for n in names)
    else:  # fortinet-api.md H.1: 7.2.4+ names carry the port and a hash
        assert all(re.fullmatch(rf"(APSCOOKIE|ccsrftoken)_{device.port}_[0-9a-f]{{7}}", n) for n in names), names
    assert client.get(STATUS).status_code == 200
    assert client.create_address("no-csrf").status_code == 403
    assert client.create_address("with-csrf", {"X-CSRFTOKEN": client.csrf()}).status_code == 200


def test_malformed_authentication_requests_get_device_answers(fortigate, agent):
    client = agent(fortigate)
    bad = client.send_raw("POST", "/api/v2/authentication", b"{not json")
    assert bad.status_code == 400 and bad.json()["http_status"] == 400
    assert client.get("/api/v2/authentication").status_code == 405
    assert client.request("PUT", "/api/v2/authentication").status_code == 401
    odd = client.post("/api/v2/authentication", json={"username": ["x"], "secretkey": 5})
    assert odd.json()["status_message"] == "LOGIN_FAILED"


def test_malformed_login_forms_get_device_answers(fortigate, agent):
    client = agent(fortigate)
    for body in (b"\xff\xfe\x00garbage", b"username=&secretkey=", b"username=netops&username=x&secretkey"):
        response = client.send_raw("POST", "/logincheck", body, "application/x-www-form-urlencoded")
        assert response.status_code == 200 and response.text.startswith("0")
    lone_surrogate = b'{"username": "netops", "secretkey": "\\ud800", "request_key": true}'
    answer = client.send_raw("POST", "/api/v2/authentication", lone_surrogate).json()
    assert answer["status_message"] == "LOGIN_FAILED"
    fortigate.apply({"op": "clear-lockouts"})  # three of those were refused logins
    assert client.post("/logindisclaimer", data={"confirm": "1"}).status_code == 401
    assert client.get("/logout", headers={"Cookie": 'APSCOOKIE_1="\\x"; junk'}).status_code == 200


def test_cookie_sessions_work_over_ipv6(make_fortigate, agent):
    client = agent(make_fortigate(host="::1"))
    assert client.logincheck().text.startswith("1")
    assert client.get(STATUS).status_code == 200
    assert client.create_address("v6", {"X-CSRFTOKEN": client.csrf()}).status_code == 200


@pytest.mark.parametrize("version", ["6.0.4", "6.2.4", "6.4.0"])
def test_versions_without_authentication_make_clients_fall_back(fortigate_at, agent, version):
    device = fortigate_at(version)
    client = agent(device)
    missing = client.api_login(request_key=True)
    assert missing.status_code == 401 and "<title>401" in missing.text  # Ansible falls back on 401/404
    with_token = client.post("/api/v2/authentication", json={}, headers=bearer(device.token))
    assert with_token.status_code == 404
    assert client.logincheck().text.startswith("1") and client.get(STATUS).status_code == 200


# -- logout and expiry ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_logout_ends_a_cookie_session(fortigate, agent, method):
    client = agent(fortigate)
    client.logincheck()
    assert client.get(STATUS).status_code == 200
    response = client.request(method, "/logout")
    assert response.status_code == 200
    assert any("Max-Age=0" in h for h in set_cookies(response))
    client.http.cookies.clear()
    assert client.get(STATUS).status_code == 401


def test_logout_invalidates_the_cookie_even_if_the_client_keeps_it(fortigate, agent):
    client = agent(fortigate)
    client.logincheck()
    kept = client.cookies()
    client.post("/logout")
    header = "; ".join(f"{name}={value}" for name, value in kept.items())
    fresh = agent(fortigate)
    assert fresh.get(STATUS, headers={"Cookie": header}).status_code == 401


def test_expire_sessions_ends_cookie_and_key_sessions(fortigate, agent):
    client = agent(fortigate)
    client.logincheck()
    key = client.key_login()
    fortigate.apply({"op": "expire-sessions"})
    assert client.get(STATUS).status_code == 401
    assert client.get(STATUS, headers=bearer(key)).status_code == 401


def test_sessions_idle_out_after_the_admin_timeout(fortigate_at):
    device = fortigate_at("7.4.5", admin_timeout=1)
    clients = [Agent("requests", device), Agent("httpx", device)]
    keys = [c.key_login() for c in clients]
    for c in clients:
        c.logincheck()
    time.sleep(1.5)  # idle for longer than admin_timeout
    for c, key in zip(clients, keys):
        assert c.get(STATUS).status_code == 401
        assert c.get(STATUS, headers=bearer(key)).status_code == 401
        c.close()


def test_a_cookie_session_value_is_no_bearer_key(fortigate, agent):
    client = agent(fortigate)
    client.logincheck()
    secret = next(v for n, v in client.cookies().items() if n.startswith("APSCOOKIE_")).strip('"')
    assert agent(fortigate).get(STATUS, headers=bearer(secret)).status_code == 401


# -- post-login banner -------------------------------------------------------------------------------
def test_banner_blocks_a_logincheck_session_until_accepted(fortigate_at, agent):
    client = agent(fortigate_at("7.4.5", post_login_banner=True))
    assert client.logincheck().text.startswith("1")
    assert client.get(STATUS).status_code == 401
    accepted = client.post("/logindisclaimer", data={"confirm": "1"})
    assert accepted.status_code == 200
    assert client.get(STATUS).status_code == 200


def test_declining_the_banner_ends_the_session(fortigate_at, agent):
    client = agent(fortigate_at("7.4.5", post_login_banner=True))
    client.logincheck()
    assert client.post("/logindisclaimer", data={"confirm": "0"}).text.startswith("0")
    assert client.post("/logindisclaimer", data={"confirm": "1"}).status_code == 401


def test_banner_and_session_keys(fortigate_at, agent):
    client = agent(fortigate_at("7.4.5", post_login_banner=True))
    pending = client.key_login(ack_post_disclaimer=False)
    assert client.get(STATUS, headers=bearer(pending)).status_code == 401
    ack = client.request("PUT", "/api/v2/authentication", json={"ack_post_disclaimer": True}, headers=bearer(pending))
    assert ack.status_code == 200
    assert client.get(STATUS, headers=bearer(pending)).status_code == 200
    acked = client.key_login(ack_post_disclaimer=True)
    assert client.get(STATUS, headers=bearer(acked)).status_code == 200


def test_set_banner_turns_the_banner_off(fortigate_at, agent):
    device = fortigate_at("7.4.5", post_login_banner=True)
    device.apply({"op": "set-banner", "post_login": False})
    client = agent(device)
    client.logincheck()
    assert client.get(STATUS).status_code == 200


# -- lockout: password and token failures alike ---------------------------------------------------------
def assert_locked_out(client: Agent, token: str) -> None:
    locked = client.logincheck()
    assert locked.status_code == 429 and "<title>429 Too Many Requests</title>" in locked.text
    assert client.api_login(request_key=True).status_code == 429
    assert client.get(STATUS, headers=bearer(token)).status_code == 429


def test_wrong_passwords_lock_the_source_out(fortigate, agent):
    client = agent(fortigate)
    for _ in range(3):  # admin_lockout_threshold defaults to 3
        assert client.logincheck("wrong").text.startswith("0")
    assert_locked_out(client, fortigate.token)


def test_wrong_passwords_on_authentication_lock_out(fortigate, agent):
    client = agent(fortigate)
    for _ in range(3):
        assert client.api_login("wrong").json()["status"] == -1
    assert_locked_out(client, fortigate.token)


def test_bad_tokens_lock_out_password_logins(fortigate, agent):
    client = agent(fortigate)
    for _ in range(3):
        assert client.get(STATUS, headers=bearer("x" * 30)).status_code == 401
    assert_locked_out(client, fortigate.token)


def test_token_and_password_failures_add_up(fortigate, agent):
    client = agent(fortigate)
    client.logincheck("wrong")
    client.get(STATUS, headers=bearer("x" * 30))
    client.api_login("wrong")
    assert_locked_out(client, fortigate.token)


def test_a_success_resets_the_count_and_bare_gets_do_not_count(fortigate, agent):
    client = agent(fortigate)
    client.logincheck("wrong")
    client.logincheck("wrong")
    assert client.logincheck().text.startswith("1")
    for _ in range(5):
        client.get("/logincheck")
    client.logincheck("wrong")
    client.logincheck("wrong")
    assert client.logincheck().text.startswith("1")


def test_a_locked_out_source_keeps_no_use_of_its_session(fortigate, agent):
    client = agent(fortigate)
    client.logincheck()
    fortigate.apply({"op": "lock-out", "address": "127.0.0.1"})
    assert client.get(STATUS).status_code == 429
    assert client.post("/logout").status_code == 429


def test_the_lockout_ends_after_its_duration(fortigate_at):
    device = fortigate_at("7.4.5", admin_lockout_threshold=2, admin_lockout_duration=1)
    clients = [Agent("requests", device), Agent("httpx", device)]  # one source: 127.0.0.1
    clients[0].logincheck("wrong")
    clients[1].logincheck("wrong")
    assert [c.logincheck().status_code for c in clients] == [429, 429]
    time.sleep(1.2)  # longer than admin_lockout_duration
    for client in clients:
        assert client.logincheck().text.startswith("1")
        client.close()


# -- admins: trusted hosts, profiles, VDOMs, password changes ------------------------------------------
@pytest.fixture
def custom_fortigate(make_fortigate, tmp_path):
    """``custom_fortigate(toml)``: a FortiGate from fgt-healthy plus the given TOML."""

    def make(extra: str) -> mockfgt.FortiGate:
        path = tmp_path / f"custom-{len(list(tmp_path.iterdir()))}.toml"
        path.write_text('summary = "custom"\nextends = "fgt-healthy"\nexpect = "ok"\n' + extra)
        return make_fortigate(path)

    return make


ADMINS = """
vdoms = ["root", "branch"]

[[device.admins]]
name = "remote"
password = "pw-remote"
trusthosts = ["192.0.2.0 255.255.255.0"]

[[device.admins]]
name = "auditor"
password = "pw-auditor"
accprofile = "super_admin_readonly"
vdoms = ["root"]

[[device.admins]]
name = "everywhere"
password = "pw-everywhere"
trusthosts = ["0.0.0.0/0", "::/0"]
"""


def test_admin_trusthosts_accprofile_and_vdoms(custom_fortigate, agent):
    device = custom_fortigate("[device]\n" + ADMINS)
    outsider = agent(device)
    assert outsider.logincheck("pw-remote", username="remote").text.startswith("0")
    everywhere = agent(device)
    assert everywhere.logincheck("pw-everywhere", username="everywhere").text.startswith("1")
    auditor = agent(device)
    auditor.logincheck("pw-auditor", username="auditor")
    assert auditor.get(ADDRESSES).status_code == 200
    assert auditor.create_address("ro", {"X-CSRFTOKEN": auditor.csrf()}).status_code == 403  # profile: read
    assert auditor.get(ADDRESSES, params={"vdom": "branch"}).status_code == 403  # VDOM not assigned


def test_set_admin_password_changes_what_logs_in(fortigate, agent):
    fortigate.apply({"op": "set-admin-password", "admin": ADMIN, "password": "N3w-Passw0rd"})
    client = agent(fortigate)
    assert client.logincheck().text.startswith("0")
    assert client.logincheck("N3w-Passw0rd").text.startswith("1")


# -- scenario keys ----------------------------------------------------------------------------------------
def scenario_error(tmp_path: Path, text: str) -> ScenarioError:
    path = tmp_path / "bad.toml"
    path.write_text('summary = "bad"\nextends = "fgt-healthy"\nexpect = "ok"\n' + text)
    with pytest.raises(ScenarioError) as caught:
        load(path)
    assert str(path) in str(caught.value)
    return caught.value


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[[device.admins]]\nname = "a"\npassword = "p"\naccprofile = "nope"\n', "device.admins[0].accprofile", "not a profile"),
    ('[[device.admins]]\nname = "a"\npassword = "p"\nvdoms = ["vd9"]\n', "device.admins[0].vdoms", "not in device.vdoms"),
    ('[[device.admins]]\nname = "a"\n', "device.admins[0].password", "is required"),
    ('[[device.admins]]\nname = "agent"\npassword = "p"\n', "device.admins[0].name", "already an API user"),
    ('[[device.admins]]\nname = "a"\npassword = "p"\n[[device.admins]]\nname = "a"\npassword = "q"\n',
     "device.admins", "share a name"),
    ('[[device.admins]]\nname = "a"\npassword = "p"\ntrusthosts = ["10.0.0.300/8"]\n',
     "device.admins[0].trusthosts[0]", "not a usable trusted host"),
    ('[device.settings]\nadmin_timeout = 0\n', "device.settings.admin_timeout", "out of range"),
    ('[client]\nauth = "password"\nuser = "agent"\n', "client.user", "not an admin"),
    ('[client]\nauth = "pasword"\n', "client.auth", "did you mean 'password'"),
    ('[client]\nauth = "password"\nlogin = "logincheck"\nsession = "expired"\n', "client.session", "needs auth"),
    ('[device]\nadmins = []\n[client]\nauth = "password"\n', "client.auth", "needs an administrator"),
    ('setup = [{ op = "set-admin-password", admin = "ghost", password = "x" }]\n', "setup[0]", "no such"),
])
def test_bad_admin_and_client_keys_are_named(tmp_path, text, key, words):
    error = scenario_error(tmp_path, text)
    assert error.key == key and words in error.message


def test_token_agents_are_unchanged(fortigate):
    client = fortigate.client
    assert client.auth == "token" and not client.needs_login
    assert client.headers() == {"Authorization": f"Bearer {fortigate.token}"}


def test_password_agent_settings(fortigate):
    fortigate.use("csrf-missing")
    client = fortigate.client
    assert (client.auth, client.user, client.password) == ("password", ADMIN, PASSWORD)
    assert (client.login, client.csrf, client.needs_login, client.token) == ("logincheck", False, True, None)
    assert client.headers() == {} and fortigate.token  # the API user's key is still there to show


def test_stale_session_agent_holds_an_expired_key(fortigate):
    fortigate.use("session-expired")
    client = fortigate.client
    assert not client.needs_login and client.headers()["Authorization"].startswith("Bearer ")
    response = requests.get(fortigate.url + STATUS, timeout=seconds(10), **client.request_kwargs())
    assert response.status_code == 401


# -- the reference probe with password agents ------------------------------------------------------------
@pytest.mark.parametrize(("version", "login", "expected"), [
    ("6.2.4", "authentication", "ok"),  # no /api/v2/authentication: falls back to /logincheck
    ("6.2.4", "logincheck", "ok"),
    ("7.4.5", "authentication", "ok"),
    ("7.4.5", "logincheck", "ok"),
    ("7.6.3", "authentication", "ok"),
    ("7.6.3", "logincheck", "202001"),  # the login "works" but leaves no session
])
def test_probe_logs_in_per_version(fortigate_at, version, login, expected):
    device = fortigate_at(version)
    client = dataclasses.replace(password_client(device), login=login)
    assert probe(client, timeout=seconds(5)).code == expected
    assert device.state.sessions.live_count() == 0  # the probe logged out


def password_client(device: mockfgt.FortiGate) -> mockfgt.ClientSettings:
    return dataclasses.replace(device.client, auth="password", user=ADMIN, password=PASSWORD, token=None)


def test_probe_reports_a_refused_login_and_a_lockout(fortigate):
    wrong = dataclasses.replace(password_client(fortigate), password="wrong")
    results = [probe(wrong, timeout=seconds(5)) for _ in range(4)]
    assert [r.code for r in results] == ["202001"] * 4
    assert "login refused" in results[0].detail and results[-1].detail == "HTTP 429"


def logincheck(device, password: str = PASSWORD) -> requests.Response:
    return requests.post(device.url + "/logincheck", data={"username": ADMIN, "secretkey": password},
                         verify=device.ca_bundle, timeout=seconds(5))


def test_admin_login_max_refuses_a_login_past_it_until_one_ends(fortigate_at):
    """config system global admin-login-max: a login past it is refused like a failed one (answer
    unconfirmed), counts nothing toward a lockout, and works again once a session ends or idles out."""
    fgt = fortigate_at(admin_login_max=2)
    first, second = logincheck(fgt), logincheck(fgt)
    assert first.text.startswith("1") and second.text.startswith("1")
    assert [logincheck(fgt).text for _ in range(4)] == ["0"] * 4  # four refusals: no lockout (threshold 3)
    requests.post(fgt.url + "/logout", cookies=first.cookies, verify=fgt.ca_bundle, timeout=seconds(5))
    assert logincheck(fgt).text.startswith("1")
    fgt.clock.advance(seconds=301)  # every session idles out (admintimeout, 5 min)
    assert logincheck(fgt).text.startswith("1")


def test_a_client_logging_in_without_end_keeps_the_session_table_bounded(fortigate_at):
    fgt = fortigate_at()
    with requests.Session() as client:
        answers = [client.post(fgt.url + "/logincheck", data={"username": ADMIN, "secretkey": PASSWORD},
                               verify=fgt.ca_bundle, timeout=seconds(5)).text[:1] for _ in range(130)]
    assert answers == ["1"] * 100 + ["0"] * 30
    assert fgt.state.sessions.live_count() == 100


def test_failures_from_many_sources_are_forgotten_once_stale(fortigate_at):
    """Every loopback address can be a source (127.0.0.0/8): the failure and lockout tables forget
    sources whose window ran out, so they stay as small as the sources failing now."""
    from mockfgt.fortios.models import SOURCES_KEPT

    fgt = fortigate_at()
    state = fgt.state
    for i in range(SOURCES_KEPT + 500):
        state.count_failure(f"127.{i // 65536}.{i // 256 % 256}.{i % 256 + 1}")
    assert len(state._failures) + len(state._locked_until) > SOURCES_KEPT  # all within the window: kept
    fgt.clock.advance(seconds=61)  # admin-lockout-duration: every one of them is stale now
    state.count_failure("127.9.9.9")
    assert list(state._failures) == ["127.9.9.9"] and not state._locked_until
    assert requests.get(fgt.url + "/api/v2/monitor/system/status", headers={"Authorization": f"Bearer {fgt.token}"},
                        verify=fgt.ca_bundle, timeout=seconds(5)).status_code == 200
