"""``mockfgt diagnose`` against every catalogue scenario, through the command line, over real sockets.

The verdict must equal what the scenario says a correct client reports (``expect``; ``expect_insecure``
with ``--insecure``; ``ok`` after the remedy), and the step that decides it must explain the fault in
the terms the vendor's troubleshooting pages use.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import mockfgt
from mockfgt import cli, codes
from mockfgt.agent import Agent
from mockfgt.diagnose import STEPS, WRITE_PREFIX, argv, cli_complete, diagnose

from deadlines import seconds

TIMEOUT = 1.0  # a stall holds until the client leaves; diagnose waits 1 s and reports 202004
STALLS = ("stall-handshake", "stall-response")


def timeout_for(device) -> float:
    """1 s where the stall is the behaviour under test; elsewhere a deadline that load cannot reach
    (a remedied FortiManager flow makes a dozen calls, and a busy CI box can hold one past 1 s)."""
    slow = device.scenario.expect == "202004"  # slow-endpoint: one call answers after 20 s, on purpose
    return TIMEOUT if device.scenario.connection["fault"] in STALLS or slow else seconds(5)


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    status = cli.main(["diagnose", *args])
    return status, capsys.readouterr().out


def diagnose_json(device, capsys, client=None) -> tuple[int, dict]:
    """Run ``mockfgt diagnose --json`` as the scenario's agent is configured; return (exit status, report).

    Where the scenario's fault is an agent misconfiguration no option can express (csrf-missing's
    agent omits the CSRF token, fmg-workspace-not-locked's agent writes without the lock: a correct
    tool always does both), the same settings go through diagnose's Python API instead.
    """
    target = dataclasses.replace(client or device.client, timeout=timeout_for(device))
    if cli_complete(target):
        status, out = run_cli([*argv(target), "--json"], capsys)
    else:
        report = diagnose(target)
        status, out = (0 if report.verdict == codes.OK else 1), json.dumps(report.to_dict())
    report = json.loads(out)
    assert (device.token or "no token") not in out, "the report never shows the token"
    return status, report


def step(report: dict, name: str) -> dict:
    return next(s for s in report["steps"] if s["name"] == name)


def text_of(s: dict) -> str:
    return " ".join([s["summary"], *s["details"].values(), *s["notes"]])


# -- every scenario ---------------------------------------------------------------------------------
#: Where diagnose must decide, and words its explanation must contain (the vendor's remedies).
EXPLANATIONS = {
    "dns-unresolvable": ("resolve", ["does not resolve"]),
    "port-closed": ("tcp", ["refused", "Nothing listens"]),
    "reset-on-connect": ("tls", ["dropped before TLS", "reset the connection"]),
    "tls-stall": ("tls", ["no TLS answer within 1 s"]),
    "response-stall": ("authentication", ["no HTTP answer", "overloaded"]),
    "expired-cert": ("tls", ["certificate has expired", "OpenSSL code 10", "expired", "Renew"]),
    "not-yet-valid-cert": ("tls", ["not yet valid", "not valid for another", "NTP"]),
    "self-signed-factory": ("tls", ["self-signed", "factory certificate", "O=Fortinet", "Insecure"]),
    "hostname-mismatch": ("tls", ["fw.customer.example", "127.0.0.1"]),
    "ip-without-ip-san": ("tls", ["IP address mismatch", "DNS:localhost", "IP SAN"]),
    "private-ca": ("tls", ["OpenSSL code 20", "internal CA"]),
    "incomplete-chain": ("tls", ["1 certificate sent", "incomplete or untrusted", "full chain"]),
    "tls10-only": ("tls", ["speaks only TLSv1;", "admin-https-ssl-versions"]),
    "tls11-only": ("tls", ["speaks only TLSv1.1", "admin-https-ssl-versions"]),
    "plaintext-http": ("tls", ["does not speak TLS", "plain HTTP (HTTP/1.1"]),
    "client-cert-required": ("tls", ["requires a client certificate", "PKI peer group"]),
    "invalid-token": ("authentication", ["HTTP 401", "trusted hosts"]),
    "token-regenerated": ("authentication", ["HTTP 401", "regenerated"]),
    "api-user-deleted": ("authentication", ["HTTP 401", "deleted"]),
    "trusted-host-rejected": ("authentication", ["HTTP 401", "trusted hosts", "NAT"]),
    "auth-lockout": ("authentication", ["HTTP 429", "blocked this source address"]),
    "lockout-escalating": ("authentication", ["HTTP 429", "blocked this source address"]),  # its first phase
    "password-wrong": ("authentication", ["refused the login", "LOGIN_FAILED", "password", "HTTP 429"]),
    "session-expired": ("authentication", ["HTTP 401", "session key the agent kept", "admintimeout", "Log in again"]),
    "post-login-banner": ("authentication", ["HTTP 401", "/logincheck", "post-login-banner", "--accept-banner"]),
    "csrf-missing": ("authorization", ["HTTP 403", "sent no X-CSRFTOKEN", "ccsrftoken"]),
    "fmg-login-failed": ("authentication", ["refused the login", "code -22", "password"]),
    "fmg-session-expired": ("authentication", ["code -11", "session id the agent kept", "Log in again"]),
    "fmg-workspace-not-locked": ("authorization", ["code -10147", "lock the ADOM"]),
    "fmg-not-super-user": ("authorization", ["code -11", "trusted hosts", "Super_User"]),
    "token-in-query-string": ("authentication", ["works as Authorization: Bearer", "in the URL"]),
    "no-firewall-permission": ("authorization", ["HTTP 403", "no firewall access"]),
    "read-only-profile": ("authorization", [WRITE_PREFIX, "HTTP 403", "firewall read only"]),
    "vdom-not-assigned": ("authorization", ["HTTP 403", "VDOM 'customer' is not assigned"]),
    "global-scope-denied": ("authorization", ["HTTP 403", "VDOM 'root' is not assigned"]),
    "slow-endpoint": ("authorization", ["no HTTP answer to the read call", "overloaded"]),  # status fast, read slow
    "legacy-ciphers-only": ("tls", ["outdated cipher suites", "AES", "RSA key exchange", "strong-crypto enable"]),
    "weak-key-cert": ("tls", ["key too weak", "OpenSSL code 66", "1024-bit", "2048-bit"]),
    "sha1-signed-cert": ("tls", ["digest algorithm too weak", "OpenSSL code 68", "signed with SHA1", "SHA-256"]),
    "cn-only-cert": ("tls", ["Hostname mismatch", "only in its Common Name", "no SAN", "Reissue"]),
}


def test_verdict_is_the_scenarios_expected_code(catalogue_device, capsys):
    """The verdict and exit status; the report's shape; where it decided and how it explains it."""
    status, report = diagnose_json(catalogue_device, capsys)
    assert report["verdict"] == catalogue_device.expect
    assert status == (0 if catalogue_device.expect == codes.OK else 1)
    assert [s["name"] for s in report["steps"]] == list(STEPS)
    assert report["guidance"] == codes.guidance(report["verdict"], timeout=timeout_for(catalogue_device))  # the timeout it was given
    decided, after = report["deciding_step"], False
    for s in report["steps"]:
        if after:
            assert s["code"] is None and s["summary"].startswith("not run")
        after = after or s["name"] == decided
    if catalogue_device.scenario.name in EXPLANATIONS:
        where, words = EXPLANATIONS[catalogue_device.scenario.name]
        assert decided == where
        said = text_of(step(report, where))
        assert [w for w in words if w not in said] == [], said


def test_verdict_with_insecure_is_the_expected_insecure_code(catalogue_device, capsys):
    insecure = dataclasses.replace(catalogue_device.client, verify=False)
    status, report = diagnose_json(catalogue_device, capsys, insecure)
    assert report["verdict"] == catalogue_device.expect_insecure
    assert status == (0 if catalogue_device.expect_insecure == codes.OK else 1)


def test_remedy_turns_the_verdict_ok(catalogue_device, capsys):
    fixed = catalogue_device.remedy()
    status, report = diagnose_json(catalogue_device, capsys, fixed)
    assert (status, report["verdict"]) == (0, codes.OK), report


def test_every_fortigate_fault_has_an_explanation_check():
    faults = {sc.name for sc in mockfgt.catalogue() if sc.kind == "fortigate" and sc.expect != codes.OK}
    assert faults <= set(EXPLANATIONS)


# -- what each layer explains, beyond the catalogue -------------------------------------------------
def test_client_certificate_on_tls13_only_is_found_after_the_handshake(make_fortigate, capsys):
    fgt = make_fortigate("client-cert-required")
    fgt.apply({"op": "set-tls", "versions": ["TLSv1.3"]})
    _, report = diagnose_json(fgt, capsys)
    assert (report["verdict"], report["deciding_step"]) == (codes.TLS, "authentication")
    assert "requires a client certificate" in text_of(step(report, "authentication"))
    assert "TLS 1.3 only" in text_of(step(report, "tls"))


def test_a_complete_chain_is_recognised(make_fortigate, capsys):
    fgt = make_fortigate("incomplete-chain")
    fgt.remedy()
    _, report = diagnose_json(fgt, capsys)
    assert step(report, "tls")["details"]["chain"].startswith("2 certificates sent; complete")


def test_a_healthy_device_reports_what_it_is(fortigate, capsys):
    _, report = diagnose_json(fortigate, capsys)
    tls, auth = step(report, "tls")["details"], step(report, "authentication")["details"]
    assert tls["verifies"].startswith("yes, for 127.0.0.1")
    assert "IP:127.0.0.1" in tls["SANs"] and "O=mockfgt" in tls["subject"]
    assert auth["hostname"] == "fgt-mock" and auth["serial"] == "FGVM02TM24000001"
    assert auth["version"].startswith("v7.4.5")


def test_insecure_still_warns_about_the_certificate(make_fortigate, capsys):
    fgt = make_fortigate("expired-cert")
    _, report = diagnose_json(fgt, capsys, dataclasses.replace(fgt.client, verify=False))
    tls = step(report, "tls")
    assert tls["code"] == codes.OK
    assert any(n.startswith("Insecure is on, so the agent does not notice") for n in tls["notes"])


def test_writes_are_checked_only_when_asked(make_fortigate, capsys):
    fgt = make_fortigate("read-only-profile")
    read_only = dataclasses.replace(fgt.client, write=False)
    status, report = diagnose_json(fgt, capsys, read_only)
    assert (status, report["verdict"]) == (0, codes.OK)
    assert "--write-check" in step(report, "authorization")["summary"]


def test_the_write_check_leaves_nothing_behind(fortigate, capsys):
    _, report = diagnose_json(fortigate, capsys)
    assert WRITE_PREFIX in step(report, "authorization")["details"]["test address deleted"]
    client = fortigate.client
    answer = requests.get(f"{client.url}/api/v2/cmdb/firewall/address", timeout=seconds(5), **client.request_kwargs())
    assert not [a for a in answer.json()["results"] if a["name"].startswith(WRITE_PREFIX)]


def test_the_wrong_kind_of_device_is_named(fortigate, capsys):
    target = dataclasses.replace(fortigate.client, timeout=seconds(5), kind="fortimanager")
    status, out = run_cli([*argv(target), "--json"], capsys)
    report = json.loads(out)
    assert (status, report["verdict"], report["deciding_step"]) == (1, codes.CONNECTION, "authentication")
    assert "--kind fortigate" in text_of(step(report, "authentication"))


# -- the command line -------------------------------------------------------------------------------
def test_text_report_gives_the_vendor_guidance(make_fortigate, capsys):
    fgt = make_fortigate("expired-cert")
    target = dataclasses.replace(fgt.client, timeout=seconds(5))
    status, out = run_cli(argv(target), capsys)
    assert status == 1
    assert "Verdict: 202003 (TLS/SSL certificate error, at tls)" in out
    assert all(tip in out for tip in codes.guidance(codes.TLS))
    assert fgt.token not in out


def test_text_report_of_a_healthy_device(fortigate, capsys):
    status, out = run_cli(argv(dataclasses.replace(fortigate.client, timeout=seconds(5))), capsys)
    assert status == 0
    assert out.rstrip().endswith("Verdict: ok (reads and writes)")


def test_token_from_standard_input(fortigate, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(fortigate.token + "\n"))
    status, out = run_cli([fortigate.url, "--ca", fortigate.ca_bundle, "--token", "-", "--json"], capsys)
    assert (status, json.loads(out)["verdict"]) == (0, codes.OK)


@pytest.mark.parametrize("args", [
    ["ftp://fw.example"], ["https://"], ["https://fw.example:99999"],
    ["https://fw.example", "--ca", "/nonexistent/ca.pem"], ["https://fw.example", "--timeout", "0"],
])
def test_bad_arguments_are_a_usage_error(args, capsys):
    assert cli.main(["diagnose", *args]) == 2
    assert "mockfgt diagnose:" in capsys.readouterr().err


def test_vdom_and_adom_exclude_each_other(capsys):
    assert cli.main(["diagnose", "https://fw.example", "--vdom", "root", "--adom", "root"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_diagnose_imports_nothing_of_the_device():
    """A user points diagnose at a real device: it may use the client side of mockfgt only."""
    allowed = {"mockfgt.agent", "mockfgt.argtypes", "mockfgt.classify", "mockfgt.codes", "mockfgt.flows",
               "mockfgt.hosts", "mockfgt.kinds", "mockfgt.manifest", "mockfgt.schema", "mockfgt.transport"}
    package = Path(mockfgt.__file__).parent
    modules = ["flows.py", "hosts.py", "agent.py", "transport.py", "fortios/client.py", "fortimanager/client.py"]
    inside = [p.name for p in (package / "diagnose").glob("*.py")]
    assert {"target.py", "report.py", "network.py", "certificates.py", "api.py", "advice.py", "cli.py"} <= set(inside)
    for module in [*modules, *(f"diagnose/{name}" for name in inside)]:
        tree = ast.parse((package / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [node.module] if node.module else [alias.name for alias in node.names]  # from . import x
                if module.startswith("diagnose/") and node.level == 1:
                    continue  # the package's own modules
                for name in names:
                    assert f"mockfgt.{name}" in allowed, f"{module} imports .{name}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("mockfgt") for a in node.names), module


def test_python_dash_m_runs_the_package():
    """``python -m mockfgt.diagnose`` is the same command as ``mockfgt diagnose``."""
    done = subprocess.run([sys.executable, "-m", "mockfgt.diagnose", "https://127.0.0.1:9", "--json", "--timeout", "5"],
                          capture_output=True, text=True, timeout=seconds(60))
    assert done.returncode == 1 and json.loads(done.stdout)["verdict"] == codes.CONNECTION, done.stderr


def test_the_client_halves_load_no_web_framework():
    """diagnose finds each kind's client half through the registry without loading Flask (the server's)."""
    code = ("import sys, mockfgt.diagnose, mockfgt.kinds as k; "
            "print([type(k.get(n)).__name__ for n in k.names()], 'flask' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds(60))
    assert done.stdout.split() == ["['FortiGateKind',", "'FortiManagerKind']", "False"], done.stderr


@pytest.mark.parametrize("url", ["https://admin:S3cret-pw@127.0.0.1:9", "https://127.0.0.1:9/?access_token=S3cret-pw"])
def test_credentials_in_the_url_are_refused_unseen(url, capsys):
    assert cli.main(["diagnose", url, "--json"]) == 2
    captured = capsys.readouterr()
    assert "S3cret-pw" not in captured.out + captured.err
    assert "https://127.0.0.1:9" in captured.err and "--token" in captured.err


def test_argv_keeps_values_that_start_with_a_dash(capsys):
    """A password a scenario sets may start with '-' (generated ones once did, 1 in 64): argv keeps it."""
    target = Agent("https://127.0.0.1:9", kind="fortimanager", auth="password", user="admin", password="-dash-first",
                   timeout=5)
    status, out = run_cli([*argv(target), "--json"], capsys)
    assert status == 1 and json.loads(out)["verdict"] == codes.CONNECTION  # parsed and run, not a usage error
