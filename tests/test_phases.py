"""Phased scenarios and the harness clock, over the wire: triggers, the journal, the control API and
`mockfgt ctl`, validation errors, and every phased catalogue row walked phase by phase by one agent."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import mockfgt
from mockfgt import Harness, codes
from mockfgt.clock import Clock
from mockfgt.phases import listing
from mockfgt.probe import probe
from mockfgt.scenario import ScenarioError, catalogue, load

from deadlines import seconds
from fortios_client import RequestsApi

STATUS = "/api/v2/monitor/system/status"
BIN = Path(sys.executable).parent


def status(device, token=None) -> int:
    answer = requests.get(device.url + STATUS, headers={"Authorization": f"Bearer {token or device.token}"},
                          verify=device.ca_bundle, timeout=seconds(5))
    return answer.status_code


def write(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def phase_events(device) -> list[dict]:
    return [e for e in device.journal.events() if e["event"] == "phase"]


# -- the clock ---------------------------------------------------------------------------------------
def test_clock_moves_forward_only_and_tells_subscribers():
    clock, heard = Clock(), []
    clock.subscribe(lambda: heard.append(clock.offset))
    before = clock.time()
    assert clock.advance(hours=2, minutes=1, seconds=5) == 7265.0
    assert clock.time() - before >= 7265.0 and heard == [7265.0]
    with pytest.raises(ValueError, match="forward only"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward only"):
        clock.advance(float("nan"))
    assert clock.offset == 7265.0


def test_a_moved_clock_idles_out_a_fortimanager_session(make_fortimanager):
    fmg = make_fortimanager("fmg-healthy")
    fmg.apply({"op": "set-idle-timeout", "seconds": 300})
    fmg.apply({"op": "login", "user": "admin"})  # an admin's JSON-RPC session, as after exec /sys/login/user
    session = fmg.state.logins.newest("admin")
    call = {"id": 2, "method": "get", "session": session, "params": [{"url": "/sys/status"}]}

    def code():
        return requests.post(fmg.url + "/jsonrpc", json=call, verify=fmg.ca_bundle,
                             timeout=seconds(5)).json()["result"][0]["status"]["code"]

    assert code() == 0
    fmg.clock.advance(seconds=301)  # idle longer than the timeout, without waiting
    assert code() == -11


def test_a_moved_clock_idles_out_a_fortios_admin_session(make_fortigate):
    fgt = make_fortigate("session-expired")  # no phases: only the idle timeout (5 min) can end the session
    client = fgt.client
    login = requests.post(fgt.url + "/api/v2/authentication", verify=fgt.ca_bundle, timeout=seconds(5),
                          json={"username": client.user, "secretkey": client.password, "request_key": True}).json()
    key = login["session_key"]
    assert status(fgt, key) == 200
    fgt.clock.advance(seconds=299)  # each call renews the idle time: just under it, still alive
    assert status(fgt, key) == 200
    fgt.clock.advance(seconds=301)
    assert status(fgt, key) == 401


def test_fortimanager_lock_time_stamps_read_the_device_clock(make_fortimanager):
    fmg = make_fortimanager("fmg-healthy")
    fmg.apply({"op": "set-workspace-mode", "mode": "normal"})
    fmg.clock.advance(days=365)
    fmg.apply({"op": "lock-adom", "user": "admin", "adom": "root"})
    since = fmg.state.workspace.adoms["root"].lock.since
    assert since >= fmg.clock.time() - 60 > time.time() + 364 * 86400


def test_a_lockout_runs_out_on_the_device_clock(make_fortigate):
    fgt = make_fortigate("auth-lockout")
    assert status(fgt) == 429  # the right key, locked out
    fgt.clock.advance(minutes=10)
    assert status(fgt) == 200


# -- triggers ----------------------------------------------------------------------------------------
def test_after_requests_the_next_request_is_answered_in_the_new_phase(make_fortigate, tmp_path):
    path = write(tmp_path, "three-then-401", """
summary = "three answers, then the key is regenerated"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "regenerated"
after_requests = 3
expect = 202001
setup = [{ op = "regenerate-key", user = "agent" }]
client = { token = "stale" }
""")
    fgt = make_fortigate(str(path))
    token = fgt.client.token
    assert [status(fgt, token) for _ in range(4)] == [200, 200, 200, 401]
    assert fgt.phase["name"] == "regenerated" and fgt.expect == "202001"
    assert fgt.client.token == token  # the agent still holds the key it had
    [event] = phase_events(fgt)
    assert event["phase"] == "regenerated" and event["cause"] == "requests" and event["index"] == 1


def test_after_connections_the_next_connection_gets_the_new_fault(make_fortigate, tmp_path):
    path = write(tmp_path, "two-then-reset", """
summary = "two connections, then resets"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "resetting"
after_connections = 2
expect = 202000
setup = [{ op = "set-connection", fault = "reset" }]
""")
    fgt = make_fortigate(str(path))
    assert status(fgt) == 200 and status(fgt) == 200  # requests opens a new connection per session
    with pytest.raises(requests.ConnectionError):
        status(fgt)
    assert fgt.phase["name"] == "resetting"
    assert phase_events(fgt)[0]["cause"] == "connections"


def test_after_seconds_on_the_clock_even_with_the_port_closed(make_fortigate):
    fgt = make_fortigate("device-reboot")
    assert status(fgt) == 200
    fgt.clock.advance(minutes=10)
    assert fgt.phase["name"] == "rebooting" and fgt.expect == "202000"
    with pytest.raises(requests.ConnectionError):
        status(fgt)
    fgt.clock.advance(minutes=2)  # no request reaches a refusing port: the clock itself moves it on
    assert fgt.phase["name"] == "up"
    assert status(fgt) == 200
    assert [(e["phase"], e["cause"]) for e in phase_events(fgt)] == [("rebooting", "clock"), ("up", "clock")]


def test_a_phase_without_a_trigger_starts_only_when_told(make_fortigate, tmp_path):
    path = write(tmp_path, "told", """
summary = "read-only once told"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "read-only"
expect = 202002
setup = [{ op = "set-access", profile = "agent_rw", group = "fwgrp", access = "read" }]
""")
    fgt = make_fortigate(str(path))
    fgt.clock.advance(days=30)
    assert [status(fgt) for _ in range(5)] == [200] * 5 and fgt.phase["name"] == "start"
    assert fgt.advance()["name"] == "read-only"
    assert probe(fgt.client, kind="fortigate").code == "202002" == fgt.expect
    with pytest.raises(ValueError, match="last phase"):
        fgt.advance()
    fgt.reset()
    assert fgt.phase["name"] == "start" and fgt.expect == "ok"


def test_a_reissued_certificate_is_new_and_trusted_by_the_ca(make_fortigate):
    fgt = make_fortigate("cert-regenerated")

    def leaf() -> bytes:
        ctx = ssl.create_default_context(cafile=fgt.ca_bundle)
        with socket.create_connection((fgt.host, fgt.port), timeout=seconds(5)) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)

    first = leaf()
    fgt.clock.advance(hours=1)
    assert fgt.phase["name"] == "regenerated"
    assert leaf() != first  # verified against the same CA, a different certificate
    assert status(fgt) == 200


def test_a_kept_connection_silenced_by_a_failover_times_out_and_that_is_acceptable(make_fortigate):
    """ha-failover's failover phase: a new connection is reset (202000), a call on a connection kept
    from before is never answered (202004, the phase's also_acceptable); the device accepts either."""
    fgt = make_fortigate("ha-failover")
    kept = RequestsApi(fgt)
    assert kept.get("monitor/system/status").status_code == 200  # its connection stays in the session's pool
    fgt.clock.advance(seconds=600)
    assert fgt.phase["name"] == "failover"
    with pytest.raises(requests.exceptions.ReadTimeout):
        kept.session.get(kept.base + "monitor/system/status", timeout=1)  # 1 s: the device is silent on purpose
    with pytest.raises(requests.exceptions.ConnectionError):
        RequestsApi(fgt).get("monitor/system/status")
    kept.session.close()
    assert fgt.accepts("202000") and fgt.accepts("202004") and not fgt.accepts("202001")
    fgt.check("202004")


def test_a_rebooting_device_ends_the_connections_clients_kept(make_fortigate):
    """device-reboot: while the device is down nothing answers, not even on a connection a client
    kept alive from before (it is closed as the device goes down); after the boot it answers again."""
    fgt = make_fortigate("device-reboot")
    kept = RequestsApi(fgt)
    assert kept.get("monitor/system/status").status_code == 200
    fgt.clock.advance(seconds=600)
    assert fgt.phase["name"] == "rebooting"
    with pytest.raises(requests.exceptions.ConnectionError):
        kept.get("monitor/system/status")
    fgt.clock.advance(seconds=120)
    assert kept.get("monitor/system/status").status_code == 200
    kept.session.close()


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # Insecure on purpose, once
def test_a_phase_uses_another_scenarios_fault_and_keeps_the_keys(make_fortigate, tmp_path):
    """``use = "expired-cert"``: that scenario's [tls] on this device, its expectations the phase's;
    the API key is the same one, so an agent with verification off still gets 200."""
    path = write(tmp_path, "cert-dies", """
summary = "the certificate expires after 2 requests, then the key is regenerated"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "expired"
after_requests = 2
use = "expired-cert"
[[phases]]
name = "renewed-and-rotated"
use = "token-regenerated"
setup = [{ op = "set-tls", certificate = "valid" }]
""")
    fgt = make_fortigate(str(path))
    assert [(p["name"], p["expect"], p["expect_insecure"]) for p in fgt.phases[1:]] == [
        ("expired", "202003", "ok"), ("renewed-and-rotated", "202001", "202001")]
    token = fgt.token
    # The third request moves the device on, over a connection made before: the fourth meets the certificate.
    assert [status(fgt) for _ in range(3)] == [200, 200, 200]
    with pytest.raises(requests.exceptions.SSLError, match="expired"):
        status(fgt)
    insecure = requests.get(fgt.url + "/api/v2/monitor/system/status", headers={"Authorization": f"Bearer {token}"},
                            verify=False, timeout=seconds(5))
    assert insecure.status_code == 200 and fgt.phase["name"] == "expired"
    fgt.advance()
    assert status(fgt, token) == 401 and fgt.token != token  # the regenerated key; the agent holds the old
    assert fgt.client.token == token and fgt.check("202001") is None


@pytest.mark.parametrize(("use", "words"), [
    ("expired-certs", "no scenario named 'expired-certs'"),
    ("read-only-profile", "its fault in [device]"),
    ("device-reboot", "its fault in [phases]"),
    ("fmg-invalid-token", "is a fortimanager scenario; this device is a fortigate"),
    ("../etc/passwd", "not a scenario name"),
])
def test_a_phase_that_uses_what_it_cannot_names_the_key(tmp_path, use, words):
    path = write(tmp_path, "bad-use", f'summary = "s"\nexpect = "ok"\n[[phases]]\nname = "x"\nuse = "{use}"\n')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert caught.value.source == str(path) and caught.value.key == "phases[0].use"
    assert words in caught.value.message


def test_a_new_certificate_ends_the_connections_clients_kept(make_fortigate):
    """cert-expires-mid-run: a client that kept its connection from before meets the expired
    certificate on its next call, as a device restarting its HTTPS daemon for the new one ends it."""
    fgt = make_fortigate("cert-expires-mid-run")
    kept = RequestsApi(fgt)
    assert kept.get("monitor/system/status").status_code == 200
    fgt.advance()
    deadline = time.monotonic() + seconds(5)
    while fgt.connections and time.monotonic() < deadline:  # ended once its keep-alive linger is over
        time.sleep(0.01)
    assert fgt.connections == 0
    with pytest.raises(requests.exceptions.SSLError, match="expired"):
        kept.get("monitor/system/status")  # the pool finds its connection closed and makes a new one
    kept.session.close()


# -- validation --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "key", "words"), [
    ('[[phases]]\nname = "x"\nexpect = "ok"\nafter_requests = 2\nafter_seconds = 5\n', "phases[0].after_seconds",
     "one trigger"),
    ('[[phases]]\nname = "x"\nexpect = "ok"\nafter_requests = 0\n', "phases[0].after_requests", "out of range"),
    ('[[phases]]\nname = "x"\nexpect = "maybe"\n', "phases[0].expect", "allowed: ok"),
    ('[[phases]]\nname = "x"\n', "phases[0].expect", "is required"),
    ('[[phases]]\nname = "start"\nexpect = "ok"\n', "phases[0].name", "top level"),
    ('[[phases]]\nname = "x"\nexpect = "ok"\n[[phases]]\nname = "x"\nexpect = "ok"\n', "phases[1].name", "unique"),
    ('[[phases]]\nname = "x"\nexpect = "ok"\nafter_tea = 1\n', "phases[0].after_tea", "allowed here"),
    ('[[phases]]\nname = "x"\nexpect = "ok"\nsetup = [{ op = "regenerate-key", user = "nobody" }]\n',
     "phases[0].setup[0].user", "nobody"),
    ('[[phases]]\nname = "x"\nexpect = 202000\nalso_acceptable = 202004\n', "phases[0].also_acceptable_reason",
     "is required"),
    ('[[phases]]\nname = "x"\nexpect = 202000\nalso_acceptable_reason = "why"\n', "phases[0].also_acceptable_reason",
     "add also_acceptable"),
    ('[[phases]]\nname = "x"\nexpect = 202000\nalso_acceptable = 202000\nalso_acceptable_reason = "why"\n',
     "phases[0].also_acceptable", "allowed: ok"),
])
def test_phase_errors_name_file_key_and_what_is_allowed(tmp_path, body, key, words):
    path = write(tmp_path, "bad", f'summary = "s"\nexpect = "ok"\n{body}')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert caught.value.source == str(path) and caught.value.key == key
    assert words in caught.value.message


# -- the control API, ctl, the manifest, the CLI ----------------------------------------------------
def test_control_api_and_ctl_advance_and_move_the_clock(mockfgt_ca, tmp_path):
    with Harness(ca=mockfgt_ca) as h:
        h.add("session-expires-mid-run")
        h.add("token-regenerated-mid-run")
        h.start(manifest=tmp_path / "mockfgt.json")
        auth = {"Authorization": f"Bearer {h.control_token}"}
        entry = json.loads((tmp_path / "mockfgt.json").read_text())["devices"]
        listed = {d["name"]: d for d in entry} if isinstance(entry, list) else entry
        first = listed["session-expires-mid-run"]
        assert first["phase"] == "start" and [p["name"] for p in first["phases"]] == ["start", "idled-out"]
        moved = requests.post(h.control_url + "/devices/session-expires-mid-run/clock", json={"advance": 301},
                              headers=auth, timeout=seconds(5))
        assert moved.status_code == 200, moved.text
        assert moved.json()["phase"] == "idled-out" and moved.json()["expect"] == "202001"
        assert moved.json()["clock"]["offset"] == 301
        back = requests.post(h.control_url + "/devices/session-expires-mid-run/clock", json={"advance": -5},
                             headers=auth, timeout=seconds(5))
        assert back.status_code == 400 and "forward only" in back.json()["error"]
        env = {"PATH": str(BIN), "MOCKFGT_MANIFEST": str(tmp_path / "mockfgt.json")}
        done = subprocess.run([str(BIN / "mockfgt"), "ctl", "advance", "token-regenerated-mid-run"],
                              capture_output=True, text=True, env=env, timeout=seconds(30))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["phase"] == "regenerated"
        device = h.device("token-regenerated-mid-run")
        assert probe(device.client, kind="fortigate").code == "202001"
        again = subprocess.run([str(BIN / "mockfgt"), "ctl", "advance", "token-regenerated-mid-run"],
                               capture_output=True, text=True, env=env, timeout=seconds(30))
        assert again.returncode != 0 and "last phase" in again.stderr
        clock = subprocess.run([str(BIN / "mockfgt"), "ctl", "clock", "token-regenerated-mid-run", "60"],
                               capture_output=True, text=True, env=env, timeout=seconds(30))
        assert clock.returncode == 0 and json.loads(clock.stdout)["clock"]["offset"] == 60
        written = json.loads((tmp_path / "mockfgt.json").read_text())["devices"]
        listed = {d["name"]: d for d in written} if isinstance(written, list) else written
        assert listed["token-regenerated-mid-run"]["phase"] == "regenerated"


def test_scenarios_show_and_json_list_the_phases():
    shown = subprocess.run([str(BIN / "mockfgt"), "scenarios", "show", "device-reboot"], capture_output=True,
                           text=True, timeout=seconds(30))
    assert shown.returncode == 0 and "rebooting, after 600 s on the device clock: expect 202000" in shown.stdout
    listed = subprocess.run([str(BIN / "mockfgt"), "scenarios", "--json"], capture_output=True, text=True,
                            timeout=seconds(30))
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert [p["expect"] for p in rows["device-reboot"]["phases"]] == ["ok", "202000", "ok"]
    assert "phases" not in rows["fgt-healthy"]


# -- every phased catalogue row, phase by phase, with one reference agent ---------------------------
PHASED = [sc.name for sc in catalogue() if sc.phases]


def test_the_catalogue_has_phased_rows():
    assert {"token-regenerated-mid-run", "session-expires-mid-run", "device-reboot", "lockout-escalating",
            "cert-regenerated"} <= set(PHASED)


@pytest.mark.parametrize("name", PHASED)
def test_phased_row_codes_follow_the_phases(name, mockfgt_ca):
    with mockfgt.Device(name, ca=mockfgt_ca) as device:
        assert device.expect == device.scenario.expect  # the top level is the first phase
        seen, wanted = [], []
        for i, phase in enumerate(device.phases):
            assert device.phase["name"] == phase["name"]
            stalls = phase["expect"] == codes.TIMEOUT  # 1 s only where the device stalls on purpose
            seen.append(probe(device.client, kind=device.scenario.kind, timeout=1.0 if stalls else seconds(10)).code)
            wanted.append(phase["expect"])
            if i + 1 < len(device.phases):
                device.advance()
        assert seen == wanted
        assert [e["phase"] for e in phase_events(device)] == [p["name"] for p in device.phases[1:]]
        device.remedy()
        if wanted[-1] != "ok" or wanted[0] != "ok":
            assert probe(device.client, kind=device.scenario.kind).code == "ok"  # the remedy clears the fault


def test_the_documented_worked_example_runs(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()
    scenario = text.split("```toml\n", 1)[1].split("```", 1)[0]
    loaded = load(str(write(tmp_path, "documented-reboot", scenario)))
    assert [p["expect"] for p in listing(loaded)] == ["ok", "202000", "ok"]
    example = text.split("```python\n", 2)[2].split("```", 1)[0]  # the second block: the walk
    namespace: dict = {"mockfgt": mockfgt}
    exec(compile(example, "docs/scenarios.md", "exec"), namespace)  # its asserts are the test
    assert "probe" in namespace


def test_the_manifest_follows_a_phase_the_device_moved_to_by_itself(mockfgt_ca, tmp_path):
    manifest = tmp_path / "mockfgt.json"
    with Harness(ca=mockfgt_ca) as h:
        device = h.add("token-regenerated-mid-run")
        idle = h.add("session-expires-mid-run")
        h.start(manifest=manifest)
        token = device.client.token
        answers = [status(device, token) for _ in range(11)]
        assert answers == [200] * 10 + [401]
        entry, _ = json.loads(manifest.read_text())["devices"]
        assert (entry["phase"], entry["expect"]) == ("regenerated", "202001")
        assert entry["client"]["token"] == token != entry["token"]  # the agent holds the old key
    assert not manifest.exists()
    idle.clock.advance(301)  # a phase change after the harness stopped writes no manifest again
    assert idle.phase["name"] == "idled-out" and not manifest.exists()


def test_the_connection_that_starts_a_refusing_phase_is_reset(make_fortigate, tmp_path):
    path = write(tmp_path, "one-then-down", """
summary = "one connection, then the port closes"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "down"
after_connections = 1
expect = 202000
setup = [{ op = "set-connection", fault = "refuse" }]
""")
    fgt = make_fortigate(str(path))
    assert status(fgt) == 200
    for _ in range(2):  # the one accepted as the port closed is reset, the next one refused
        with pytest.raises(requests.ConnectionError):
            status(fgt)
    assert fgt.phase["name"] == "down"
    assert any(e["event"] == "reset" for e in fgt.journal.events())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((fgt.host, fgt.port), timeout=seconds(5)).close()


def test_the_documented_use_example_loads_with_the_used_expectations(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()
    section = text.split("## Entering another scenario's fault", 1)[1]
    phases = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path, "documented-use", f'summary = "s"\nextends = "fgt-healthy"\nexpect = "ok"\n{phases}')
    assert [(p["expect"], p["expect_insecure"]) for p in listing(load(str(path)))] == [
        ("ok", "ok"), ("202003", "ok"), ("202001", "202001")]
