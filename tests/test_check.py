"""``mockfgt check``: any agent's own command, run per scenario through the installed CLI, judged.

The agents here are real processes (shell scripts with curl, a Python script) that reach the devices
over real TLS on loopback; ``check`` must show each kind of mismatch in its table, its JUnit XML and
its exit code, and must survive an agent that hangs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from deadlines import seconds
from run_cli import as_from_a_terminal, cli_env, mockfgt_command, run_mockfgt

REFERENCE_AGENT = Path(__file__).parent / "data" / "agents" / "reference_agent.py"


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def check(*args: str, timeout: float = seconds(120)):
    return run_mockfgt("check", *args, timeout=timeout)


# One scenario per code and per kind, password and session agents among them; the examples under
# examples/ run the whole catalogue (tests/test_examples.py).
SAMPLE = ("fgt-healthy", "expired-cert", "port-closed", "invalid-token", "read-only-profile", "tls-stall",
          "session-expired", "fmg-healthy", "fmg-rpc-permit-read", "fmg-login-failed", "private-ca")


def test_a_correct_agent_matches_and_the_junit_says_so(tmp_path):
    """The reference agent, run as a process from its settings file, matches every scenario it is
    given, in both modes where Insecure changes the expectation and only there."""
    junit = tmp_path / "report.xml"
    names = [arg for name in SAMPLE for arg in ("--scenario", name)]
    done = check(*names, "--timeout", str(seconds(1)), "--junit", str(junit), "--json", "--",
                 sys.executable, str(REFERENCE_AGENT), "{settings}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    catalogue = {sc["name"]: sc for sc in json.loads(run_mockfgt("scenarios", "--json").stdout)}
    assert {r["scenario"] for r in report["runs"]} == set(SAMPLE)
    assert report["failed"] == 0 and report["passed"] == len(report["runs"])
    insecure = {r["scenario"] for r in report["runs"] if r["mode"] == "insecure"}
    assert insecure == {n for n in SAMPLE if catalogue[n]["expect_insecure"] != catalogue[n]["expect"]}
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(report["runs"])) and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(report["runs"])


def test_a_wrong_agent_shows_in_the_table_the_junit_and_the_exit_code(tmp_path):
    """An agent that never verifies certificates reports ok on an expired one: a mismatch whose
    explanation says what the device saw (a request answered 200), what a correct agent reports
    and the remedy."""
    agent = script(tmp_path, "insecure-agent.sh", """\
        code=$(curl -sk --max-time "$MOCKFGT_TIMEOUT" -o /dev/null -w '%{http_code}' \\
               -H "Authorization: Bearer $MOCKFGT_TOKEN" "$MOCKFGT_URL/api/v2/monitor/system/status")
        case "$code" in 200) echo ok ;; 401) echo 202001 ;; 403) echo 202002 ;; *) echo 202000 ;; esac
        """)
    junit = tmp_path / "report.xml"
    done = check("--scenario", "fgt-healthy", "--scenario", "expired-cert", "--junit", str(junit), "--", agent)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {tuple(line.split()[:2]): line.split() for line in done.stdout.splitlines()[1:4]}
    assert rows[("fgt-healthy", "verify")][-1] == "ok"
    assert rows[("expired-cert", "verify")][2:] == ["202003", "ok", "FAIL"]
    assert rows[("expired-cert", "insecure")][-1] == "ok"
    assert "expired-cert: expected 202003 (TLS/SSL certificate error), the agent reported ok" in done.stdout
    assert "GET /api/v2/monitor/system/status -> 200" in done.stdout  # what the device saw
    assert "remedy: Renew the device's HTTPS certificate." in done.stdout
    assert "2 of 3 runs matched; 1 did not" in done.stdout
    suite = ET.parse(junit).getroot()
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["expired-cert[verify]"]
    failure = failed[0].find("failure")
    assert failure is not None and "expected 202003, reported ok" in failure.get("message", "")
    assert "GET /api/v2/monitor/system/status -> 200" in (failure.text or "")


def test_a_tls_failure_is_explained_with_the_alert_the_agent_sent(tmp_path):
    """A verifying agent that misreads a certificate failure as a connection failure: the device
    saw a failed handshake and the alert the client sent."""
    agent = script(tmp_path, "misreads-tls.sh", """\
        if curl -s --max-time "$MOCKFGT_TIMEOUT" --cacert "$MOCKFGT_CA" -o /dev/null "$MOCKFGT_URL/api/v2/monitor/system/status"
        then echo ok; else echo 202000; fi
        """)
    done = check("--scenario", "expired-cert", "--", agent)
    assert done.returncode == 1
    assert "TLS handshake failed" in done.stdout and "the client sent alert" in done.stdout


def test_a_hanging_agent_is_killed_with_its_children_and_reported(tmp_path):
    pids = tmp_path / "pids"
    agent = script(tmp_path, "hangs.sh", f"""\
        sleep 300 &
        echo $! >> {pids}
        wait
        """)
    done = check("--scenario", "fgt-healthy", "--run-timeout", "1", "--json", "--", agent)
    assert done.returncode == 1
    run = json.loads(done.stdout)["runs"][0]
    assert run["verdict"] == "hung" and run["reported"] is None
    assert any("was killed" in line for line in run["explanation"])
    deadline = time.monotonic() + seconds(5)
    child = int(pids.read_text().split()[0])
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the agent's child outlived the check"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_placeholders_environment_and_settings_file(tmp_path):
    """The agent gets its settings in ARGS and in MOCKFGT_*; the machine's trust variables are gone;
    the settings file (it holds a credential) is readable by the user alone."""
    dump = tmp_path / "dump"
    agent = script(tmp_path, "dump.sh", f"""\
        {{ echo "args $*"; env | sort; stat -c 'mode %a' "$MOCKFGT_SETTINGS"; cat "$MOCKFGT_SETTINGS"; }} > {dump}
        echo '{{"code": "ok"}}'
        """)
    done = check("--scenario", "fgt-healthy", "--", agent, "{url}", "{token}", "{ca}", "{insecure}", "%{http_code}")
    assert done.returncode == 0, done.stdout + done.stderr
    text = dump.read_text()
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith(("args", " ", "{", "}")))
    args = next(line for line in text.splitlines() if line.startswith("args ")).split()[1:]
    assert args == [env["MOCKFGT_URL"], env["MOCKFGT_TOKEN"], env["MOCKFGT_CA"], "false", "%{http_code}"]
    assert env["MOCKFGT_URL"].startswith("https://127.0.0.1:") and len(env["MOCKFGT_TOKEN"]) == 30
    assert Path(env["MOCKFGT_CA"]).is_file() and env["MOCKFGT_TIMEOUT"] == "5"
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        assert variable not in env
    assert "mode 600" in text
    settings = json.loads(text[text.index("\n{") + 1:])
    assert settings["token"] == env["MOCKFGT_TOKEN"] and settings["url"] == env["MOCKFGT_URL"]


def test_skips_are_shown_with_their_reason_and_do_not_fail(tmp_path):
    agent = script(tmp_path, "skips.sh", """\
        if [ -n "$MOCKFGT_PASSWORD" ]; then echo "skip: no password login in this agent"; else echo ok; fi
        """)
    done = check("--scenario", "fgt-healthy", "--scenario", "password-wrong", "--", agent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped (no password login in this agent)" in done.stdout
    assert "1 skipped by the agent" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    ((), "give the agent's command after --"),
    (("--", "agent", "{tokn}"), "unknown placeholder {tokn}"),
    (("--scenario", "no-such", "--", "true"), "no scenario no-such"),
    (("--kind", "fortimanager", "--expect", "202004", "--", "true"), "the filters leave no scenario"),
    (("--", "/no/such/agent"), "cannot run /no/such/agent"),
])
def test_usage_errors_exit_2_with_a_message(args, message):
    done = check(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr



def test_a_phased_scenario_runs_the_agent_once_per_phase_with_its_state_kept(tmp_path):
    """device-reboot: up, refusing, up again. The agent runs three times, each judged by its phase;
    its {state} folder is the same for all three runs. An agent that always says ok fails the
    refusing phase only, and the explanation names the phase."""
    agent = script(tmp_path, "polls.sh", """\
        echo run >> "$MOCKFGT_STATE/runs"
        code=$(curl -s --max-time "$MOCKFGT_TIMEOUT" --cacert "$MOCKFGT_CA" -o /dev/null -w '%{http_code}' \\
               -H "Authorization: Bearer $MOCKFGT_TOKEN" "$MOCKFGT_URL/api/v2/monitor/system/status")
        case "$code" in 200) echo ok ;; 000) echo 202000 ;; *) echo 202001 ;; esac
        cp "$MOCKFGT_STATE/runs" "$1"
        """)
    seen = tmp_path / "runs-seen"
    done = check("--scenario", "device-reboot", "--json", "--", agent, str(seen))
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [(r["phase"], r["expected"], r["verdict"]) for r in runs] == [
        ("start", "ok", "pass"), ("rebooting", "202000", "pass"), ("up", "ok", "pass")]
    assert seen.read_text().split() == ["run", "run", "run"]  # one state folder across the phases

    says_ok = script(tmp_path, "says-ok.sh", "echo ok\n")
    done = check("--scenario", "device-reboot", "--", says_ok)
    assert done.returncode == 1
    assert "device-reboot (phase rebooting): expected 202000 (connection failure), the agent reported ok" in done.stdout
    assert "2 of 3 runs matched; 1 did not" in done.stdout


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_check_kills_the_running_agents(tmp_path, signum, code):
    """Agents run in sessions of their own, where the terminal's Ctrl+C does not reach: stopping
    check (Ctrl+C or SIGTERM) must end them and their children, at once, and start no more."""
    pids = tmp_path / "pids"
    agent = script(tmp_path, "hangs.sh", f"""\
        sleep 300 &
        echo $! >> {pids}
        wait
        """)
    process = subprocess.Popen([*mockfgt_command(), "check", "--workers", "2", "--scenario", "fgt-healthy",
                                "--scenario", "expired-cert", "--", agent], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=cli_env(), preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + seconds(20)
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = [int(p) for p in pids.read_text().split()]
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=seconds(20))
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    for child in children:
        deadline = time.monotonic() + seconds(5)
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "an agent outlived check"
    assert len(pids.read_text().split()) == len(children), "a run started after check was stopped"
