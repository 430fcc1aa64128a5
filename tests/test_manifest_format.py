"""Manifest format 1: what `mockfgt serve` writes matches the JSON Schema the package ships, and
says what an agent in any language needs: its whole configuration (``agent``), the device's own keys
apart from the agent's (``device``), which step reveals the fault (``exposed_by``) and the code for
the agent as configured (``expect``)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import jsonschema
import pytest

from mockfgt import manifest as manifest_module
from mockfgt.harness import Harness

from deadlines import seconds
from run_cli import cli_env, mockfgt_command


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`mockfgt serve --all` as a process, plus a custom scenario whose agent is configured Insecure."""
    work = tmp_path_factory.mktemp("manifest")
    custom = work / "custom"
    custom.mkdir()
    (custom / "lab-insecure-agent.toml").write_text(textwrap.dedent("""\
        extends = "expired-cert"
        summary = "The lab agent runs with Insecure on against an expired certificate"
        [client]
        insecure = true
        """))
    path = work / "mockfgt.json"
    server = subprocess.Popen([*mockfgt_command(), "serve", "--all", "--scenario", str(custom), "--manifest", str(path),
                               "--certs-dir", str(work / "certs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=cli_env())
    try:
        subprocess.run([*mockfgt_command(), "wait", str(path), "--pid", str(server.pid), "--timeout", str(seconds(30))],
                       check=True, env=cli_env(), capture_output=True)
        document = json.loads(path.read_text())
        document["_path"] = str(path)  # for the tests that hand the file to a command; not in the file
        yield document
    finally:
        server.terminate()
        server.wait(seconds(20))


def test_the_manifest_matches_the_shipped_schema(served):
    on_disk = {k: v for k, v in served.items() if k != "_path"}
    jsonschema.Draft202012Validator(manifest_module.schema()).validate(on_disk)
    assert served["format"] == 1


def test_the_agent_document_is_what_check_gives_an_agent(served):
    """One description of the agent: the manifest's ``agent`` has the fields of check's settings file."""
    from mockfgt.check import AGENT_FIELDS

    for entry in served["devices"]:
        assert set(AGENT_FIELDS) <= set(entry["agent"]), entry["name"]


def by_name(served, name):
    return next(d for d in served["devices"] if d["name"] == name)


def test_device_keys_are_apart_from_the_agents(served):
    """On token-regenerated the agent holds the stale key; the device's valid one is device.token."""
    entry = by_name(served, "token-regenerated")
    assert entry["agent"]["token"] and entry["device"]["token"]
    assert entry["agent"]["token"] != entry["device"]["token"]
    assert entry["token"] == entry["device"]["token"]  # the format 0 name, kept


def test_expect_is_for_the_agent_as_configured(served):
    """A custom scenario whose agent runs with Insecure: expect is the Insecure expectation."""
    entry = by_name(served, "lab-insecure-agent")
    assert entry["agent"]["insecure"] is True and entry["agent"]["ca"] is None
    assert entry["expect"] == "ok" and entry["exposed_by"] is None
    assert by_name(served, "expired-cert")["expect"] == "202003"


@pytest.mark.parametrize(("name", "step"), [
    ("fgt-healthy", None), ("port-closed", "connect"), ("reset-on-connect", "connect"), ("expired-cert", "tls"),
    ("tls-stall", "tls"), ("password-wrong", "login"), ("invalid-token", "read"), ("response-stall", "read"),
    ("read-only-profile", "write"), ("fmg-login-failed", "login"),
])
def test_exposed_by_names_the_step(served, name, step):
    assert by_name(served, name)["exposed_by"] == step


def test_the_banner_says_what_the_configured_agent_reports(tmp_path):
    scenario = tmp_path / "lab.toml"
    scenario.write_text('extends = "expired-cert"\nsummary = "Insecure lab agent"\n[client]\ninsecure = true\n')
    with Harness(certs_dir=tmp_path / "certs", control_port=None) as harness:
        device = harness.add(scenario)
        harness.start()
        from mockfgt.serve import describe

        text = describe(device)
    assert "A correct client (this agent: Insecure) reports: ok" in text


def test_a_newer_format_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"format": 2, "devices": []}))
    with pytest.raises(manifest_module.ManifestError, match="format 2 is newer than this mockfgt reads"):
        manifest_module.read(path)


# -- diagnose agrees with the catalogue, given the manifest's agent ---------------------------------
def test_diagnose_as_each_manifest_agent_reports_what_the_catalogue_expects(served):
    """diagnose, probing as the agent each manifest entry describes, reaches the entry's expect (or
    its also_acceptable code) on every device of the catalogue; the stalls with a 1 s timeout."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from mockfgt.agent import Agent
    from mockfgt.diagnose import diagnose

    def verdict(entry):  # 1 s where the device stalls on purpose; elsewhere a deadline load cannot reach
        stalls = entry["expect"] == "202004"
        agent = replace(Agent.from_document(entry["agent"]), timeout=1.0 if stalls else seconds(5))
        return entry["name"], diagnose(agent).verdict

    with ThreadPoolExecutor(4) as pool:
        verdicts = dict(pool.map(verdict, served["devices"]))
    wrong = {entry["name"]: (verdicts[entry["name"]], entry["expect"]) for entry in served["devices"]
             if verdicts[entry["name"]] not in (entry["expect"], entry.get("also_acceptable"))}
    assert not wrong, f"diagnose verdict, expect: {wrong}"


def diagnose_cli(*args: str):
    return subprocess.run([*mockfgt_command(), "diagnose", *args], capture_output=True, text=True,
                          timeout=seconds(60), env=cli_env())


def test_diagnose_from_manifest_checks_writes_as_the_agent_does(served):
    done = diagnose_cli("--from-manifest", served["_path"], "read-only-profile")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Verdict: 202002" in done.stdout


def test_diagnose_says_when_writes_were_not_checked(served):
    entry = by_name(served, "read-only-profile")
    agent = entry["agent"]
    done = diagnose_cli(agent["url"], f"--token={agent['token']}", f"--ca={agent['ca']}")
    assert done.returncode == 0
    assert "Verdict: ok for reads; writes were not checked (add --write-check to check them)" in done.stdout
    checked = diagnose_cli(agent["url"], f"--token={agent['token']}", f"--ca={agent['ca']}", "--write-check")
    assert checked.returncode == 1 and "Verdict: 202002" in checked.stdout


def test_diagnose_names_the_timeout_it_was_given(served):
    done = diagnose_cli("--from-manifest", served["_path"], "response-stall", "--timeout", "2")
    assert "Verdict: 202004" in done.stdout
    assert "within the agent's timeout (2 s)" in done.stdout and "(10 s)" not in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--from-manifest", "{path}", "no-such-device"), "no device 'no-such-device'"),
    (("https://127.0.0.1:1", "--from-manifest", "{path}", "fgt-healthy"), "either a URL or --from-manifest"),
    ((), "give the device's URL"),
])
def test_diagnose_manifest_usage_errors(served, args, message):
    done = diagnose_cli(*(a.replace("{path}", served["_path"]) for a in args))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
