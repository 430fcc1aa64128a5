"""The CLI as people and scripts misuse it: pipes closed early, Ctrl+C at any moment, bad flags and
files, stale manifests. Every case ends with a message and an exit code, never a traceback.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from deadlines import seconds
from run_cli import as_from_a_terminal, cli_env, mockfgt_command, run_mockfgt
from test_cli import Served

MOCKFGT = " ".join(mockfgt_command())


def shell(command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=seconds(timeout),
                          env=cli_env())


@pytest.mark.parametrize("command", ["scenarios", "scenarios --json", "scenarios show read-only-profile",
                                     "--help"])
def test_output_piped_into_head_ends_quietly(command):
    for _ in range(5):  # the pipe closes at a different moment each time
        result = shell(f"{MOCKFGT} {command} | head -c 20")
        assert result.stderr == "", result.stderr
        assert result.stdout


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3, 0.6])
def test_ctrl_c_at_any_moment_of_a_start_is_quiet(tmp_path, delay):
    process = subprocess.Popen([*mockfgt_command(), "serve", "--all", "--certs-dir", str(tmp_path / "certs")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                               preexec_fn=as_from_a_terminal)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=seconds(30))
    if "Traceback" in err and "mockfgt/cli.py" not in err:
        # Interrupted before mockfgt's main ran: the interpreter's start, the installer's wrapper script
        # and `import mockfgt` (kept to a few milliseconds) are Python's to report. Rare on an idle machine.
        return
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert process.returncode in (0, 130, -signal.SIGINT), (process.returncode, err)


def test_a_second_ctrl_c_while_stopping_is_quiet(tmp_path):
    served = Served("--all", "--certs-dir", str(tmp_path / "certs"))
    served.process.send_signal(signal.SIGINT)
    served.process.send_signal(signal.SIGINT)
    code, _, err = served.stop(signal.SIGINT)
    assert code in (0, 130) and "Traceback" not in err, err


@pytest.mark.parametrize("args, message", [
    (["serve", "--port", "eight"], "is not a whole number"),
    (["serve", "--port", "70000"], "is not a port"),
    (["wait", "x", "--timeout", "inf"], "out of range"),
    (["serve", "--scenario", "nope-cert"], "no scenario named 'nope-cert'"),
    (["serve", "--scenario", "/nonexistent/file.toml"], "no such scenario file"),
    (["scenarios", "show", "nope"], "no scenario named"),
    (["wait"], "the following arguments are required"),
    (["manifest", "/nonexistent/m.json", "get", "url"], "no manifest"),
])
def test_a_users_mistake_is_a_message(args, message, tmp_path):
    result = run_mockfgt(*args, "--certs-dir", str(tmp_path)) if args[0] == "serve" else run_mockfgt(*args)
    assert result.returncode in (1, 2)
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_unusable_certs_dir_or_manifest_path_is_a_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for args in (["--certs-dir", str(blocker)],
                 ["--certs-dir", str(tmp_path / "certs"), "--manifest", str(blocker / "m.json")]):
        result = run_mockfgt("serve", "--port", "0", *args)
        assert result.returncode in (1, 2), result.stderr
        assert str(blocker) in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_empty_scenario_folder_is_an_error(tmp_path):
    result = run_mockfgt("serve", "--port", "0", "--scenario", str(tmp_path), "--certs-dir", str(tmp_path / "c"))
    assert result.returncode == 2 and "no scenario files" in result.stderr


def test_an_unreadable_scenario_folder_in_the_environment_is_an_error(tmp_path):
    result = run_mockfgt("scenarios", MOCKFGT_SCENARIOS=str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "MOCKFGT_SCENARIOS" in result.stderr and str(tmp_path / "missing") in result.stderr


def test_python_dash_m_mockfgt_is_the_same_command():
    result = subprocess.run([sys.executable, "-m", "mockfgt", "scenarios", "--json"], capture_output=True,
                            text=True, timeout=seconds(60), env=cli_env())
    assert result.returncode == 0 and len(json.loads(result.stdout)) >= 41


def test_the_banners_hint_works_as_typed(tmp_path):
    served = Served("--port", "0", "--certs-dir", str(tmp_path / "certs"))
    try:
        line = next(line for line in served.banner if "Control API" in line)
        hint = re.search(r"\((.+ devices)\)", line).group(1)
        result = shell(hint)
        assert result.returncode == 0, (hint, result.stderr)
        assert [d["name"] for d in json.loads(result.stdout)] == ["fgt-healthy"]
    finally:
        served.kill()


# -- manifests and waiting --------------------------------------------------------------------------
def test_wait_then_get_without_jq(tmp_path):
    manifest = tmp_path / "run" / "mockfgt.json"
    process = subprocess.Popen([*mockfgt_command(), "serve", "--all", "--manifest", str(manifest),
                                "--certs-dir", str(tmp_path / "certs")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        waited = run_mockfgt("wait", str(manifest), "--pid", str(process.pid), "--timeout", str(seconds(30)))
        assert waited.returncode == 0, waited.stderr
        doc = json.loads(manifest.read_text())
        assert doc["pid"] == process.pid and len(doc["run_id"]) == 32
        url = run_mockfgt("manifest", str(manifest), "get", "fgt-healthy", "url")
        assert url.stdout.strip() == next(d["url"] for d in doc["devices"] if d["name"] == "fgt-healthy")
        token = run_mockfgt("manifest", str(manifest), "get", "invalid-token", "client.token")
        assert token.returncode == 0 and token.stdout.strip()
        assert run_mockfgt("manifest", str(manifest), "get", "ca_bundle").stdout.strip() == doc["ca_bundle"]
        missing = run_mockfgt("manifest", str(manifest), "get", "fgt-healthy", "nope")
        assert missing.returncode == 1 and "no field 'nope'" in missing.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=seconds(30))
    assert not manifest.exists()


def test_wait_ignores_a_stale_manifest_of_a_dead_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    manifest = tmp_path / "mockfgt.json"
    manifest.write_text(json.dumps({"pid": int(dead.stdout), "run_id": "old", "devices": []}))
    result = run_mockfgt("wait", str(manifest), "--timeout", "0.3")
    assert result.returncode == 1 and "no manifest from a running mockfgt" in result.stderr


def test_wait_ends_at_once_when_the_server_dies(tmp_path):
    manifest = tmp_path / "mockfgt.json"
    manifest.write_text("{}")  # a stale file that serve removes before failing
    process = subprocess.Popen([*mockfgt_command(), "serve", "--scenario", "no-such-scenario",
                                "--manifest", str(manifest), "--certs-dir", str(tmp_path / "certs")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
    result = run_mockfgt("wait", str(manifest), "--pid", str(process.pid), "--timeout", str(seconds(60)))
    process.wait(timeout=seconds(30))
    assert result.returncode == 1 and f"process {process.pid} ended" in result.stderr
    assert not manifest.exists()


def test_a_serve_started_with_sigint_ignored_keeps_ignoring_it(tmp_path):
    """`mockfgt serve &` in a script, or nohup: SIGINT stays ignored, as for any program; SIGTERM stops it."""
    process = subprocess.Popen([*mockfgt_command(), "serve", "--port", "0", "--certs-dir", str(tmp_path / "certs")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        for line in process.stdout:
            if "Press Ctrl+C to stop." in line:
                break
        process.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)  # still serving: ignored, not half obeyed
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=seconds(30)) == 0
    finally:
        process.kill()
        process.communicate(timeout=seconds(30))


def test_sigterm_under_load_always_stops_serve():
    from stress.sigterm import stop_under_load

    result = stop_under_load(runs=3, clients=8)
    assert result.missed == 0 and result.tracebacks == 0, result.line()
    assert result.requests > 0  # the devices were busy when the signal came
