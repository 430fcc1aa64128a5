"""FortiManager's faults over time and contention, over the wire with real JSON-RPC clients: the session
cap (fmg-session-cap), the 7.4.x parallel-key -11 (fmg-parallel-key-flake), another admin's GUI lock
(fmg-adom-locked-by-other) and the least-privilege probe (fmg-probe-needs-sys-read). The device clock
is advanced, never waited for."""

from __future__ import annotations

import ssl
import threading
import time

import httpx
import pytest
import requests

from mockfgt import classify_jsonrpc
from mockfgt.probe import probe
from mockfgt.scenario import ScenarioError, load

from deadlines import seconds
from fmgrpc import Rpc, admin_password, key_rpc, scenario_file

STATUS, CLI_STATUS, GLOBAL = "/sys/status", "/cli/global/system/status", "/cli/global/system/global"
ADDRESSES = "/pm/config/adom/root/obj/firewall/address"
LOCK, UNLOCK, LOCKINFO = ("/dvmdb/adom/root/workspace/lock", "/dvmdb/adom/root/workspace/unlock",
                          "/dvmdb/adom/root/workspace/lockinfo")


def login_code(device, user: str = "admin") -> tuple[int, Rpc]:
    rpc = Rpc(device)
    answer = rpc.login(user, admin_password(device, user))
    return answer["result"][0]["status"]["code"], rpc


# -- fmg-session-cap ------------------------------------------------------------------------------------
def test_session_cap_refuses_the_login_until_the_leaked_sessions_idle_out(make_fortimanager):
    fmg = make_fortimanager("fmg-session-cap")
    assert fmg.phase["name"] == "start" and fmg.expect == "202001"
    assert fmg.state.session_count("admin") == 32  # the runs that never logged out
    code, _ = login_code(fmg)
    assert code == -22  # the right password, refused
    assert classify_jsonrpc(code, method="exec", url="/sys/login/user") == "202001" == fmg.expect
    assert probe(fmg.client).code == "202001"

    fmg.clock.advance(seconds=899)  # not yet: the leaked sessions are 899 s idle
    assert fmg.phase["name"] == "start" and login_code(fmg)[0] == -22
    fmg.clock.advance(seconds=1)
    assert fmg.phase["name"] == "sessions-idled-out" and fmg.expect == "ok"
    assert fmg.state.session_count("admin") == 0
    code, rpc = login_code(fmg)
    assert code == 0 and rpc.code("get", STATUS) == 0
    assert probe(fmg.client).code == "ok"


def test_the_sessions_idle_out_on_the_clock_without_the_phase(make_fortimanager, tmp_path):
    """The recovery is the device's: a cap with no phase recovers the same way, on its own clock."""
    path = scenario_file(tmp_path, "cap-steady", """
summary = "at the cap, no phases"
extends = "fmg-healthy"
expect = 202001
setup = [{ op = "login", user = "admin", count = 4 }]
[[device.admins]]
name = "agent"
[[device.admins]]
name = "admin"
user_type = "local"
login_max = 4
[client]
user = "admin"
auth = "password"
""")
    fmg = make_fortimanager(str(path))
    assert login_code(fmg)[0] == -22
    fmg.clock.advance(seconds=900)  # idle_timeout_api of fmg-healthy
    assert login_code(fmg)[0] == 0


def test_the_default_cap_is_32_and_a_logout_frees_a_slot(make_fortimanager):
    fmg = make_fortimanager("fmg-healthy")
    sessions = []
    for _ in range(32):  # an agent that never logs out
        code, rpc = login_code(fmg)
        assert code == 0
        sessions.append(rpc)
    assert login_code(fmg)[0] == -22
    assert sessions[0].code("exec", "/sys/logout") == 0
    code, rpc = login_code(fmg)
    assert code == 0 and rpc.code("get", STATUS) == 0
    assert login_code(fmg)[0] == -22  # full again
    assert fmg.state.session_count("admin") == 32


def test_an_agent_that_logs_out_never_hits_the_cap(make_fortimanager):
    fmg = make_fortimanager("fmg-session-cap")
    fmg.remedy()  # the leaked sessions ended; the agent (which logs out) runs many times
    fmg.apply({"op": "set-login-max", "user": "admin", "count": 2})
    assert [probe(fmg.client).code for _ in range(6)] == ["ok"] * 6
    assert fmg.state.session_count("admin") == 0
    for _ in range(5):  # the same by hand, with httpx
        rpc = Rpc(fmg, "httpx")
        assert rpc.login("admin", admin_password(fmg))["result"][0]["status"]["code"] == 0
        assert rpc.code("exec", "/sys/logout") == 0
        rpc.close()


def test_raising_login_max_lets_the_login_in(make_fortimanager):
    fmg = make_fortimanager("fmg-session-cap")
    assert login_code(fmg)[0] == -22
    fmg.apply({"op": "set-login-max", "user": "admin", "count": 33})
    assert login_code(fmg)[0] == 0


def test_the_refusal_code_is_a_setting(make_fortimanager, tmp_path):
    path = scenario_file(tmp_path, "cap-11", """
summary = "at the cap, refused with -11"
extends = "fmg-session-cap"
expect = 202002
[device.settings]
login_max_code = -11
""")
    fmg = make_fortimanager(str(path))
    code, _ = login_code(fmg)
    assert code == -11
    assert classify_jsonrpc(code, method="exec", url="/sys/login/user") == "202002"  # -11 on a login


# -- fmg-parallel-key-flake ---------------------------------------------------------------------------
def held_flake(make_fortimanager, tmp_path, hold_seconds: float):
    path = scenario_file(tmp_path, "flake-held", f"""
summary = "the flake with a long hold, so two calls overlap for sure"
extends = "fmg-parallel-key-flake"
[device.settings]
keyed_call_hold_ms = {int(hold_seconds * 1000)}
""")
    return make_fortimanager(str(path))


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + seconds(10)
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def test_a_parallel_call_with_the_same_key_gets_minus_11_and_a_serial_retry_works(make_fortimanager, tmp_path):
    fmg = held_flake(make_fortimanager, tmp_path, seconds(1))
    first, second = key_rpc(fmg, "requests"), key_rpc(fmg, "httpx")
    answers: dict = {}
    worker = threading.Thread(target=lambda: answers.update(first=first.one("get", ADDRESSES)))
    worker.start()
    wait_until(lambda: fmg.state.key_calls.busy(fmg.token) == 1, "the first call in flight")
    overlapping = second.one("get", STATUS)  # while the first is still being answered
    worker.join(seconds(10))
    assert not worker.is_alive()
    assert answers["first"]["status"]["code"] == 0
    assert overlapping["status"] == {"code": -11, "message": "No permission for the resource"}
    # The same -11 a bad key gets: an agent cannot tell them apart by the answer, only by retrying.
    retried = second.one("get", STATUS)  # once, serially, after the first call finished
    assert retried["status"]["code"] == 0
    second.close()


def test_serial_calls_with_the_key_never_get_minus_11(make_fortimanager):
    fmg = make_fortimanager("fmg-parallel-key-flake")
    with requests.Session() as session:  # one kept-alive connection, calls one after the other
        codes = [session.post(f"{fmg.url}/jsonrpc", verify=fmg.ca_bundle, timeout=seconds(10),
                              headers={"Authorization": f"Bearer {fmg.token}"},
                              json={"id": i, "method": "get", "params": [{"url": url}]}).json()["result"][0]
                 ["status"]["code"] for i, url in enumerate([STATUS, GLOBAL, ADDRESSES] * 4)]
    assert codes == [0] * 12
    assert probe(fmg.client).code == "ok" == fmg.expect


def test_a_session_call_is_not_refused_while_a_key_call_is_in_flight(make_fortimanager, tmp_path):
    fmg = held_flake(make_fortimanager, tmp_path, seconds(1))
    code, by_session = login_code(fmg)
    assert code == 0
    worker = threading.Thread(target=lambda: key_rpc(fmg).one("get", STATUS))
    worker.start()
    wait_until(lambda: fmg.state.key_calls.busy(fmg.token) == 1, "the key call in flight")
    assert by_session.code("get", STATUS) == 0  # the conflict is the key's, not the device's
    worker.join(seconds(10))


def test_after_the_remedy_parallel_key_calls_both_work(make_fortimanager, tmp_path):
    fmg = held_flake(make_fortimanager, tmp_path, seconds(1))
    fmg.remedy()  # as on 7.4.8 / 7.6.2
    answers: dict = {}
    worker = threading.Thread(target=lambda: answers.update(first=key_rpc(fmg).code("get", STATUS)))
    worker.start()
    wait_until(lambda: fmg.state.key_calls.busy(fmg.token) == 1, "the first call in flight")
    with httpx.Client(verify=ssl.create_default_context(cafile=fmg.ca_bundle)) as client:  # a second, independent client
        answer = client.post(f"{fmg.url}/jsonrpc", headers={"Authorization": f"Bearer {fmg.token}"},
                             json={"id": 1, "method": "get", "params": [{"url": STATUS}]}, timeout=seconds(10))
    worker.join(seconds(10))
    assert answer.json()["result"][0]["status"]["code"] == 0 and answers["first"] == 0


# -- fmg-adom-locked-by-other --------------------------------------------------------------------------
def test_another_admins_gui_lock_refuses_the_lock_until_it_idles_out(make_fortimanager):
    fmg = make_fortimanager("fmg-adom-locked-by-other")
    rpc = key_rpc(fmg)
    assert rpc.code("get", ADDRESSES) == 0  # reads work
    locked = rpc.one("exec", LOCK)
    assert locked["status"] == {"code": -20055, "message": "Workspace is locked by other user"}
    assert classify_jsonrpc(-20055, method="exec", url=LOCK, credential="accepted") == "202002" == fmg.expect
    assert rpc.one("get", LOCKINFO)["data"][0]["lock_user"] == "jsmith"
    assert probe(fmg.client).code == "202002"

    fmg.clock.advance(seconds=899)
    assert rpc.code("exec", LOCK) == -20055 and fmg.phase["name"] == "start"
    fmg.clock.advance(seconds=1)  # jsmith's GUI session idled out, its lock with it
    assert fmg.phase["name"] == "gui-session-idled-out" and fmg.expect == "ok"
    assert "data" not in rpc.one("get", LOCKINFO)
    assert rpc.code("exec", LOCK) == 0
    assert rpc.code("exec", UNLOCK) == 0
    assert probe(fmg.client).code == "ok"


def test_a_gui_lock_follows_the_gui_idle_timeout(make_fortimanager, tmp_path):
    path = scenario_file(tmp_path, "gui-60", """
summary = "a GUI lock idling out after a minute, no phases"
extends = "fmg-adom-locked-by-other"
phases = []
[device.settings]
idle_timeout_gui = 60
idle_timeout_api = 900
""")
    fmg = make_fortimanager(str(path))
    rpc = key_rpc(fmg, "httpx")
    assert rpc.code("exec", LOCK) == -20055
    fmg.clock.advance(seconds=61)
    assert rpc.code("exec", LOCK) == 0
    rpc.close()


def test_the_other_admin_unlocking_is_the_remedy(make_fortimanager):
    fmg = make_fortimanager("fmg-adom-locked-by-other")
    assert probe(fmg.client).code == "202002"
    fmg.remedy()
    assert probe(fmg.client).code == "ok"
    assert key_rpc(fmg).code("exec", LOCK) == 0


# -- fmg-probe-needs-sys-read ---------------------------------------------------------------------------
def test_a_least_privilege_key_reads_sys_status_but_not_the_cli_tables(make_fortimanager):
    fmg = make_fortimanager("fmg-probe-needs-sys-read")
    rpc = key_rpc(fmg)
    assert rpc.code("get", STATUS) == 0  # the key is good
    for url in (CLI_STATUS, GLOBAL):
        assert rpc.one("get", url)["status"] == {"code": -11, "message": "No permission for the resource"}
    assert rpc.code("get", ADDRESSES) == 0
    assert classify_jsonrpc(-11, url=CLI_STATUS, credential="accepted") == "202002" == fmg.expect
    outcome = probe(fmg.client)
    assert (outcome.code, outcome.role) == ("202002", "mode")


def test_after_a_login_the_cli_status_minus_11_is_a_permission(make_fortimanager):
    fmg = make_fortimanager("fmg-probe-needs-sys-read")
    code, rpc = login_code(fmg, "automation")
    assert code == 0  # the login works
    assert rpc.code("get", CLI_STATUS) == -11
    assert rpc.code("get", STATUS) == 0  # the same session is alive: not an authentication failure
    assert classify_jsonrpc(-11, url=CLI_STATUS, credential="accepted") == "202002"


def test_system_settings_read_is_the_remedy(make_fortimanager):
    fmg = make_fortimanager("fmg-probe-needs-sys-read")
    fmg.remedy()
    rpc = key_rpc(fmg, "httpx")
    assert rpc.code("get", CLI_STATUS) == 0 and rpc.code("get", GLOBAL) == 0
    rpc.close()
    assert probe(fmg.client).code == "ok"


# -- the settings' errors name file, key and what is allowed ------------------------------------------------
@pytest.mark.parametrize(("body", "key", "words"), [
    ("[device.settings]\nlogin_max_code = -5\n", "device.settings.login_max_code", "allowed: -22, -11"),
    ("[device.settings]\nkeyed_call_hold_ms = -1\n", "device.settings.keyed_call_hold_ms", "out of range 0..60000"),
    ("[device.settings]\nparallel_key_conflict = \"yes\"\n", "device.settings.parallel_key_conflict",
     "true or false"),
    ("[device.settings]\nidle_timeout_gui = -1\n", "device.settings.idle_timeout_gui", "out of range"),
    ('[[device.admins]]\nname = "a"\nlogin_max = 0\n', "device.admins[0].login_max", "out of range 1..1024"),
    ('setup = [{ op = "lock-adom", user = "admin", via = "ssh" }]\n', "setup[0].via", "allowed: jsonrpc, gui"),
    ('setup = [{ op = "login", user = "admin", count = 0 }]\n', "setup[0].count", "out of range"),
    ('setup = [{ op = "set-permission", profile = "Super_User", group = "sys", level = "read" }]\n',
     "setup[0].group", "allowed: system-setting"),
])
def test_new_settings_errors_name_file_key_and_allowed_values(tmp_path, body, key, words):
    path = scenario_file(tmp_path, "bad", f'summary = "s"\nextends = "fmg-healthy"\nexpect = "ok"\n{body}')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert caught.value.source == str(path) and caught.value.key == key
    assert words in caught.value.message
