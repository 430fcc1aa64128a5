"""Certificates on the device clock, and pinning, over the wire.

A certificate's validity follows the device clock: when a clock jump passes its end (or its start),
real clients, which judge by real time, are shown a certificate that is expired (or valid) as the
device's clock says. Agents that pin the first certificate (requests with urllib3's fingerprint check,
curl --pinnedpubkey) work until ``cert-regenerated`` presents a new leaf, then report 202003."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509
from requests.adapters import HTTPAdapter

import mockfgt
from mockfgt import Harness

from deadlines import seconds

STATUS = "/api/v2/monitor/system/status"


class Pinned(HTTPAdapter):
    """A pinning agent's transport: the peer's leaf must have this SHA-256 fingerprint (urllib3 checks it)."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_fingerprint"] = self.fingerprint
        return super().init_poolmanager(*args, **kwargs)


def pinned_status(device, fingerprint: str) -> int:
    with requests.Session() as agent:
        agent.mount("https://", Pinned(fingerprint))
        return agent.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                         verify=device.ca_bundle, timeout=seconds(5)).status_code


def status(device, *, verify=None) -> int:
    return requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {device.token}"},
                        verify=device.ca_bundle if verify is None else verify, timeout=seconds(5)).status_code


def presented(device) -> x509.Certificate:
    """The leaf the device presents, read without verifying it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((device.host, device.port), timeout=seconds(5)) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def certificate_events(device) -> list[dict]:
    return [e for e in device.journal.events() if e["event"] == "certificate"]


def scenario(tmp_path, text: str) -> str:
    path = tmp_path / "short-lived.toml"
    path.write_text(text)
    return str(path)


SHORT_LIVED = """
summary = "a healthy FortiGate whose certificate lasts 90 days (an ACME one)"
extends = "fgt-healthy"
expect = "ok"
[tls]
valid_days = 90
"""


# -- pinning -----------------------------------------------------------------------------------------
def test_a_pinning_agent_works_until_the_certificate_is_regenerated(make_fortigate, curl):
    fgt = make_fortigate("cert-regenerated")
    pin = fgt.pinned
    assert pin["sha256"] == fgt.certificate_fingerprint and pin["pin_sha256"] == fgt.certificate_pin
    assert pin["expect"] == "ok" == fgt.expect_pinned
    assert pinned_status(fgt, pin["sha256"]) == 200

    def curl_pinned() -> subprocess.CompletedProcess:
        return subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", fgt.ca_bundle,
                               "--pinnedpubkey", pin["pin_sha256"], "-H", f"Authorization: Bearer {fgt.token}",
                               fgt.url + STATUS], capture_output=True, text=True, timeout=seconds(30))

    first = curl_pinned()
    assert first.returncode == 0 and first.stdout == "200", first.stderr

    fgt.clock.advance(hours=1)  # the regeneration
    assert fgt.phase["name"] == "regenerated" and fgt.certificate_fingerprint != pin["sha256"]
    assert fgt.pinned["sha256"] == pin["sha256"] and fgt.pinned["expect"] == "202003" == fgt.expect_pinned
    with pytest.raises(requests.exceptions.SSLError) as refused:
        pinned_status(fgt, pin["sha256"])
    assert mockfgt.classify(refused.value) == "202003" == fgt.expect_pinned
    after = curl_pinned()
    assert after.returncode == 90, (after.returncode, after.stderr)  # CURLE_SSL_PINNEDPUBKEYNOTMATCH
    assert status(fgt) == 200 and fgt.expect == "ok"  # an agent that trusts the CA does not notice


def test_the_manifest_and_scenarios_json_offer_the_pin(mockfgt_ca, tmp_path):
    manifest = tmp_path / "mockfgt.json"
    with Harness(ca=mockfgt_ca) as h:
        device = h.add("cert-regenerated")
        h.start(manifest=manifest)
        [entry] = json.loads(manifest.read_text())["devices"]
        assert entry["pinning"] == {"sha256": device.certificate_fingerprint, "pin_sha256": device.certificate_pin,
                                    "expect": "ok"}
        assert [p["expect_pinned"] for p in entry["phases"]] == ["ok", "202003"]
        device.clock.advance(hours=1)
        [entry] = json.loads(manifest.read_text())["devices"]
        assert entry["phase"] == "regenerated" and entry["expect"] == "ok"
        assert entry["pinning"]["expect"] == "202003" and entry["pinning"]["sha256"] != device.certificate_fingerprint


# -- validity on the clock ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # Insecure on purpose, once
def test_a_certificate_runs_out_on_the_device_clock(make_fortigate, tmp_path):
    fgt = make_fortigate(scenario(tmp_path, SHORT_LIVED))
    assert status(fgt) == 200
    minted = fgt.certificate_fingerprint
    fgt.clock.advance(days=60)  # still valid on the device clock: nothing re-minted
    assert status(fgt) == 200 and fgt.certificate_fingerprint == minted and not certificate_events(fgt)
    fgt.clock.advance(days=31)  # past its end
    with pytest.raises(requests.exceptions.SSLError, match="expired"):
        status(fgt)
    assert status(fgt, verify=False) == 200  # Insecure does not look
    assert presented(fgt).not_valid_after_utc < datetime.now(UTC)  # expired for any real client
    [event] = certificate_events(fgt)
    assert event["validity"] == "expired" and event["fingerprint"] == fgt.certificate_fingerprint
    fgt.clock.advance(days=30)  # expired it stays: no other certificate
    assert len(certificate_events(fgt)) == 1
    fgt.reset()  # the scenario again, at the device's time: a certificate minted to match
    assert status(fgt) == 200


def test_a_not_yet_valid_certificate_becomes_valid_as_the_clock_reaches_it(make_fortigate):
    fgt = make_fortigate("not-yet-valid-cert")
    with pytest.raises(requests.exceptions.SSLError, match="not yet valid"):
        status(fgt)
    fgt.clock.advance(days=2)
    assert status(fgt) == 200
    assert [e["validity"] for e in certificate_events(fgt)] == ["valid"]


def test_a_device_whose_clock_is_ahead_mints_to_match(make_fortigate, tmp_path):
    fgt = make_fortigate(scenario(tmp_path, SHORT_LIVED))
    fgt.clock.advance(days=400)  # its certificate ran out long ago
    with pytest.raises(requests.exceptions.SSLError):
        status(fgt)
    fgt.use("expired-cert")  # minted at device time: expired 30 days before the device's now
    leaf = presented(fgt)
    assert leaf.not_valid_after_utc < datetime.now(UTC)
    fgt.use(scenario(tmp_path, SHORT_LIVED))  # valid from the device's now: valid for real clients too
    assert status(fgt) == 200
    assert presented(fgt).not_valid_before_utc < datetime.now(UTC) < presented(fgt).not_valid_after_utc


def test_scenarios_show_and_json_say_what_a_pinning_agent_reports():
    mockfgt_bin = str(Path(sys.executable).parent / "mockfgt")
    shown = subprocess.run([mockfgt_bin, "scenarios", "show", "cert-regenerated"], capture_output=True, text=True,
                           timeout=seconds(30))
    assert shown.returncode == 0 and "regenerated, after 3600 s on the device clock: expect ok, pinned 202003" in shown.stdout
    listed = subprocess.run([mockfgt_bin, "scenarios", "--json"], capture_output=True, text=True, timeout=seconds(30))
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert [p["expect_pinned"] for p in rows["cert-regenerated"]["phases"]] == ["ok", "202003"]
