"""Recovery, not only detection: phased rows walked phase by phase with ONE agent instance.

The agent keeps what it keeps between polls (its session, cookies, connections), the device moves
on under it (by its clock where a phase has a duration), and every run is judged by the phase it ran
in, down to the return to ``ok`` when the fault clears (by itself, or by the remedy). Real sockets,
real TLS, real clients: the reference agent (urllib), requests and curl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import mockfgt
from mockfgt import codes, conformance
from mockfgt.fortios.client import authentication_body, session_key_from
from mockfgt.probe import ReferenceAgent
from mockfgt.walk import REMEDY

from deadlines import seconds

pytest_plugins = ["pytester"]

PHASED = [sc.name for sc in mockfgt.catalogue() if sc.phases]
STATUS = "/api/v2/monitor/system/status"


def walk_with_reference_agent(device) -> list[tuple[str, str]]:
    """Walk ``device`` with one reference agent; every step checked; (step, code) in order."""
    seen = []
    with ReferenceAgent(device.client, timeout=seconds(10)) as agent:
        for step in device.walk_phases():
            if step.reconfigure:
                agent.reconfigure(step.reconfigure)
            # 1 s only where the device stalls on purpose (a timeout is what the phase expects)
            agent.timeout = 1.0 if codes.TIMEOUT in step.acceptable() else seconds(10)
            code = agent.run().code
            step.check(code)
            seen.append((step.name, code))
    return seen


# -- every phased row of the catalogue, through the pytest fixture -----------------------------------
@pytest.mark.mockfgt_catalogue(phased=True)
def test_the_reference_agent_follows_every_phased_row_and_recovers(catalogue_device):
    seen = walk_with_reference_agent(catalogue_device)
    names = [name for name, _ in seen]
    phases = [p["name"] for p in catalogue_device.phases]
    assert [n for n in names if n != REMEDY] == phases  # no trigger fired mid-run: one step per phase
    assert seen[-1][1] == mockfgt.OK  # it ends recovered: by itself, or after the remedy
    assert (names[-1] == REMEDY) == (catalogue_device.phases[-1]["expect"] != mockfgt.OK)


def test_the_phased_marker_selects_exactly_the_phased_rows(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.mockfgt_catalogue(phased=True)
        def test_walk(catalogue_device):
            assert catalogue_device.scenario.phases

        @pytest.mark.mockfgt_catalogue(phased=False, kind="fortigate", expect=["202003"])
        def test_steady(catalogue_device):
            assert not catalogue_device.scenario.phases
    """)
    result = pytester.runpytest("-q", "--collect-only")
    walked = [line for line in result.outlines if "test_walk[" in line]
    assert sorted(line.split("[", 1)[1].rstrip("]") for line in walked) == sorted(PHASED)
    assert any("test_steady[expired-cert]" in line for line in result.outlines)


# -- the kept session really is the agent's own ------------------------------------------------------
def test_the_reference_agent_reuses_its_session_meets_it_dead_and_logs_in_again(make_fortigate):
    fgt = make_fortigate("session-expires-mid-run")
    with ReferenceAgent(fgt.client, timeout=seconds(10)) as agent:
        logins = []
        steps = []
        for step in fgt.walk_phases():
            if step.reconfigure:
                agent.reconfigure(step.reconfigure)
            fgt.journal.clear()
            code = agent.run().code
            step.check(code)
            steps.append((step.name, code))
            logins.append(len([r for r in fgt.requests if r["path"] == "/api/v2/authentication"
                               and r["method"] == "POST"]))
    assert steps == [("start", "ok"), ("idled-out", "202001"), (REMEDY, "ok")]
    # It logged in once at the start, sent its kept (now dead) key in idled-out, and logged in again after.
    assert logins == [1, 0, 1]


def test_the_walk_moves_the_device_on_by_its_clock(make_fortigate):
    fgt = make_fortigate("device-reboot")
    offsets = []
    for step in fgt.walk_phases():
        offsets.append((step.name, fgt.clock.offset))
        step.check("202000" if step.name == "rebooting" else "ok")
    assert offsets == [("start", 0.0), ("rebooting", 600.0), ("up", 720.0)]


# -- an agent that does not recover fails the walk, and the failure names the phase ------------------
class StickyAgent:
    """A requests agent that logs in once and reuses its session key for ever: it never logs in again."""

    def __init__(self, client) -> None:
        self.client, self.key = client, None
        self.http = requests.Session()
        self.http.trust_env = False

    def run(self) -> str:
        try:
            if self.key is None:
                answer = self.http.post(f"{self.client.url}/api/v2/authentication", json=authentication_body(self.client),
                                        verify=self.client.verify, timeout=seconds(10))
                self.key = session_key_from(answer.text)
            answer = self.http.get(f"{self.client.url}{STATUS}", headers={"Authorization": f"Bearer {self.key}"},
                                   verify=self.client.verify, timeout=seconds(10))
        except requests.RequestException as exc:
            return mockfgt.classify(exc)
        return mockfgt.classify(answer)


def password_reboot(tmp_path: Path) -> Path:
    """device-reboot with an agent that logs in with a password: the reboot ends its session."""
    path = tmp_path / "reboot-password.toml"
    path.write_text('extends = "device-reboot"\nsummary = "device-reboot, the agent logs in with a password"\n'
                    '\n[client]\nauth = "password"\n')
    return path


def test_an_agent_that_reuses_a_dead_session_fails_the_walk_in_the_phase_it_should_recover(make_fortigate, tmp_path):
    fgt = make_fortigate(password_reboot(tmp_path))
    agent = StickyAgent(fgt.client)
    with pytest.raises(AssertionError) as failed:
        for step in fgt.walk_phases():
            step.check(agent.run())
    text = str(failed.value)
    assert text.startswith(f"{fgt.name} in phase 'up' (3 of 3: booted again"), text
    assert "expected ok, the agent reported 202001 (authentication failed)" in text
    assert "the walk so far: start (ok) -> rebooting (202000) -> up (ok)" in text
    assert "does not recover" in text
    assert "the device saw in this phase:" in text
    assert "phase 'up' began" in text and f"GET {STATUS} -> 401" in text


def test_the_reference_agent_recovers_where_the_sticky_one_does_not(make_fortigate, tmp_path):
    fgt = make_fortigate(password_reboot(tmp_path))
    assert walk_with_reference_agent(fgt) == [("start", "ok"), ("rebooting", "202000"), ("up", "ok")]


def test_an_agent_that_never_takes_the_remedy_fails_after_it(make_fortigate):
    fgt = make_fortigate("token-regenerated-mid-run")
    client = fgt.client  # the agent keeps the key it started with, whatever the operator does

    def run() -> str:
        answer = requests.get(f"{client.url}{STATUS}", timeout=seconds(10), **client.request_kwargs())
        return mockfgt.classify(answer)

    steps = fgt.walk_phases()
    next(steps).check(run())
    next(steps).check(run())
    remedy = next(steps)
    assert remedy.name == REMEDY and remedy.reconfigure is not None and remedy.reconfigure.token != client.token
    with pytest.raises(AssertionError, match=r"after the remedy: expected ok, the agent reported 202001"):
        remedy.check(run())
    remedy.check(mockfgt.classify(requests.get(f"{client.url}{STATUS}", timeout=seconds(10),
                                               **remedy.reconfigure.request_kwargs())))


# -- a trigger that fires during a run -------------------------------------------------------------------
def mid_run_rotation(tmp_path: Path) -> Path:
    path = tmp_path / "rotated-on-the-second-request.toml"
    path.write_text('extends = "fgt-healthy"\nsummary = "the key is regenerated after two requests"\n'
                    'expect = "ok"\n\n[[phases]]\nname = "regenerated"\nafter_requests = 2\nexpect = 202001\n'
                    'setup = [{ op = "regenerate-key", user = "agent" }]\nclient = { token = "stale" }\n\n'
                    '[remedy]\nsummary = "Give the agent the new key."\nclient = { token = "current" }\n')
    return path


def test_a_run_during_which_the_device_moved_on_is_judged_by_either_phase(make_fortigate, tmp_path):
    fgt = make_fortigate(mid_run_rotation(tmp_path))
    seen = []
    with ReferenceAgent(fgt.client, timeout=seconds(10)) as agent:
        for step in fgt.walk_phases():
            if step.reconfigure:
                agent.reconfigure(step.reconfigure)
            code = agent.run().code
            step.check(code)
            seen.append((step.name, code, step.entered, step.acceptable()))
    # The first run's third request met the new phase: its 202001 is right, and the walk says why.
    assert seen == [("start", "202001", ["regenerated"], ["ok", "202001"]),
                    ("regenerated", "202001", [], ["202001"]),
                    (REMEDY, "ok", [], ["ok"])]


def test_check_judges_a_mid_run_trigger_as_the_walk_does(tmp_path):
    """The language-agnostic runner, same scenario: an agent command that makes four requests."""
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import json, ssl, sys, urllib.request, urllib.error\n"
        "s = json.load(open(sys.argv[1]))\n"
        "ctx = ssl.create_default_context(cafile=s['ca'])\n"
        "code = 'ok'\n"
        "for _ in range(4):\n"
        "    r = urllib.request.Request(s['url'] + '/api/v2/monitor/system/status',\n"
        "                               headers={'Authorization': 'Bearer ' + s['token']})\n"
        "    try:\n"
        "        urllib.request.urlopen(r, context=ctx, timeout=s['timeout']).read()\n"
        "    except urllib.error.HTTPError as e:\n"
        "        code = '202001' if e.code == 401 else 'unexpected'\n"
        "        break\n"
        "print(code)\n")
    scenario = mid_run_rotation(tmp_path)
    env = {**os.environ, "MOCKFGT_SCENARIOS": str(tmp_path)}  # check runs catalogue names: this folder is one
    done = subprocess.run([sys.executable, "-m", "mockfgt", "check", "--scenario", scenario.stem, "--json",
                           "--", sys.executable, str(agent), "{settings}"],
                          capture_output=True, text=True, timeout=seconds(120), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [(r["phase"], r["reported"], r["verdict"]) for r in runs] == [
        ("start", "202001", "pass"), ("regenerated", "202001", "pass")]
    table = subprocess.run([sys.executable, "-m", "mockfgt", "check", "--scenario", scenario.stem,
                            "--", sys.executable, str(agent), "{settings}"],
                           capture_output=True, text=True, timeout=seconds(120), env=env)
    assert table.returncode == 0, table.stdout + table.stderr
    assert ("rotated-on-the-second-request (phase start): the device moved on to regenerated during the run"
            in table.stdout), table.stdout


# -- the conformance matrix: one client object per phased cell -------------------------------------
def test_a_phased_matrix_row_shows_every_step_and_passes_only_when_all_do():
    scenario = mockfgt.load_scenario("session-expires-mid-run")
    row = next(r for r in conformance.rows([scenario]) if r.mode == "verify")
    assert row.expect == "ok → 202001 → remedy: ok"
    assert row.steps == ("ok", "202001", "ok") and row.step_names == ("start", "idled-out", "remedy")
    cells = conformance.run([scenario], ("requests", "curl"), workers=2)
    assert {(c.row.mode, c.client): c.observed for c in cells} == {
        (mode, client): "ok → 202001 → remedy: ok" for mode in ("verify", "insecure") for client in ("requests", "curl")}
    assert all(c.passed for c in cells)
    one_wrong = conformance.Cell(row, "requests", "ok → 202001 → remedy: 202001", "", steps_passed=False)
    assert not one_wrong.passed


def test_the_reference_agent_logs_in_again_to_a_fortimanager_whose_session_idled_out(make_fortimanager, tmp_path):
    """JSON-RPC: the kept session id gets -11 once it idled out (202001); the next poll logs in anew."""
    path = tmp_path / "fmg-idle.toml"
    path.write_text('extends = "fmg-healthy"\nsummary = "a password agent polling a FortiManager"\n'
                    '\n[client]\nuser = "admin"\nauth = "password"\npassword = "current"\n\n'
                    '[[phases]]\nname = "idled-out"\nafter_seconds = 3600\nexpect = 202001\n'
                    'setup = [{ op = "expire-sessions" }]\n\n'
                    '[[phases]]\nname = "next-poll"\nafter_seconds = 300\nexpect = "ok"\n')
    fmg = make_fortimanager(path)
    seen = walk_with_reference_agent(fmg)
    assert seen == [("start", "ok"), ("idled-out", "202001"), ("next-poll", "ok")]
    logins = [r for r in fmg.requests if "/sys/login/user" in str(r.get("body") or "")]
    assert len(logins) == 2  # one at the start, one after the session idled out: none in between
