"""Phase triggers a client starts (``on = "login"`` ...) and schedules (``at``), over the wire: real
logins, logouts, locks and writes from requests, schedules reached by moving the device clock or by
real time; their validation errors, their journal entries and how `scenarios show` words them."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from mockfgt.phases import next_time, schedule
from mockfgt.scenario import ScenarioError, load

from deadlines import seconds

BIN = Path(sys.executable).parent
STATUS = "/api/v2/monitor/system/status"
ADDRESS = "/api/v2/cmdb/firewall/address"


def write(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def events(device, kind: str) -> list[dict]:
    return [e for e in device.journal.events() if e["event"] == kind]


def fgt_login(fgt, session: requests.Session) -> None:
    """A cookie login as the scenario's admin (/logincheck), as a browser-like agent does."""
    answer = session.post(fgt.url + "/logincheck", data={"username": fgt.client.user, "secretkey": fgt.client.password},
                          verify=fgt.ca_bundle, timeout=seconds(5))
    assert answer.status_code == 200 and answer.text.startswith("1"), answer.text


def rpc(fmg, method: str, url: str, *, data=None, session=None, token=None) -> tuple[int, dict]:
    """One JSON-RPC call; returns the item's status code and the whole answer."""
    body: dict = {"id": 1, "method": method, "params": [{"url": url, **({"data": data} if data is not None else {})}]}
    if session is not None:
        body["session"] = session
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.post(fmg.url + "/jsonrpc", json=body, headers=headers, verify=fmg.ca_bundle,
                           timeout=seconds(5)).json()
    return answer["result"][0]["status"]["code"], answer


# -- client actions on a FortiGate -----------------------------------------------------------------
def test_the_second_login_starts_the_phase(make_fortigate, tmp_path):
    path = write(tmp_path, "second-login", """
summary = "the second admin login makes the agent's profile read-only"
extends = "fgt-healthy"
expect = "ok"
[client]
auth = "password"
[[phases]]
name = "read-only"
on = "login"
on_count = 2
expect = 202002
setup = [{ op = "set-access", profile = "agent_rw", group = "fwgrp", access = "read" }]
""")
    fgt = make_fortigate(str(path))
    fgt_login(fgt, requests.Session())
    assert fgt.phase["name"] == "start"
    fgt_login(fgt, requests.Session())
    assert fgt.phase["name"] == "read-only" and fgt.expect == "202002"
    assert [e["action"] for e in events(fgt, "action")] == ["login", "login"]
    [phase] = events(fgt, "phase")
    assert phase["cause"] == "login" and phase["phase"] == "read-only"


def test_a_failed_login_is_no_login(make_fortigate, tmp_path):
    path = write(tmp_path, "on-login", """
summary = "after a login, the device reboots"
extends = "fgt-healthy"
expect = "ok"
[client]
auth = "password"
[[phases]]
name = "down"
on = "login"
expect = 202000
setup = [{ op = "set-connection", fault = "reset" }]
""")
    fgt = make_fortigate(str(path))
    answer = requests.post(fgt.url + "/logincheck", data={"username": fgt.client.user, "secretkey": "wrong"},
                           verify=fgt.ca_bundle, timeout=seconds(5))
    assert answer.status_code == 200 and answer.text.startswith("0")
    assert fgt.phase["name"] == "start" and not events(fgt, "action")
    fgt_login(fgt, requests.Session())  # answered in the phase it happened in, the next one resets
    with pytest.raises(requests.ConnectionError):
        requests.get(fgt.url + STATUS, verify=fgt.ca_bundle, timeout=seconds(5))


def test_a_logout_and_a_write_start_phases_on_a_fortigate(make_fortigate, tmp_path):
    path = write(tmp_path, "logout-then-write", """
summary = "a logout, then a write"
extends = "fgt-healthy"
expect = "ok"
[client]
auth = "password"
[[phases]]
name = "logged-out"
on = "logout"
expect = "ok"
[[phases]]
name = "written"
on = "write"
expect = 202001
setup = [{ op = "regenerate-key", user = "agent" }]
""")
    fgt = make_fortigate(str(path))
    browser = requests.Session()
    fgt_login(fgt, browser)
    auth = {"Authorization": f"Bearer {fgt.token}"}
    # A write before the logout is no step: the phase waiting is the logout's.
    made = requests.post(fgt.url + ADDRESS, json={"name": "h1", "subnet": "192.0.2.1 255.255.255.255"},
                         headers=auth, verify=fgt.ca_bundle, timeout=seconds(5))
    assert made.status_code == 200 and fgt.phase["name"] == "start"
    assert browser.get(fgt.url + "/logout", verify=fgt.ca_bundle, timeout=seconds(5)).status_code == 200
    assert fgt.phase["name"] == "logged-out"
    refused = requests.post(fgt.url + ADDRESS, json={"name": "h1"}, headers=auth, verify=fgt.ca_bundle,
                            timeout=seconds(5))  # exists already: a failed write starts nothing
    assert refused.status_code != 200 and fgt.phase["name"] == "logged-out"
    assert requests.delete(fgt.url + ADDRESS + "/h1", headers=auth, verify=fgt.ca_bundle,
                           timeout=seconds(5)).status_code == 200
    assert fgt.phase["name"] == "written"
    assert requests.get(fgt.url + STATUS, headers=auth, verify=fgt.ca_bundle, timeout=seconds(5)).status_code == 401
    assert [e["cause"] for e in events(fgt, "phase")] == ["logout", "write"]


# -- client actions on a FortiManager --------------------------------------------------------------
def test_fortimanager_login_lock_and_write_start_phases(make_fortimanager, tmp_path):
    path = write(tmp_path, "fmg-actions", """
summary = "a login, a workspace lock, then a write move the device on"
extends = "fmg-healthy"
expect = "ok"
setup = [{ op = "set-workspace-mode", mode = "normal" }]
[client]
auth = "password"
[[phases]]
name = "logged-in"
on = "login"
expect = "ok"
[[phases]]
name = "locked"
on = "lock"
expect = "ok"
[[phases]]
name = "written"
on = "write"
expect = 202000
setup = [{ op = "set-connection", fault = "reset" }]
""")
    fmg = make_fortimanager(str(path))
    code, answer = rpc(fmg, "exec", "/sys/login/user", data={"user": fmg.client.user, "passwd": fmg.client.password})
    assert code == 0 and fmg.phase["name"] == "logged-in"
    session = answer["session"]
    code, _ = rpc(fmg, "exec", "/dvmdb/adom/root/workspace/lock", session=session)
    assert code == 0 and fmg.phase["name"] == "locked"
    address = {"name": "h1", "type": "ipmask", "subnet": ["192.0.2.1", "255.255.255.255"]}
    code, _ = rpc(fmg, "add", "/pm/config/adom/root/obj/firewall/address", data=address, session=session)
    assert code == 0 and fmg.phase["name"] == "written"
    with pytest.raises(requests.ConnectionError):
        rpc(fmg, "get", "/sys/status", session=session)
    assert [e["action"] for e in events(fmg, "action")] == ["login", "lock", "write"]
    assert [e["cause"] for e in events(fmg, "phase")] == ["login", "lock", "write"]


def test_fortimanager_logout_counts_and_a_refused_login_does_not(make_fortimanager, tmp_path):
    path = write(tmp_path, "fmg-logout", """
summary = "after a logout the API key is regenerated"
extends = "fmg-healthy"
expect = "ok"
[client]
auth = "password"
[[phases]]
name = "after-logout"
on = "logout"
expect = "ok"
""")
    fmg = make_fortimanager(str(path))
    code, _ = rpc(fmg, "exec", "/sys/login/user", data={"user": fmg.client.user, "passwd": "wrong"})
    assert code != 0 and not events(fmg, "action")
    code, answer = rpc(fmg, "exec", "/sys/login/user", data={"user": fmg.client.user, "passwd": fmg.client.password})
    assert code == 0 and fmg.phase["name"] == "start"
    code, _ = rpc(fmg, "exec", "/sys/logout", session=answer["session"])
    assert code == 0 and fmg.phase["name"] == "after-logout"


def test_notice_by_hand_moves_the_device_and_refuses_other_actions(make_fortigate, tmp_path):
    path = write(tmp_path, "told-by-hand", """
summary = "a write, told by hand"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "written"
on = "write"
expect = "ok"
""")
    fgt = make_fortigate(str(path))
    with pytest.raises(ValueError, match="allowed: login, logout, lock, write"):
        fgt.notice("reboot")
    fgt.notice("write")  # a test may say an action happened that it made some other way
    assert fgt.phase["name"] == "written" and [e["action"] for e in events(fgt, "action")] == ["write"]


def test_a_phase_waiting_for_an_action_the_kind_never_reports_is_refused(tmp_path):
    """A FortiGate has no workspace to lock: a phase with on = "lock" would never start."""
    path = write(tmp_path, "never", 'summary = "s"\nextends = "fgt-healthy"\nexpect = "ok"\n'
                                   '[[phases]]\nname = "locked"\non = "lock"\nexpect = "ok"\n')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert caught.value.key == "phases[0].on" and "allowed: login, logout, write" in caught.value.message


# -- schedules ---------------------------------------------------------------------------------------
def test_schedule_parsing_and_the_next_time():
    assert schedule("09:30") == ("daily", 9 * 3600 + 30 * 60)
    assert schedule("2026-12-01T09:00:00Z") == ("once", datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp())
    assert schedule("2026-12-01T09:00:00") == schedule("2026-12-01T10:00:00+01:00")  # naive is UTC
    morning = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()
    assert next_time("09:30", morning) == morning + 5400  # later today
    assert next_time("07:00", morning) == morning + 23 * 3600  # tomorrow
    assert next_time("08:00", morning) == morning + 86400  # now is not 'next'
    for bad in ("24:00", "9:3", "noon", "2026-13-01"):
        with pytest.raises(ValueError):
            schedule(bad)


def test_a_clock_jump_over_the_time_of_day_starts_the_phase(make_fortigate, tmp_path):
    soon = datetime.now(UTC) + timedelta(hours=3)
    path = write(tmp_path, "nightly", f"""
summary = "a maintenance window at {soon:%H:%M} UTC: the port refuses"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "maintenance"
at = "{soon:%H:%M}"
expect = 202000
setup = [{{ op = "set-connection", fault = "refuse" }}]
""")
    fgt = make_fortigate(str(path))
    fgt.clock.advance(hours=2)  # short of it
    assert fgt.phase["name"] == "start"
    fgt.clock.advance(hours=1, minutes=1)  # over it
    assert fgt.phase["name"] == "maintenance"
    with pytest.raises(requests.ConnectionError):
        requests.get(fgt.url + STATUS, verify=fgt.ca_bundle, timeout=seconds(5))
    assert events(fgt, "phase")[0]["cause"] == "schedule"


def test_a_date_time_in_the_devices_future_and_one_reached_in_real_time(make_fortigate, tmp_path):
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    path = write(tmp_path, "dated", f"""
summary = "the key is regenerated on a date, then the port resets a moment later"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "regenerated"
at = "{later.isoformat()}"
expect = 202001
setup = [{{ op = "regenerate-key", user = "agent" }}]
client = {{ token = "stale" }}
""")
    fgt = make_fortigate(str(path))
    fgt.clock.advance(days=29)
    assert fgt.phase["name"] == "start"
    fgt.clock.advance(days=2)
    assert fgt.phase["name"] == "regenerated"
    # The same row, the date one second ahead of the device clock: real time reaches it, no request needed.
    moment = (fgt.clock.now() + timedelta(seconds=1)).isoformat()
    path.write_text(path.read_text().replace(later.isoformat(), moment))
    fgt.use(load(str(path)))
    deadline = time.monotonic() + seconds(10)
    while fgt.phase["name"] == "start" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fgt.phase["name"] == "regenerated"


# -- validation and display -------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "key", "words"), [
    ('on = "login"\nafter_requests = 2\n', "phases[0].on", "one trigger"),
    ('at = "09:00"\nafter_seconds = 5\n', "phases[0].at", "one trigger"),
    ('on = "reboot"\n', "phases[0].on", "allowed: login, logout, lock, write"),
    ('on_count = 2\n', "phases[0].on_count", "add on = one of login, logout, lock, write"),
    ('on = "login"\non_count = 0\n', "phases[0].on_count", "out of range"),
    ('at = "25:00"\n', "phases[0].at", "HH:MM"),
    ('at = 9\n', "phases[0].at", "expected a string"),
])
def test_trigger_errors_name_file_key_and_what_is_allowed(tmp_path, body, key, words):
    path = write(tmp_path, "bad", f'summary = "s"\nexpect = "ok"\n[[phases]]\nname = "x"\nexpect = "ok"\n{body}')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert caught.value.source == str(path) and caught.value.key == key
    assert words in caught.value.message


def test_scenarios_show_words_the_triggers(tmp_path):
    path = write(tmp_path, "worded", """
summary = "every trigger kind"
extends = "fgt-healthy"
expect = "ok"
[[phases]]
name = "third-login"
on = "login"
on_count = 3
expect = "ok"
[[phases]]
name = "written"
on = "write"
expect = "ok"
[[phases]]
name = "nightly"
at = "02:00"
expect = "ok"
[[phases]]
name = "dated"
at = "2027-01-01T00:00:00Z"
expect = "ok"
""")
    shown = subprocess.run([str(BIN / "mockfgt"), "scenarios", "show", str(path)], capture_output=True, text=True,
                           timeout=seconds(30))
    assert shown.returncode == 0, shown.stderr
    for line in ("third-login, on the 3rd login: expect ok", "written, on a write: expect ok",
                 "nightly, at 02:00 UTC, the next time on the device clock: expect ok",
                 "dated, at 2027-01-01T00:00:00Z on the device clock: expect ok"):
        assert line in shown.stdout
    checked = subprocess.run([str(BIN / "mockfgt"), "scenarios", "check", str(path)], capture_output=True,
                             text=True, timeout=seconds(30))
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- the documented examples ------------------------------------------------------------------------
def documented(name: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()
    section = text.split("## Triggers in examples", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```toml\n")[1:]]
    return {"write": blocks[0], "schedule": blocks[1]}[name]


def test_the_documented_write_example_runs(make_fortigate, tmp_path):
    fgt = make_fortigate(str(write(tmp_path, "first-write", documented("write"))))
    auth = {"Authorization": f"Bearer {fgt.token}"}

    def create(name: str) -> int:
        return requests.post(fgt.url + ADDRESS, json={"name": name, "subnet": "192.0.2.1 255.255.255.255"},
                             headers=auth, verify=fgt.ca_bundle, timeout=seconds(5)).status_code

    assert create("first") == 200 and fgt.phase["name"] == "read-only"
    assert create("second") == 403 and fgt.expect == "202002"


def test_the_documented_schedule_example_runs(make_fortigate, tmp_path):
    fgt = make_fortigate(str(write(tmp_path, "maintenance", documented("schedule"))))
    assert fgt.phase["trigger"] == "at start" and fgt.phases[1]["trigger"].startswith("at 02:00 UTC")
    until = next_time("02:00", fgt.clock.time()) - fgt.clock.time()
    fgt.clock.advance(seconds=max(0.0, until - 60))
    assert fgt.phase["name"] == "start"
    fgt.clock.advance(seconds=120)
    assert fgt.phase["name"] == "maintenance"
    with pytest.raises(requests.ConnectionError):
        requests.get(fgt.url + STATUS, verify=fgt.ca_bundle, timeout=seconds(5))
