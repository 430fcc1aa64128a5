"""The fixtures under pytest-xdist, as a user's suite runs them: ``pytest -n 2`` in a subprocess.

Each worker must get its own devices on free ports, and all workers of the run one harness CA,
made once (under the certs folder's lock) and trusted by every worker's clients.
"""

from __future__ import annotations

import json
from pathlib import Path

from deadlines import seconds

pytest_plugins = ["pytester"]

USER_TESTS = '''
import json, os, ssl, urllib.request

import pytest


def _status(device):
    context = ssl.create_default_context(cafile=str(device.ca_bundle))
    ask = urllib.request.Request(device.url + "/api/v2/monitor/system/status",
                                 headers={"Authorization": f"Bearer {device.token}"})
    with urllib.request.urlopen(ask, context=context, timeout=TIMEOUT) as answer:
        return answer.status


def _report(name, device, mockfgt_ca):
    with open(os.path.join(REPORTS, name + ".json"), "w") as out:
        json.dump({"worker": os.environ.get("PYTEST_XDIST_WORKER"), "port": device.port,
                   "ca": str(mockfgt_ca.cert_path), "ca_pem": mockfgt_ca.cert_pem.decode()}, out)


@pytest.mark.parametrize("n", range(4))
def test_session_fortigate(fortigate, mockfgt_ca, n):
    assert _status(fortigate) == 200
    fortigate.apply({"op": "regenerate-key", "user": "agent"})  # the next test still gets a fresh device
    _report(f"session-{n}", fortigate, mockfgt_ca)


@pytest.mark.parametrize("n", range(4))
def test_made_fortigate(make_fortigate, mockfgt_ca, n):
    device = make_fortigate("fgt-healthy")
    assert _status(device) == 200
    _report(f"made-{n}", device, mockfgt_ca)
'''


def test_the_fixtures_work_under_xdist(pytester, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    pytester.makepyfile(test_user=f"REPORTS = {str(reports)!r}\nTIMEOUT = {seconds(10)!r}\n" + USER_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider",
                                           timeout=seconds(120))
    result.assert_outcomes(passed=8)
    seen = {p.stem: json.loads(p.read_text()) for p in reports.glob("*.json")}
    assert len(seen) == 8
    assert {s["worker"] for s in seen.values()} == {"gw0", "gw1"}  # both workers ran some
    # One harness CA for the whole run: one file, one certificate, whichever worker asked.
    assert len({s["ca"] for s in seen.values()}) == 1 and len({s["ca_pem"] for s in seen.values()}) == 1
    assert Path(next(iter(seen.values()))["ca"]).read_text() == next(iter(seen.values()))["ca_pem"]
    # Each worker its own session device, on a port of its own; every made device a port of its own.
    session = {}
    for name, s in seen.items():
        if name.startswith("session-"):
            session.setdefault(s["worker"], set()).add(s["port"])
    assert all(len(ports) == 1 for ports in session.values())
    assert len(set.union(*session.values())) == len(session)
    made = [s["port"] for name, s in seen.items() if name.startswith("made-")]
    assert not set(made) & set.union(*session.values())
