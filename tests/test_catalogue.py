"""Every catalogue scenario, walked by a real client over real sockets.

For each scenario: the agent as configured gets ``expect``; the same agent with verification off
("Insecure") gets ``expect_insecure``; after the documented remedy it works (``ok``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
import requests
import urllib3

import mockfgt
from mockfgt.classify import classify_jsonrpc
from mockfgt.probe import first_call, probe

TIMEOUT = 1.0  # the timeout rows stall for a minute; a client that waits 1 s reports 202004
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "fault-catalogue.md"

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def fetch_status(client: mockfgt.ClientSettings) -> str:
    """What an agent using requests reports for its first call."""
    try:
        response = requests.get(f"{client.url}/api/v2/monitor/system/status", timeout=TIMEOUT,
                                **client.request_kwargs())
    except requests.RequestException as exc:
        return mockfgt.classify(exc)
    return mockfgt.classify(response)


def fetch_first_jsonrpc(client: mockfgt.ClientSettings) -> str:
    """What a FortiManager agent using requests reports for its first call (login or /sys/status)."""
    body = first_call(client)
    try:
        response = requests.post(f"{client.url}/jsonrpc", json=body, timeout=TIMEOUT, **client.request_kwargs())
    except requests.RequestException as exc:
        return mockfgt.classify(exc)
    assert response.status_code == 200, response.text  # FortiManager answers 200 whatever happened
    entry = response.json()["result"][0]
    return classify_jsonrpc(entry["status"]["code"], method=body["method"], url=entry["url"])


def outcome(device, client) -> str:
    """requests for the first call, then the reference agent for the rest of the flow."""
    kind = device.scenario.kind
    first = fetch_first_jsonrpc(client) if kind == "fortimanager" else fetch_status(client)
    if first != mockfgt.OK:
        return first
    return probe(client, kind=kind, timeout=TIMEOUT).code


def test_expected_code(catalogue_device):
    assert outcome(catalogue_device, catalogue_device.client) == catalogue_device.expect


def test_expected_code_when_insecure(catalogue_device):
    insecure = dataclasses.replace(catalogue_device.client, verify=False)
    assert outcome(catalogue_device, insecure) == catalogue_device.expect_insecure


def test_remedy_clears_the_fault(catalogue_device):
    fixed = catalogue_device.remedy()
    assert outcome(catalogue_device, fixed) == mockfgt.OK


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
