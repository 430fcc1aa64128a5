"""The scenario engine: loading, extends, validation messages, user folders, the CLI, the wheel.

A broken scenario file must be rejected with a message that names the file, the key and what is
allowed there, both from Python and from ``mockfgt scenarios check``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mockfgt
from mockfgt import scenario as engine

from fortios_client import RequestsApi, write_scenario
from run_cli import run_mockfgt

REPO = Path(__file__).resolve().parents[1]
HEAD = 'extends = "fgt-healthy"\nsummary = "broken on purpose"\nexpect = "ok"\n'

# name -> (file body, the key the error must name, words the message must contain)
BROKEN = {
    "syntax-error": ('summary = "x"\nexpect = "ok"\n[tls\n', "", ["not valid TOML", "line 3"]),
    "unknown-key": ('extends = "fgt-healthy"\nsumary = "x"\nexpect = "ok"\n', "sumary",
                    ["unknown key", "allowed here", "summary", "did you mean 'summary'"]),
    "unknown-nested-key": (HEAD + "[tls]\nversion = ['TLSv1.2']\n", "tls.version",
                           ["unknown key", "versions", "did you mean 'versions'"]),
    "wrong-type": (HEAD + '[tls]\nversions = "TLSv1.2"\n', "tls.versions", ["expected a list, got a string"]),
    "wrong-type-bool": (HEAD + '[client]\ninsecure = "yes"\n', "client.insecure",
                        ["expected true or false, got a string"]),
    "bad-choice": (HEAD + '[tls]\ncertificate = "expird"\n', "tls.certificate",
                   ["'expird' is not allowed", "allowed: valid", "did you mean 'expired'"]),
    "bad-code": ('extends = "fgt-healthy"\nsummary = "x"\nexpect = 202009\n', "expect",
                 ["not an expected code", "202001", "ok"]),
    "unknown-op": (HEAD + 'setup = [{ op = "regenerate", user = "agent" }]\n', "setup[0].op",
                   ["'regenerate' is not a known operation", "allowed", "did you mean 'regenerate-key'"]),
    "op-missing-field": (HEAD + 'setup = [{ op = "set-access", profile = "agent_rw" }]\n', "setup[0].group",
                         ["is required"]),
    "op-unknown-user": (HEAD + 'setup = [{ op = "regenerate-key", user = "agnet" }]\n', "setup[0].user",
                        ["'agnet' is not an API user", "known: agent", "did you mean 'agent'"]),
    "unknown-profile": (HEAD + '[[device.api_users]]\nname = "agent"\naccprofile = "agent_rx"\n',
                        "device.api_users[0].accprofile", ["not a profile", "super_admin", "did you mean 'agent_rw'"]),
    "bad-version": (HEAD + '[device]\nversion = "seven"\n', "device.version", ["not a FortiOS version like 7.4.5"]),
    "out-of-range": (HEAD + "[device.settings]\nadmin_lockout_threshold = 11\n",
                     "device.settings.admin_lockout_threshold", ["out of range 0..10"]),
    "allow-all-trusthost": (HEAD + '[[device.api_users]]\nname = "agent"\ntrusthosts = ["0.0.0.0/0"]\n',
                            "device.api_users[0].trusthosts[0]", ["allow-all", "not allowed"]),
    "refused-seed": (HEAD + '[device.cmdb]\n"firewall/address" = [{ name = "a", subnet = "300.1.1.1/32" }]\n',
                     "device.cmdb.firewall/address[0]", ["refuses this object", "-8", "Invalid IP Address"]),
    "unknown-table": (HEAD + '[device.cmdb]\n"firewall/adress" = []\n', "device.cmdb.firewall/adress",
                      ["unknown table", "did you mean 'firewall/address'"]),
    "unknown-kind": ('summary = "x"\nexpect = "ok"\n[device]\nkind = "fortiswitch"\n', "device.kind",
                     ["'fortiswitch' is not a device kind", "allowed: fortigate"]),
    "missing-summary": ('expect = "ok"\n', "summary", ["is required"]),
    "extends-missing-file": ('extends = "fgt-healthi"\nsummary = "x"\nexpect = "ok"\n', "extends",
                             ["no scenario named 'fgt-healthi'", "did you mean 'fgt-healthy'"]),
}


def broken_file(folder: Path, name: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(BROKEN[name][0])
    return path


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_name_file_key_and_what_is_allowed(tmp_path, name):
    path = broken_file(tmp_path, name)
    _, key, words = BROKEN[name]
    with pytest.raises(mockfgt.ScenarioError) as caught:
        engine.load(path)
    error = caught.value
    assert error.source == str(path) and error.key == key
    message = str(error)
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message, message


def test_circular_extends_names_the_loop(tmp_path):
    (tmp_path / "loop-a.toml").write_text('extends = "loop-b"\nsummary = "a"\nexpect = "ok"\n')
    (tmp_path / "loop-b.toml").write_text('extends = "loop-a"\nsummary = "b"\nexpect = "ok"\n')
    with pytest.raises(mockfgt.ScenarioError) as caught:
        engine.load(tmp_path / "loop-a.toml")
    assert caught.value.key == "extends"
    assert "circular: loop-a -> loop-b -> loop-a" in str(caught.value)


def test_extends_must_name_a_scenario(tmp_path):
    path = tmp_path / "odd.toml"
    path.write_text('extends = 5\nsummary = "x"\nexpect = "ok"\n')
    with pytest.raises(mockfgt.ScenarioError, match="extends: expected the name of another scenario"):
        engine.load(path)


def test_unknown_names_suggest_the_closest(tmp_path):
    with pytest.raises(mockfgt.ScenarioError, match="did you mean 'expired-cert'"):
        engine.load("expird-cert")
    with pytest.raises(mockfgt.ScenarioError, match="no such scenario file"):
        engine.load(tmp_path / "absent.toml")


def test_extends_changes_one_thing(tmp_path):
    child = engine.load(write_scenario(tmp_path, "child", '[tls]\ncertificate = "expired"\n'))
    parent = engine.load("fgt-healthy")
    assert child.tls == {**parent.tls, "certificate": "expired"}
    assert (child.device, child.client, child.connection, child.setup) == (parent.device, parent.client,
                                                                           parent.connection, parent.setup)
    assert child.summary == "child (test)" and child.name == "child"


def test_extends_merges_tables_and_replaces_lists(tmp_path):
    child = engine.load(write_scenario(tmp_path, "child", """
        [device]
        hostname = "edge-1"
        external_resources = ["feed-b"]
    """))
    assert child.device["hostname"] == "edge-1"
    assert child.device["serial"] == "FGVM02TM24000001"  # from the parent table
    assert child.device["external_resources"] == ["feed-b"]  # a list replaces


def test_extends_finds_a_sibling_file_first(tmp_path):
    write_scenario(tmp_path, "base", '[device]\nhostname = "sibling-base"\n')
    child = engine.load(write_scenario(tmp_path, "leaf", "", extends="base"))
    assert child.device["hostname"] == "sibling-base"


def test_every_catalogue_scenario_round_trips_through_extends(tmp_path):
    """A file that only extends a catalogue scenario behaves exactly like it."""
    for scenario in mockfgt.catalogue():
        path = tmp_path / f"copy-of-{scenario.name}.toml"
        path.write_text(f'extends = "{scenario.name}"\n')
        copy = engine.load(path)
        assert (copy.expect, copy.tls, copy.device, copy.remedy) == (scenario.expect, scenario.tls,
                                                                     scenario.device, scenario.remedy)


# -- user scenarios -----------------------------------------------------------------------------
def test_user_scenarios_from_a_folder(tmp_path, make_fortigate):
    write_scenario(tmp_path, "branch-office", '[device]\nhostname = "branch-1"\n')
    fgt = make_fortigate("branch-office", scenario_dirs=[tmp_path])
    assert fgt.scenario.source == str(tmp_path / "branch-office.toml")
    assert RequestsApi(fgt).get("monitor/system/status").json()["results"]["hostname"] == "branch-1"


def test_user_scenarios_from_the_environment(tmp_path, monkeypatch):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir(), second.mkdir()
    write_scenario(first, "from-env", '[device]\nhostname = "env-1"\n')
    write_scenario(second, "from-env", '[device]\nhostname = "env-2"\n')
    write_scenario(second, "only-in-two", "")
    monkeypatch.setenv("MOCKFGT_SCENARIOS", f"{first}:{second}")
    assert engine.load("from-env").device["hostname"] == "env-1"  # earlier folders win
    names = [sc.name for sc in mockfgt.catalogue()]
    assert {"from-env", "only-in-two", "fgt-healthy"} <= set(names)
    assert names.count("from-env") == 1


def test_a_user_scenario_can_shadow_a_catalogue_name(tmp_path, monkeypatch):
    (tmp_path / "fgt-healthy.toml").write_text('summary = "local healthy"\nexpect = "ok"\n')
    monkeypatch.setenv("MOCKFGT_SCENARIOS", str(tmp_path))
    assert engine.load("fgt-healthy").summary == "local healthy"


# -- the command line ---------------------------------------------------------------------------
def test_cli_lists_the_catalogue():
    result = run_mockfgt("scenarios")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["scenario", "kind", "expect", "insecure"]
    listed = {line.split()[0] for line in lines[1:]}
    assert {sc.name for sc in mockfgt.catalogue()} <= listed


def test_cli_lists_as_json_with_user_scenarios(tmp_path):
    write_scenario(tmp_path, "mine", "")
    result = run_mockfgt("scenarios", "--json", MOCKFGT_SCENARIOS=str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mine"]["source"] == str(tmp_path / "mine.toml")
    assert rows["expired-cert"] == {"name": "expired-cert", "kind": "fortigate", "expect": "202003",
                                    "expect_insecure": "ok", "shown_by": "status", "summary": rows["expired-cert"]["summary"],
                                    "source": rows["expired-cert"]["source"]}


def test_cli_show_explains_a_scenario():
    result = run_mockfgt("scenarios", "show", "token-regenerated")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("token-regenerated (fortigate)")
    assert "Expect: 202001" in out and "Setup: regenerate-key(user=agent)" in out
    assert "Remedy: Update the agent with the new key." in out


def test_cli_show_unknown_name_fails_with_a_suggestion():
    result = run_mockfgt("scenarios", "show", "expird-cert")
    assert result.returncode == 2
    assert "did you mean 'expired-cert'" in result.stderr and "Traceback" not in result.stderr


def test_cli_check_exit_codes(tmp_path):
    good = write_scenario(tmp_path, "good", "")
    ok = run_mockfgt("scenarios", "check", str(good), str(REPO / "scenarios" / "expired-cert.toml"))
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.count("ok   ") == 2
    bad = broken_file(tmp_path, "bad-choice")
    failed = run_mockfgt("scenarios", "check", str(good), str(bad))
    assert failed.returncode == 1
    assert f"FAIL {bad}: tls.certificate: 'expird' is not allowed" in failed.stdout
    assert f"ok   {good}" in failed.stdout and "Traceback" not in failed.stdout + failed.stderr


def test_cli_check_reports_every_broken_file(tmp_path):
    files = [str(broken_file(tmp_path, name)) for name in ("syntax-error", "unknown-op", "extends-missing-file")]
    result = run_mockfgt("scenarios", "check", *files)
    assert result.returncode == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [f"FAIL {f}" for f in files]


def test_cli_check_the_whole_catalogue():
    result = run_mockfgt("scenarios", "check", *sorted(str(p) for p in (REPO / "scenarios").glob("*.toml")))
    assert result.returncode == 0, result.stdout


def test_the_documented_example_scenario_works(tmp_path, make_fortigate):
    text = (REPO / "docs" / "fortios.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "branch-example.toml"
    path.write_text(example)
    fgt = make_fortigate(path)
    monitor = RequestsApi(fgt, token=fgt.state.api_users["monitor"].token)
    names = [r["name"] for r in monitor.get("cmdb/firewall/address").json()["results"]]
    assert "printer" in names and "all" in names and "guest-net" not in names  # guest-net is in vdom guest
    assert monitor.post("cmdb/firewall/address", json={"name": "x"}).status_code == 403
    guest = RequestsApi(fgt).get("cmdb/firewall/address/guest-net", params={"vdom": "guest"}).json()
    assert guest["results"][0]["subnet"] == "192.168.50.0 255.255.255.0"
    assert RequestsApi(fgt).get("monitor/system/status").json()["version"] == "v7.2.6"


@pytest.mark.parametrize("name", ["x" * 300, "bad name", "-leading-dash", "kundé"])
def test_a_name_that_is_not_a_scenario_name_is_refused(name):
    with pytest.raises(mockfgt.ScenarioError, match="not a scenario name"):
        mockfgt.load_scenario(name)


def test_scenarios_check_of_an_empty_folder_fails(tmp_path):
    result = run_mockfgt("scenarios", "check", str(tmp_path))
    assert result.returncode == 1 and "no scenario files" in result.stdout
