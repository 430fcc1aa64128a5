"""Failures that explain themselves: ``assert code == device.expect`` and ``device.check(code)``.

A deliberately wrong classification must fail with the scenario and its symptom, what the device
did (its journal), what a correct agent reports and the remedy, not a bare ``'202000' == '202003'``.
The pytest part runs a user's test file in a new pytest process, as users run it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import requests

from mockfgt import FortiGate

from deadlines import seconds
from run_cli import cli_env


def test_check_raises_an_explanation_naming_what_the_device_saw(tmp_path):
    with FortiGate("expired-cert", certs_dir=tmp_path) as device:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(device.url + "/api/v2/monitor/system/status", verify=device.ca_bundle, timeout=seconds(5))
        # The device journals the handshake on its own thread, which may finish after the client has its error.
        deadline = time.monotonic() + seconds(5)
        while not any(e["event"] == "tls-failed" for e in device.journal.events()) and time.monotonic() < deadline:
            time.sleep(0.01)
        device.check("202003")  # right: no error
        with pytest.raises(AssertionError) as failed:
            device.check("202000")
    text = str(failed.value)
    assert text.startswith(f"{device.name}: expected 202003 (TLS/SSL certificate error), "
                           "the agent reported 202000 (connection failure)")
    assert "why 202003: Certificate verify failed" in text
    assert "TLS handshake failed" in text and "the client sent alert" in text
    assert "remedy: Renew the device's HTTPS certificate." in text


def test_expect_still_compares_and_serialises_as_a_plain_code(tmp_path):
    import json

    with FortiGate("expired-cert", certs_dir=tmp_path) as device:
        assert device.expect == "202003" and device.expect_insecure == "ok"
        assert json.dumps({"expect": device.expect}) == '{"expect": "202003"}'
        device.check("ok", insecure=True)


USER_TESTS = '''
import pytest
import requests

pytestmark = pytest.mark.mockfgt_catalogue(names=["expired-cert", "fmg-healthy", "fgt-healthy"])


def test_wrong_classification(catalogue_device):
    try:
        requests.get(catalogue_device.url + "/api/v2/monitor/system/status",
                     verify=catalogue_device.ca_bundle, timeout=5)
        code = "ok"
    except requests.exceptions.SSLError:
        code = "202000"  # the bug: a certificate error reported as a connection failure
    assert code == catalogue_device.expect


def test_kind_and_name(catalogue_device):
    assert catalogue_device.name == catalogue_device.scenario.name
    assert catalogue_device.kind == catalogue_device.scenario.kind
'''


def test_pytest_shows_the_explanation_and_the_catalogue_device_is_named_for_its_scenario(tmp_path):
    (tmp_path / "test_agent.py").write_text(textwrap.dedent(USER_TESTS))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_agent.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=seconds(120), env=cli_env())
    out = done.stdout
    assert "1 failed, 5 passed" in out, out[-3000:]
    assert "test_wrong_classification[expired-cert]" in out
    assert "expired-cert: expected 202003 (TLS/SSL certificate error), the agent reported 202000" in out
    assert "the device saw:" in out and "TLS handshake failed" in out
    assert "remedy: Renew the device's HTTPS certificate." in out


def test_the_explanation_names_client_actions_and_certificates_the_clock_changed(tmp_path):
    """What the device saw includes a login it accepted and a certificate its clock ran past."""
    scenario = tmp_path / "short-lived.toml"
    scenario.write_text('extends = "fgt-healthy"\nsummary = "s"\nexpect = "ok"\n[tls]\nvalid_days = 1\n')
    with FortiGate(str(scenario), certs_dir=tmp_path / "certs") as device:
        login = requests.post(device.url + "/logincheck", data={"username": "netops", "secretkey": "Fortinet-Lab-2024!"},
                              verify=device.ca_bundle, timeout=seconds(5))
        assert login.text.startswith("1")
        device.clock.advance(days=2)
        with pytest.raises(AssertionError) as caught:
            device.check("202003")  # the scenario expects ok: a mismatch, explained
    text = str(caught.value)
    assert "the client's login succeeded" in text
    assert "now presents a certificate that is expired" in text
