"""The FortiGate rows of faults over time (issue 17), each walked phase by phase over the wire with real
clients (requests, httpx, curl), the device clock advanced rather than waited for: a neighbour's lockout,
firmware upgrades (set-version), a VDOM-scoped token refused global calls."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
import requests

from mockfgt.explain import journal_summary
from mockfgt.probe import probe

from deadlines import seconds

STATUS = "/api/v2/monitor/system/status"
ADDRESSES = "/api/v2/cmdb/firewall/address"


def get(device, path: str, token: str | None = None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or device.token}"}
    return requests.get(device.url + path, headers=headers, params=params, verify=device.ca_bundle,
                        timeout=seconds(5))


def phase_names(device) -> list[str]:
    return [e["phase"] for e in device.journal.events() if e["event"] == "phase"]


# -- lockout-by-neighbour ---------------------------------------------------------------------------
def test_a_neighbour_behind_the_same_address_locks_the_right_key_out(make_fortigate):
    fgt = make_fortigate("lockout-by-neighbour")
    stale = "s7ALEkeyFromAnOldAgent00000000"
    assert get(fgt, STATUS).status_code == 200
    # The stale agent, from the same address (127.0.0.1), through the real counter: three failures.
    assert [get(fgt, STATUS, stale).status_code for _ in range(3)] == [401, 401, 401]
    locked = get(fgt, STATUS)  # the correct agent, the right key
    assert locked.status_code == 429 and "Too Many Requests" in locked.text
    assert get(fgt, STATUS, "").status_code == 429  # the credential is not even looked at
    fgt.clock.advance(seconds=61)  # admin-lockout-duration on the device clock
    assert get(fgt, STATUS).status_code == 200


def test_lockout_by_neighbour_phases_follow_the_device_clock(make_fortigate):
    fgt = make_fortigate("lockout-by-neighbour")
    assert probe(fgt.client, kind="fortigate").code == "ok"
    fgt.clock.advance(minutes=10)  # the stale agent fails three times from the agent's address
    assert fgt.phase["name"] == "neighbour-failing" and fgt.expect == "202001"
    with httpx.Client(verify=fgt.client.ssl_context(), trust_env=False, timeout=seconds(5)) as client:
        answer = client.get(fgt.url + STATUS, headers={"Authorization": f"Bearer {fgt.token}"})
    assert answer.status_code == 429
    assert probe(fgt.client, kind="fortigate").code == "202001"
    fgt.clock.advance(seconds=60)  # the lockout runs out
    assert fgt.phase["name"] == "free"
    assert probe(fgt.client, kind="fortigate").code == "ok"
    assert phase_names(fgt) == ["neighbour-failing", "free"]


def test_failed_attempts_count_only_until_the_lockout(make_fortigate):
    fgt = make_fortigate("fgt-healthy")
    assert fgt.state.failed_attempts("192.0.2.7", 5) == 2  # the 4th and 5th are refused unchecked
    assert get(fgt, STATUS).status_code == 200  # another source is not concerned


# -- set-version and the upgrade rows ---------------------------------------------------------------
def test_set_version_changes_what_the_device_reports_and_keeps_the_config(make_fortigate):
    fgt = make_fortigate("fgt-healthy-7.2")
    created = requests.post(fgt.url + ADDRESSES, json={"name": "kept", "subnet": "192.0.2.0/24"},
                            headers={"Authorization": f"Bearer {fgt.token}"}, verify=fgt.ca_bundle,
                            timeout=seconds(5))
    assert created.status_code == 200
    before = get(fgt, STATUS).json()
    assert before["version"].startswith("v7.2")
    fgt.apply({"op": "set-version", "version": "7.4.5"})
    after = get(fgt, STATUS).json()
    assert (after["version"], after["build"]) == ("v7.4.5", 2702)
    names = [row["name"] for row in get(fgt, ADDRESSES).json()["results"]]
    assert "kept" in names and "all" in names  # the configuration survives the upgrade


def test_set_version_ends_sessions_and_renames_the_cookies(make_fortigate):
    fgt = make_fortigate("fgt-healthy-6.4")
    with requests.Session() as session:
        session.verify = fgt.ca_bundle
        login = session.post(fgt.url + "/logincheck", timeout=seconds(5),
                             data={"username": "netops", "secretkey": client_password(fgt), "ajax": "1"})
        assert login.text.startswith("1")
        old_names = set(session.cookies.keys())
        assert session.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 200
        fgt.apply({"op": "set-version", "version": "7.4.5"})
        assert session.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 401  # the reboot ended it
        session.cookies.clear()
        assert session.post(fgt.url + "/logincheck", timeout=seconds(5),
                            data={"username": "netops", "secretkey": client_password(fgt)}).text.startswith("1")
        new_names = set(session.cookies.keys())
        assert "ccsrftoken" in old_names and "ccsrftoken" not in new_names  # 7.2.4+: by port and hash
        assert any(name.startswith(f"ccsrftoken_{fgt.port}_") for name in new_names)
        assert session.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 200


def client_password(fgt) -> str:
    return fgt.state.sessions.admins["netops"].password


def test_upgrade_to_7_4_5_reports_7_4_5_and_refuses_the_query_token(make_fortigate, curl):
    fgt = make_fortigate("upgrade-7.2-to-7.4-query-token")

    def by_query() -> tuple[str, str]:
        out = subprocess.run([curl, "-sS", "--cacert", str(fgt.ca_bundle), "-o", "/dev/null", "-w", "%{http_code}",
                              f"{fgt.url}{STATUS}?access_token={fgt.token}"],
                             capture_output=True, text=True, timeout=seconds(10), env={"PATH": "/usr/bin:/bin"})
        return out.stdout, get(fgt, STATUS).json()["version"]

    assert by_query() == ("200", "v7.2.10")
    fgt.clock.advance(hours=1)
    assert fgt.phase["name"] == "upgraded"
    assert by_query() == ("401", "v7.4.5")  # the header still works, and says 7.4.5 now
    assert probe(fgt.client, kind="fortigate").code == "202001"
    fgt.remedy()
    assert probe(fgt.client, kind="fortigate").code == "ok"


def test_upgrade_to_7_6_3_logincheck_issues_no_session_cookie(make_fortigate):
    fgt = make_fortigate("upgrade-7.6.3-logincheck-no-cookie")
    form = {"username": "netops", "secretkey": client_password(fgt), "ajax": "1"}

    def logincheck_then_status() -> tuple[str, bool, int]:
        with requests.Session() as session:
            session.verify = fgt.ca_bundle
            login = session.post(fgt.url + "/logincheck", data=form, timeout=seconds(5))
            has_session = any(name.startswith(("APSCOOKIE", "session_key")) for name in session.cookies.keys())
            return login.text[:1], has_session, session.get(fgt.url + STATUS, timeout=seconds(5)).status_code

    assert logincheck_then_status() == ("1", True, 200)
    assert probe(fgt.client, kind="fortigate").code == "ok"
    fgt.clock.advance(hours=1)
    assert fgt.phase["name"] == "upgraded" and get(fgt, STATUS).json()["version"] == "v7.6.3"
    assert logincheck_then_status() == ("1", False, 401)  # "success", and nothing to use it with
    assert probe(fgt.client, kind="fortigate").code == "202001"
    fgt.remedy()  # /api/v2/authentication still gives a session
    assert probe(fgt.client, kind="fortigate").code == "ok"


# -- global-scope-denied ----------------------------------------------------------------------------
def test_a_vdom_scoped_token_is_refused_global_calls_with_json_403(make_fortigate):
    fgt = make_fortigate("global-scope-denied")
    own = get(fgt, ADDRESSES)  # no vdom: the user's own VDOM
    assert own.status_code == 200 and own.json()["vdom"] == "tenant-a"
    for params in ({"scope": "global"}, {"vdom": "root"}):
        refused = get(fgt, STATUS, **params)
        assert refused.status_code == 403 and refused.headers["Content-Type"].startswith("application/json")
        body = refused.json()
        assert (body["status"], body["http_status"]) == ("error", 403)
        assert body["vdom"] == ("tenant-a" if "scope" in params else "root")
    assert get(fgt, STATUS, vdom="tenant-a").status_code == 200
    assert probe(fgt.client, kind="fortigate").code == "202002" == fgt.expect
    fgt.remedy()
    assert probe(fgt.client, kind="fortigate").code == "ok"


def test_a_global_scope_user_may_make_global_calls(make_fortigate):
    fgt = make_fortigate("fgt-healthy")
    assert get(fgt, STATUS, scope="global").status_code == 200


@pytest.mark.parametrize("name", ["global-scope-denied", "lockout-by-neighbour", "upgrade-7.6.3-logincheck-no-cookie"])
def test_the_rows_are_in_the_catalogue(name):
    from mockfgt.scenario import catalogue

    assert name in {sc.name for sc in catalogue()}


# -- ha-failover ------------------------------------------------------------------------------------
def test_ha_failover_with_one_agent_keeping_its_connection_and_session(make_fortigate):
    fgt = make_fortigate("ha-failover")
    form = {"username": "netops", "secretkey": client_password(fgt), "ajax": "1"}
    with requests.Session() as agent:  # one agent: its pooled connection and its cookies, across phases
        agent.verify = fgt.ca_bundle
        assert agent.post(fgt.url + "/logincheck", data=form, timeout=seconds(5)).text.startswith("1")
        assert agent.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 200  # kept alive after this

        fgt.clock.advance(minutes=10)
        assert fgt.phase["name"] == "failover" and fgt.expect == "202000"
        # The kept connection is not closed: the agent reuses it, and no answer ever comes. The 1 s
        # timeout is the behaviour under test (the device never answers), not a deadline.
        with pytest.raises(requests.exceptions.ReadTimeout):
            agent.get(fgt.url + STATUS, timeout=1)
        with pytest.raises(requests.exceptions.ConnectionError):  # a new connection: reset
            agent.get(fgt.url + STATUS, timeout=seconds(5))
        assert probe(fgt.client, kind="fortigate").code == "202000"

        fgt.clock.advance(minutes=1)
        assert fgt.phase["name"] == "booting"
        with pytest.raises(requests.exceptions.Timeout):  # accepted, never a ServerHello (a ReadTimeout here)
            agent.get(fgt.url + STATUS, timeout=1)

        fgt.clock.advance(minutes=10)
        assert fgt.phase["name"] == "up"
        assert agent.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 401  # the old session's cookie
        assert agent.post(fgt.url + "/logincheck", data=form, timeout=seconds(5)).text.startswith("1")
        assert agent.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 200  # ok after a new login
    events = [e["event"] for e in fgt.journal.events()]
    assert "silenced" in events and "reset" in events and "stall-handshake" in events
    saw = journal_summary(fgt.journal.events(), limit=100)  # what a mismatch's explanation says of it
    assert "a connection kept from before silently dropped: never answered again (the scenario's fault)" in saw
    assert phase_names(fgt) == ["failover", "booting", "up"]


def test_a_silenced_connection_stays_silent_through_later_phases_until_the_client_leaves(make_fortigate, curl):
    fgt = make_fortigate("ha-failover")
    fgt.apply({"op": "set-connection", "fault": "none"})  # stays healthy for new connections
    with httpx.Client(verify=fgt.client.ssl_context(), trust_env=False, timeout=seconds(5)) as kept:
        headers = {"Authorization": f"Bearer {fgt.token}"}
        assert kept.get(fgt.url + STATUS, headers=headers).status_code == 200
        assert fgt.connections == 1
        fgt.apply({"op": "set-connection", "kept": "silence"})
        fgt.apply({"op": "set-connection", "fault": "none"})  # a new plan does not release it, as it would a stall
        assert fgt.connections == 1  # still open: not closed, not reset
        with pytest.raises(httpx.ReadTimeout):
            kept.get(fgt.url + STATUS, headers=headers, timeout=1)  # 1 s: the silence is under test
        # httpx closes a connection that timed out: the client left, and the device lets go of it.
        deadline = time.monotonic() + seconds(5)
        while fgt.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fgt.connections == 0
        fresh = subprocess.run([curl, "-sS", "--cacert", str(fgt.ca_bundle), "-o", "/dev/null", "-w", "%{http_code}",
                                "-H", f"Authorization: Bearer {fgt.token}", fgt.url + STATUS],
                               capture_output=True, text=True, timeout=seconds(10), env={"PATH": "/usr/bin:/bin"})
        assert fresh.stdout == "200"  # a new connection is answered
    assert [e for e in fgt.journal.events() if e["event"] == "silenced"]


# -- slow-endpoint ----------------------------------------------------------------------------------
def test_slow_endpoint_the_status_is_fast_the_address_read_outlasts_the_agent(make_fortigate):
    fgt = make_fortigate("slow-endpoint")
    headers = {"Authorization": f"Bearer {fgt.token}"}
    with requests.Session() as agent:
        agent.verify, agent.headers = fgt.ca_bundle, headers
        assert agent.get(fgt.url + STATUS, timeout=seconds(5)).status_code == 200
        # 1 s: the agent's timeout against a device slow on purpose (20 s), not a deadline.
        with pytest.raises(requests.exceptions.ReadTimeout):
            agent.get(fgt.url + ADDRESSES, timeout=1)
    # The client left: the held answer is dropped with its connection, not kept for 20 s.
    deadline = time.monotonic() + seconds(5)
    while fgt.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fgt.connections == 0
    held = [e for e in fgt.journal.events() if e["event"] == "answer-held"]
    assert [(e["path"], e["seconds"]) for e in held] == [(ADDRESSES, 20.0)]
    assert probe(fgt.client, kind="fortigate", timeout=1).code == "202004" == fgt.expect
    with pytest.raises(AssertionError, match="GET /api/v2/cmdb/firewall/address: answered after 20 s"):
        fgt.check("ok")  # an agent that reported ok is told what the device did


def test_slow_endpoint_a_longer_timeout_gets_the_answer_late_on_the_same_connection(make_fortigate, curl):
    fgt = make_fortigate("slow-endpoint")
    fgt.apply({"op": "set-slow-path", "prefix": "/api/v2/cmdb/firewall/address", "seconds": 0.3})
    with httpx.Client(verify=fgt.client.ssl_context(), trust_env=False, timeout=seconds(10),
                      headers={"Authorization": f"Bearer {fgt.token}"}) as agent:
        answers = [agent.get(fgt.url + ADDRESSES) for _ in range(2)] + [agent.get(fgt.url + STATUS)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "all" in [row["name"] for row in answers[0].json()["results"]]
    assert fgt.connections <= 1  # kept alive through the late answers (httpx may not have closed yet)
    # Only authenticated answers are slow: a refusal is httpsd's, at once.
    refused = subprocess.run([curl, "-sS", "--max-time", "1", "--cacert", str(fgt.ca_bundle), "-o", "/dev/null",
                              "-w", "%{http_code}", fgt.url + ADDRESSES],
                             capture_output=True, text=True, timeout=seconds(10), env={"PATH": "/usr/bin:/bin"})
    assert refused.stdout == "401"


def test_slow_endpoint_remedy_makes_it_fast(make_fortigate):
    fgt = make_fortigate("slow-endpoint")
    fgt.remedy()
    assert probe(fgt.client, kind="fortigate", timeout=seconds(5)).code == "ok"
    assert not [e for e in fgt.journal.events() if e["event"] == "answer-held"]


# -- api-user-schedule ------------------------------------------------------------------------------
def test_api_user_schedule_phases_follow_the_device_wall_time(make_fortigate, curl):
    fgt = make_fortigate("api-user-schedule")

    def by_curl() -> str:
        done = subprocess.run([curl, "-sS", "--cacert", str(fgt.ca_bundle), "-o", "/dev/null", "-w", "%{http_code}",
                               "-H", f"Authorization: Bearer {fgt.token}", fgt.url + STATUS],
                              capture_output=True, text=True, timeout=seconds(10), env={"PATH": "/usr/bin:/bin"})
        return done.stdout

    assert fgt.state.wall.now().isoformat().startswith("2026-01-05T09:00")  # Monday 09:00, whatever the real time
    assert by_curl() == "200"
    fgt.clock.advance(hours=8, minutes=59)  # Monday 17:59: still inside
    assert fgt.phase["name"] == "start" and by_curl() == "200"
    fgt.clock.advance(minutes=1)  # 18:00: the end is not inside
    assert fgt.phase["name"] == "evening"
    refused = get(fgt, STATUS)
    assert refused.status_code == 401 and "<title>401 Unauthorized</title>" in refused.text
    assert [by_curl() for _ in range(4)] == ["401"] * 4  # the right key: refused, never locked out for it
    assert probe(fgt.client, kind="fortigate").code == "202001" == fgt.expect
    fgt.clock.advance(hours=14)  # Tuesday 08:00
    assert fgt.phase["name"] == "next-morning" and by_curl() == "200"
    assert probe(fgt.client, kind="fortigate").code == "ok"


def test_api_user_schedule_remedy_removes_the_schedule(make_fortigate):
    fgt = make_fortigate("api-user-schedule")
    fgt.advance()  # told: the phase sets the wall time to Monday 18:00 itself
    assert fgt.state.wall.now().isoformat().startswith("2026-01-05T18:00")
    assert get(fgt, STATUS).status_code == 401
    fgt.remedy()
    assert get(fgt, STATUS).status_code == 200


def test_a_schedule_ending_before_it_starts_runs_into_the_next_day(make_fortigate, tmp_path):
    path = tmp_path / "night-shift.toml"
    path.write_text('''
summary = "a night-shift API user: Friday 22:00 to Saturday 06:00"
extends = "fgt-healthy"
expect = "ok"
[device.settings]
system_time = "2026-01-09T21:00:00Z"
[device.schedules.nights]
days = ["friday"]
start = "22:00"
end = "06:00"
[[device.api_users]]
name = "agent"
schedule = "nights"
''')
    fgt = make_fortigate(str(path))
    seen = []
    for step in (0, 1, 7, 1):  # Friday 21:00, Friday 22:00, Saturday 05:00, Saturday 06:00
        fgt.clock.advance(hours=step)
        seen.append(get(fgt, STATUS).status_code)
    assert seen == [401, 200, 200, 401]
    fgt.apply({"op": "set-system-time", "time": "2026-01-01T00:00:00"})  # the past: the time does not go back
    assert fgt.state.wall.now().isoformat().startswith("2026-01-10T06:00")


def test_a_schedule_the_device_does_not_have_is_named_with_those_it_has(tmp_path):
    from mockfgt.scenario import ScenarioError, load

    path = tmp_path / "typo.toml"
    path.write_text('summary = "x"\nextends = "fgt-healthy"\nexpect = "ok"\n'
                    '[[device.api_users]]\nname = "agent"\nschedule = "ofice-hours"\n')
    with pytest.raises(ScenarioError, match=r"api_users\[0\]\.schedule.*'ofice-hours' is not in device.schedules"):
        load(str(path))


# -- password-expires-mid-run -----------------------------------------------------------------------
def logincheck(device, password: str) -> requests.Response:
    return requests.post(device.url + "/logincheck", data={"username": "netops", "secretkey": password},
                         verify=device.ca_bundle, timeout=seconds(5))


def test_an_expired_password_answers_change_required_on_both_logins(make_fortigate):
    """config system password-policy expire-day 90: the right password, 90 days on, logs in no more;
    /logincheck answers status 4 (ref A.5) without a session cookie, the JSON login status 4."""
    fgt = make_fortigate("password-expires-mid-run")
    password = fgt.client.password
    first = logincheck(fgt, password)
    assert first.text.startswith("1") and first.cookies
    fgt.clock.advance(days=89)
    assert logincheck(fgt, password).text.startswith("1")
    fgt.clock.advance(days=1)
    assert fgt.phase["name"] == "expired"
    expired = logincheck(fgt, password)
    assert expired.status_code == 200 and expired.text == "4" and not expired.cookies
    with httpx.Client(verify=fgt.client.ssl_context(), trust_env=False, timeout=seconds(5)) as client:
        answer = client.post(fgt.url + "/api/v2/authentication", json={"username": "netops", "secretkey": password})
    assert answer.json() == {"status": 4, "status_message": "LOGIN_PASSWORD_CHANGE_REQUIRED"}
    # The right password: no failure counted, so no lockout however often the agent retries.
    assert [logincheck(fgt, password).text for _ in range(4)] == ["4"] * 4
    assert logincheck(fgt, "wrong").text == "0"


def test_a_changed_password_is_dated_from_the_change(make_fortigate):
    fgt = make_fortigate("password-expires-mid-run")
    fgt.clock.advance(days=90)
    agent = fgt.remedy()  # the admin's password set anew on the device, and the agent given it
    assert logincheck(fgt, agent.password).text.startswith("1")
    assert probe(agent, kind="fortigate").code == "ok"
    fgt.clock.advance(days=90)
    assert logincheck(fgt, agent.password).text == "4"


def test_without_a_password_policy_passwords_never_expire(make_fortigate):
    fgt = make_fortigate("fgt-healthy")
    fgt.clock.advance(days=3650)
    assert logincheck(fgt, "Fortinet-Lab-2024!").text.startswith("1")


def test_password_expire_days_out_of_range_names_the_key(tmp_path):
    from mockfgt.scenario import ScenarioError, load

    path = tmp_path / "bad.toml"
    path.write_text('extends = "fgt-healthy"\nsummary = "s"\nexpect = "ok"\n[device.settings]\npassword_expire_days = 0\n')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert caught.value.key == "device.settings.password_expire_days" and str(path) in caught.value.source


def test_told_to_start_early_the_expired_phase_ages_the_passwords(make_fortigate):
    fgt = make_fortigate("password-expires-mid-run")
    fgt.advance()  # not the clock: the phase's expire-passwords does what 90 days would
    assert logincheck(fgt, fgt.client.password).text == "4"
    assert probe(fgt.client, kind="fortigate").code == "202001"
