"""Every catalogue scenario, walked by a real client over real sockets.

For each scenario: the agent as configured gets ``expect``; the same agent with verification off
("Insecure") gets ``expect_insecure`` (either may be the scenario's ``also_acceptable`` where the
client's TLS stack decides); after the documented remedy it works (``ok``). An agent that
uses a password logs in first, with requests here and with urllib in the reference probe.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
import requests

import mockfgt
from mockfgt.classify import classify_jsonrpc
from mockfgt.fortios.client import authentication_body, logincheck_succeeded, session_key_from
from mockfgt.probe import first_call, probe

from deadlines import seconds

TIMEOUT = 1.0  # the timeout rows hold until the client leaves; a client that waits 1 s reports 202004
# Every row of the fault catalogue the project must ship (scenario, expect, expect_insecure).
REQUIRED_ROWS = {
    "fgt-healthy": ("ok", "ok"), "port-closed": ("202000", "202000"), "dns-unresolvable": ("202000", "202000"),
    "reset-on-connect": ("202000", "202000"), "tls-stall": ("202004", "202004"),
    "response-stall": ("202004", "202004"), "self-signed-factory": ("202003", "ok"),
    "expired-cert": ("202003", "ok"), "not-yet-valid-cert": ("202003", "ok"),
    "hostname-mismatch": ("202003", "ok"), "ip-without-ip-san": ("202003", "ok"), "private-ca": ("202003", "ok"),
    "incomplete-chain": ("202003", "ok"), "tls10-only": ("202003", "202003"), "tls11-only": ("202003", "202003"),
    "client-cert-required": ("202003", "202003"), "plaintext-http": ("202003", "202003"),
    "invalid-token": ("202001", "202001"), "token-regenerated": ("202001", "202001"),
    "api-user-deleted": ("202001", "202001"), "trusted-host-rejected": ("202001", "202001"),
    "token-in-query-string": ("202001", "202001"), "auth-lockout": ("202001", "202001"),
    "read-only-profile": ("202002", "202002"), "no-firewall-permission": ("202002", "202002"),
    "vdom-not-assigned": ("202002", "202002"),
    "password-wrong": ("202001", "202001"), "session-expired": ("202001", "202001"),
    "csrf-missing": ("202002", "202002"), "post-login-banner": ("202001", "202001"),
    "fmg-healthy": ("ok", "ok"), "fmg-stock-cert": ("202003", "ok"), "fmg-invalid-token": ("202001", "202001"),
    "fmg-token-regenerated": ("202001", "202001"), "fmg-session-expired": ("202001", "202001"),
    "fmg-token-in-query-string": ("202001", "202001"), "fmg-login-failed": ("202001", "202001"),
    "fmg-rpc-permit-read": ("202002", "202002"), "fmg-no-adom-access": ("202002", "202002"),
    "fmg-not-super-user": ("202002", "202002"), "fmg-workspace-not-locked": ("202002", "202002"),
    "legacy-ciphers-only": ("202003", "202003"), "weak-key-cert": ("202003", "ok"),
    "sha1-signed-cert": ("202003", "ok"), "cn-only-cert": ("202003", "ok"),
    # Phased rows, by their first phase (tests/test_phases.py walks the others).
    "token-regenerated-mid-run": ("ok", "ok"), "session-expires-mid-run": ("ok", "ok"), "device-reboot": ("ok", "ok"),
    "lockout-escalating": ("202001", "202001"), "cert-regenerated": ("ok", "ok"),
    "upgrade-7.2-to-7.4-query-token": ("ok", "ok"), "upgrade-7.4-profile-flip": ("ok", "ok"),
    "cert-expires-mid-run": ("ok", "ok"),
}
# Rows whose outcome depends on the client's TLS stack: the other code a correct client may report.
ALSO_ACCEPTABLE = {"legacy-ciphers-only": "ok", "weak-key-cert": "ok", "cn-only-cert": "ok"}

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


class LoginFailed(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def refused(response: requests.Response) -> LoginFailed:
    """A login answered with an error status is classified by it; one refused in its body is 202001."""
    code = mockfgt.classify(response)
    return LoginFailed(code if code != mockfgt.OK else mockfgt.AUTHENTICATION)


def log_in(http: requests.Session, client: mockfgt.ClientSettings) -> dict[str, str]:
    """Log in as a password agent does; returns the headers its calls carry (cookies stay in ``http``)."""
    kwargs = {"verify": client.verify, "cert": client.cert, "timeout": TIMEOUT}
    if client.login == "authentication":
        response = http.post(f"{client.url}/api/v2/authentication", json=authentication_body(client), **kwargs)
        if response.status_code not in (401, 404):  # those mean: no such endpoint here, use /logincheck
            key = session_key_from(response.text)
            if key is None:
                raise refused(response)
            return {"Authorization": f"Bearer {key}"}
    form = {"username": client.user, "secretkey": client.password, "ajax": "1"}
    response = http.post(f"{client.url}/logincheck", data=form, **kwargs)
    if not logincheck_succeeded(response.text):
        raise refused(response)
    if client.accept_banner:
        http.post(f"{client.url}/logindisclaimer", data={"confirm": "1"}, **kwargs)
    return {}


def fetch_status(client: mockfgt.ClientSettings, timeout: float) -> str:
    """What an agent using requests reports for its first call (after its login, if it has one)."""
    kwargs = client.request_kwargs()
    with requests.Session() as http:
        try:
            if client.needs_login:
                kwargs["headers"] = {**kwargs["headers"], **log_in(http, client)}
            response = http.get(f"{client.url}/api/v2/monitor/system/status", timeout=timeout, **kwargs)
        except LoginFailed as exc:
            return exc.code
        except requests.RequestException as exc:
            return mockfgt.classify(exc)
    return mockfgt.classify(response)


def fetch_first_jsonrpc(client: mockfgt.ClientSettings, timeout: float) -> str:
    """What a FortiManager agent using requests reports for its first call (login or /sys/status)."""
    body = first_call(client, "fortimanager")
    try:
        response = requests.post(f"{client.url}/jsonrpc", json=body, timeout=timeout, **client.request_kwargs())
    except requests.RequestException as exc:
        return mockfgt.classify(exc)
    assert response.status_code == 200, response.text  # FortiManager answers 200 whatever happened
    entry = response.json()["result"][0]
    return classify_jsonrpc(entry["status"]["code"], method=body["method"], url=entry["url"])


def patience(device) -> float:
    """1 s where the device stalls or is slow on purpose (the client must give up: slow-endpoint answers
    after 20 s); elsewhere a deadline load cannot reach."""
    stalls = device.scenario.connection["fault"] in ("stall-handshake", "stall-response")
    return TIMEOUT if stalls or device.scenario.expect == "202004" else seconds(10)


def outcome(device, client) -> str:
    """requests for the first call, then the reference agent for the rest of the flow."""
    kind, timeout = device.scenario.kind, patience(device)
    first = fetch_first_jsonrpc(client, timeout) if kind == "fortimanager" else fetch_status(client, timeout)
    if first != mockfgt.OK:
        return first
    return probe(client, kind=kind, timeout=timeout).code


def test_expected_code(catalogue_device):
    code = outcome(catalogue_device, catalogue_device.client)
    assert catalogue_device.accepts(code), (code, catalogue_device.expect)


def test_expected_code_when_insecure(catalogue_device):
    insecure = dataclasses.replace(catalogue_device.client, verify=False)
    code = outcome(catalogue_device, insecure)
    assert catalogue_device.accepts(code, insecure=True), (code, catalogue_device.expect_insecure)


def test_remedy_clears_the_fault(catalogue_device):
    fixed = catalogue_device.remedy()
    assert outcome(catalogue_device, fixed) == mockfgt.OK


def test_shown_by_names_the_first_call_that_fails(catalogue_device):
    if catalogue_device.expect == mockfgt.OK:
        return
    result = probe(catalogue_device.client, kind=catalogue_device.scenario.kind, timeout=patience(catalogue_device))
    if result.code == mockfgt.OK and catalogue_device.accepts(mockfgt.OK):
        return  # the probe's TLS stack (urllib) accepts what a strict one refuses: no call fails
    assert result.role == catalogue_device.scenario.shown_by, result


def test_every_scenario_declares_a_remedy():
    for scenario in mockfgt.catalogue():
        if scenario.expect != mockfgt.OK:
            assert scenario.remedy["summary"], scenario.name


def test_catalogue_names_are_unique_and_match_files():
    scenarios = mockfgt.catalogue()
    names = [sc.name for sc in scenarios]
    assert len(names) == len(set(names))
    for sc in scenarios:
        assert Path(sc.source).stem == sc.name
        assert tomllib.loads(Path(sc.source).read_text())  # still plain TOML


def test_every_required_row_ships_with_its_expectations():
    shipped = {sc.name: (sc.expect, sc.expect_insecure) for sc in mockfgt.catalogue()}
    assert {name: shipped.get(name) for name in REQUIRED_ROWS} == REQUIRED_ROWS


def test_rows_the_tls_stack_decides_say_so_and_why():
    shipped = {sc.name: sc for sc in mockfgt.catalogue() if sc.also_acceptable is not None}
    assert {name: sc.also_acceptable for name, sc in shipped.items()} == ALSO_ACCEPTABLE
    for sc in shipped.values():
        assert "your TLS stack" in sc.also_acceptable_reason, sc.name
