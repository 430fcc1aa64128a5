"""Outdated cipher suites and weak certificates, through real clients over real TLS.

The vendor's TLS troubleshooting names "an outdated TLS version or cipher suite"; old devices also
present weak certificates. Four catalogue rows reproduce them. What a client reports depends on its
TLS stack, measured here rather than assumed: Python's default context (OpenSSL 3 at security level
2) refuses all four; curl accepts RSA key exchange and a certificate named only in its Common Name;
requests (urllib3 2) never reads the Common Name, Python's own ssl module does. openssl s_client
shows what the device really negotiates: the suite, the key size, the signature algorithm.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time

import httpx
import pytest
import requests

import mockfgt
from mockfgt import conformance
from mockfgt.harness import Harness
from mockfgt.serve import describe

from deadlines import seconds
from run_cli import run_mockfgt

STATUS = "/api/v2/monitor/system/status"
NEW_ROWS = ("legacy-ciphers-only", "weak-key-cert", "sha1-signed-cert", "cn-only-cert")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


# -- clients ----------------------------------------------------------------------------------------
def with_requests(client: mockfgt.ClientSettings) -> str:
    try:
        answer = requests.get(client.url + STATUS, timeout=seconds(10), **client.request_kwargs())
    except requests.RequestException as exc:
        return mockfgt.classify(exc)
    return mockfgt.classify(answer)


def with_httpx(client: mockfgt.ClientSettings) -> str:
    """httpx with the agent's context: Python's ssl module, as the standard library sets it up."""
    try:
        answer = httpx.get(client.url + STATUS, headers=client.headers(), verify=client.ssl_context(),
                           timeout=seconds(10))
    except httpx.HTTPError as exc:
        return mockfgt.classify(exc)
    return mockfgt.classify(answer)


def with_curl(curl: str, client: mockfgt.ClientSettings) -> tuple[str, str]:
    """(code, curl's stderr) for the agent's status call made with curl."""
    trust = ["--insecure"] if client.verify is False else ["--cacert", str(client.verify)]
    headers = [arg for name, value in client.headers().items() for arg in ("-H", f"{name}: {value}")]
    done = subprocess.run([curl, "-q", "-sS", "--noproxy", "*", "--max-time", str(seconds(10)), "-o", "/dev/null",
                           "-w", "%{http_code}", *trust, *headers, client.url + STATUS],
                          capture_output=True, text=True, timeout=seconds(30))
    if done.returncode:
        return conformance.curl_code(done.returncode, done.stderr), done.stderr
    return (mockfgt.OK if done.stdout == "200" else f"HTTP {done.stdout}"), done.stderr


def s_client(device, *flags: str, host: str = "localhost") -> subprocess.CompletedProcess:
    """openssl s_client verifying as a strict client does, sending one request once the handshake holds."""
    request = f"GET {STATUS} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{device.port}", "-servername", host,
         "-CAfile", device.ca_bundle, "-verify_hostname", host, "-verify_return_error", "-ign_eof", *flags],
        input=request, capture_output=True, timeout=seconds(30),
    )


def certificate_text(device) -> str:
    """``openssl x509 -text`` of the leaf the device presents (fetched without verifying it)."""
    shown = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{device.port}", "-servername", "localhost"],
                           input=b"", capture_output=True, timeout=seconds(30))
    pem = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", shown.stdout, re.S)
    assert pem, shown.stderr.decode()
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem.group(0), capture_output=True,
                          timeout=seconds(30))
    return text.stdout.decode()


def journaled(device, event: str, count: int) -> list[dict]:
    """The ``tls`` part of the device's ``event`` entries, once ``count`` are there (or the wait is over).

    The device journals a handshake on its own thread, which may finish after the client has its error.
    """
    deadline = time.monotonic() + seconds(5)
    while True:
        found = [e["tls"] for e in device.journal.events() if e["event"] == event]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def tls_failures(device, count: int) -> list[dict]:
    return journaled(device, "tls-failed", count)


def insecure(client: mockfgt.ClientSettings) -> mockfgt.ClientSettings:
    return dataclasses.replace(client, verify=False)


# -- legacy-ciphers-only ----------------------------------------------------------------------------
def test_legacy_ciphers_python_clients_refuse_even_when_insecure(make_fortigate):
    """Python's default suites are all forward-secret; verify=False does not change the suites offered."""
    fgt = make_fortigate("legacy-ciphers-only")
    for client in (fgt.client, insecure(fgt.client)):
        assert with_requests(client) == mockfgt.TLS
        assert with_httpx(client) == mockfgt.TLS
    failures = tls_failures(fgt, 4)
    assert len(failures) == 4 and {f["error"] for f in failures} == {"no shared cipher"}, failures
    assert all(fgt.accepts(mockfgt.TLS, insecure=i) for i in (False, True))


def test_legacy_ciphers_curl_connects_with_rsa_key_exchange(make_fortigate, curl):
    """curl (OpenSSL's default list) still offers AES128-SHA: it connects, which the row accepts."""
    fgt = make_fortigate("legacy-ciphers-only")
    code, stderr = with_curl(curl, fgt.client)
    assert code == mockfgt.OK, stderr
    assert fgt.expect == mockfgt.TLS and fgt.also_acceptable == mockfgt.OK and fgt.accepts(code)
    served = journaled(fgt, "request", 1)
    assert served and served[-1]["version"] == "TLSv1.2" and served[-1]["cipher"] == "AES128-SHA", served


def test_legacy_ciphers_s_client_shows_the_suite_and_the_rsa_key(make_fortigate):
    fgt = make_fortigate("legacy-ciphers-only")
    shown = s_client(fgt)
    out = shown.stdout.decode()
    assert shown.returncode == 0, shown.stderr.decode()
    assert "Cipher is AES128-SHA" in out and "Protocol  : TLSv1.2" in out
    assert "Server public key is 2048 bit" in out
    assert s_client(fgt, "-tls1_3").returncode != 0  # no TLS 1.3 either
    forward_secret = s_client(fgt, "-cipher", "ECDHE:DHE")
    assert forward_secret.returncode != 0 and b"handshake failure" in forward_secret.stderr


def test_legacy_ciphers_remedy_offers_ecdhe(make_fortigate):
    fgt = make_fortigate("legacy-ciphers-only")
    fixed = fgt.remedy()
    assert with_requests(fixed) == mockfgt.OK
    shown = s_client(fgt, "-tls1_2").stdout.decode()
    assert re.search(r"Cipher is ECDHE-RSA-", shown), shown


# -- weak-key-cert ----------------------------------------------------------------------------------
def test_weak_key_is_refused_by_every_verifying_client(make_fortigate, curl):
    fgt = make_fortigate("weak-key-cert")
    with pytest.raises(requests.exceptions.SSLError, match="EE certificate key too weak"):
        requests.get(fgt.client.url + STATUS, timeout=seconds(10), **fgt.client.request_kwargs())
    assert with_httpx(fgt.client) == mockfgt.TLS
    code, stderr = with_curl(curl, fgt.client)
    assert code == mockfgt.TLS and "key too weak" in stderr, stderr
    failures = tls_failures(fgt, 3)
    assert len(failures) == 3 and {f["alert"] for f in failures} == {"bad certificate"}, failures  # each client's alert


def test_weak_key_is_accepted_when_insecure(make_fortigate, curl):
    fgt = make_fortigate("weak-key-cert")
    assert with_requests(insecure(fgt.client)) == with_httpx(insecure(fgt.client)) == mockfgt.OK
    assert with_curl(curl, insecure(fgt.client))[0] == mockfgt.OK
    assert fgt.expect_insecure == mockfgt.OK


def test_weak_key_s_client_shows_1024_bits(make_fortigate):
    fgt = make_fortigate("weak-key-cert")
    shown = s_client(fgt)
    assert shown.returncode != 0
    assert b"a:PKEY: rsaEncryption, 1024 (bit)" in shown.stdout  # the chain as s_client received it
    assert b"verify error:num=66:EE certificate key too weak" in shown.stderr
    assert "Public-Key: (1024 bit)" in certificate_text(fgt)


def test_weak_key_remedy_presents_a_strong_key(make_fortigate):
    fgt = make_fortigate("weak-key-cert")
    assert with_requests(fgt.remedy()) == mockfgt.OK
    assert "Public-Key: (256 bit)" in certificate_text(fgt)


# -- sha1-signed-cert -------------------------------------------------------------------------------
def test_sha1_signature_is_refused_by_every_verifying_client(make_fortigate, curl):
    fgt = make_fortigate("sha1-signed-cert")
    with pytest.raises(requests.exceptions.SSLError, match="CA signature digest algorithm too weak"):
        requests.get(fgt.client.url + STATUS, timeout=seconds(10), **fgt.client.request_kwargs())
    assert with_httpx(fgt.client) == mockfgt.TLS
    code, stderr = with_curl(curl, fgt.client)
    assert code == mockfgt.TLS and "digest algorithm too weak" in stderr, stderr
    failures = tls_failures(fgt, 3)
    assert len(failures) == 3 and {f["alert"] for f in failures} == {"bad certificate"}, failures
    assert fgt.also_acceptable is None  # no current stack accepts it: nothing else is right


def test_sha1_signature_is_accepted_when_insecure(make_fortigate, curl):
    fgt = make_fortigate("sha1-signed-cert")
    assert with_requests(insecure(fgt.client)) == with_httpx(insecure(fgt.client)) == mockfgt.OK
    assert with_curl(curl, insecure(fgt.client))[0] == mockfgt.OK


def test_sha1_s_client_shows_the_signature_algorithm(make_fortigate):
    fgt = make_fortigate("sha1-signed-cert")
    shown = s_client(fgt)
    assert shown.returncode != 0
    assert b"verify error:num=68:CA signature digest algorithm too weak" in shown.stderr
    assert b"sigalg: ecdsa-with-SHA1" in shown.stdout
    text = certificate_text(fgt)
    assert "Signature Algorithm: ecdsa-with-SHA1" in text
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text  # otherwise a valid certificate
    fgt.remedy()
    assert "Signature Algorithm: ecdsa-with-SHA256" in certificate_text(fgt)


# -- cn-only-cert -----------------------------------------------------------------------------------
def test_cn_only_requests_ignores_the_common_name(make_fortigate):
    """urllib3 2 turns off the Common Name fallback: requests reports a host name mismatch."""
    fgt = make_fortigate("cn-only-cert")
    assert fgt.client.url.startswith("https://localhost:")
    with pytest.raises(requests.exceptions.SSLError, match="Hostname mismatch"):
        requests.get(fgt.client.url + STATUS, timeout=seconds(10), **fgt.client.request_kwargs())
    failed = tls_failures(fgt, 1)
    assert failed and failed[-1]["sni"] == "localhost" and failed[-1]["alert"] == "bad certificate", failed


def test_cn_only_python_ssl_and_curl_fall_back_to_the_common_name(make_fortigate, curl):
    """Python's ssl module (hostname_checks_common_name) and curl accept it: the row says so."""
    fgt = make_fortigate("cn-only-cert")
    assert with_httpx(fgt.client) == mockfgt.OK
    code, stderr = with_curl(curl, fgt.client)
    assert code == mockfgt.OK, stderr
    assert fgt.expect == mockfgt.TLS and fgt.accepts(mockfgt.OK)
    assert "Common Name" in fgt.scenario.also_acceptable_reason


def test_cn_only_s_client_shows_no_san(make_fortigate):
    fgt = make_fortigate("cn-only-cert")
    shown = s_client(fgt)
    assert shown.returncode == 0 and b"Verify return code: 0 (ok)" in shown.stdout  # X509_check_host reads CN
    text = certificate_text(fgt)
    assert "Subject: CN = localhost" in text and "Subject Alternative Name" not in text
    fgt.remedy()
    assert "Subject Alternative Name" in certificate_text(fgt)


# -- also_acceptable: shown wherever expectations are -----------------------------------------------
def test_scenarios_show_and_json_name_the_other_acceptable_code():
    shown = run_mockfgt("scenarios", "show", "legacy-ciphers-only")
    assert shown.returncode == 0, shown.stderr
    assert "Also acceptable: ok, where your TLS stack still offers RSA key exchange" in shown.stdout
    assert "ciphers legacy-rsa-cbc" in shown.stdout
    rows = {row["name"]: row for row in json.loads(run_mockfgt("scenarios", "--json").stdout)}
    assert rows["cn-only-cert"]["also_acceptable"] == "ok"
    assert "Common Name" in rows["cn-only-cert"]["also_acceptable_reason"]
    assert "also_acceptable" not in rows["sha1-signed-cert"] and "also_acceptable" not in rows["expired-cert"]
    table = run_mockfgt("scenarios").stdout.splitlines()
    assert re.search(r"^weak-key-cert +fortigate +202003 +ok +ok ", "\n".join(table), re.M), table


def test_banner_and_manifest_name_the_other_acceptable_code(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca, control_port=None) as h:
        device = h.add("weak-key-cert")
        h.add("expired-cert")
        h.start(manifest=tmp_path / "m.json")
        banner = describe(device)
        doc = {d["name"]: d for d in json.loads((tmp_path / "m.json").read_text())["devices"]}
    assert "A correct client reports: 202003" in banner
    assert "Also acceptable: ok, where your TLS stack accepts 1024-bit RSA keys" in banner
    assert doc["weak-key-cert"]["also_acceptable"] == "ok"
    assert doc["weak-key-cert"]["also_acceptable_reason"] == device.scenario.also_acceptable_reason
    assert "also_acceptable" not in doc["expired-cert"]


def test_acceptable_codes_per_mode():
    legacy, cn_only, sha1 = (mockfgt.load_scenario(name) for name in ("legacy-ciphers-only", "cn-only-cert", "sha1-signed-cert"))
    assert legacy.acceptable() == legacy.acceptable(insecure=True) == ("202003", "ok")
    assert cn_only.acceptable() == ("202003", "ok") and cn_only.acceptable(insecure=True) == ("ok",)
    assert sha1.acceptable() == ("202003",)


@pytest.mark.parametrize("body, key, words", [
    ('also_acceptable = "ok"\n', "also_acceptable_reason", ["is required with also_acceptable = 'ok'"]),
    ('also_acceptable = "ok"\nalso_acceptable_reason = "  "\n', "also_acceptable_reason", ["is required"]),
    ('also_acceptable_reason = "why"\n', "also_acceptable_reason", ["add also_acceptable or remove this key"]),
    ('expect_insecure = 202003\nalso_acceptable = 202003\nalso_acceptable_reason = "why"\n', "also_acceptable",
     ["already what the scenario expects", "allowed: ok, 202000"]),
    ('also_acceptable = "okay"\nalso_acceptable_reason = "why"\n', "also_acceptable",
     ["not an expected code", "allowed: ok", "did you mean 'ok'"]),
    ('also_acceptable = true\nalso_acceptable_reason = "why"\n', "also_acceptable", ["not an expected code"]),
    ('also_acceptable = "ok"\nalso_acceptable_reason = 3\n', "also_acceptable_reason", ["expected a string"]),
    ('[tls]\nciphers = "export"\n', "tls.ciphers", ["'export' is not allowed", "allowed: default, legacy-rsa-cbc"]),
    ('[tls]\nversions = ["TLSv1.2"]\nciphers = "legacy-rsa-cbc"\n', "tls.ciphers",
     ["needs a certificate with an RSA key", "allowed: valid-rsa, weak-key"]),
    ('[tls]\ncertificate = "valid-rsa"\nciphers = "legacy-rsa-cbc"\n', "tls.ciphers", ["TLSv1.3"]),
    ('[tls]\ncertificate = "valid-rsa"\nversions = ["TLSv1.2"]\n[remedy]\n'
     'device = [{ op = "set-tls", ciphers = "legacy-rsa-cbc", versions = ["TLSv1.3"] }]\n',
     "remedy.device[0].ciphers", ["TLSv1.3"]),
])
def test_schema_errors_name_file_key_and_allowed_values(tmp_path, body, key, words):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "fgt-healthy"\nsummary = "x"\nexpect = 202003\n' + body)
    with pytest.raises(mockfgt.ScenarioError) as raised:
        mockfgt.load_scenario(path)
    assert raised.value.source == str(path) and raised.value.key == key, str(raised.value)
    assert [w for w in words if w not in raised.value.message] == [], raised.value.message


def test_a_user_scenario_may_name_another_acceptable_code(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "expired-cert"\nsummary = "x"\nalso_acceptable = "ok"\n'
                    'also_acceptable_reason = "your agent pins this certificate"\n')
    sc = mockfgt.load_scenario(path)
    assert sc.acceptable() == ("202003", "ok") and sc.also_acceptable_reason == "your agent pins this certificate"


@pytest.mark.parametrize("name", NEW_ROWS)
def test_new_rows_are_catalogue_rows_with_a_device_remedy(name):
    sc = mockfgt.load_scenario(name)
    assert sc.kind == "fortigate" and sc.expect == mockfgt.TLS
    assert sc.remedy["summary"] and sc.remedy["device"], name
