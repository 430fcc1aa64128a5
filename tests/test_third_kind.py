"""A third device kind, defined only under tests/kinds (mockfgt_toykind.py, four scenarios) and found
through the ``mockfgt.kinds`` entry point, runs through everything mockfgt offers without a line of
mockfgt/ knowing it: ``mockfgt serve`` and its manifest, ``mockfgt diagnose``, the pytest plugin's
catalogue fixture and the conformance matrix. Each runs as a process whose PYTHONPATH holds the kind's
folder (a dist-info folder there is a distribution to importlib.metadata)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from deadlines import seconds
from run_cli import cli_env, mockfgt_command

KINDS = Path(__file__).parent / "kinds"
SCENARIOS = ["toy-expired-cert", "toy-healthy", "toy-key-regenerated", "toy-read-only"]


def env(**extra: str) -> dict[str, str]:
    return cli_env(PYTHONPATH=str(KINDS), MOCKFGT_SCENARIOS=str(KINDS / "scenarios"), **extra)


def mockfgt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*mockfgt_command(), *args], capture_output=True, text=True, env=env(),
                          timeout=seconds(120))


def test_the_catalogue_lists_the_toy_kind():
    listed = json.loads(mockfgt("scenarios", "--json").stdout)
    toys = {sc["name"]: sc for sc in listed if sc["kind"] == "toybox"}
    assert sorted(toys) == SCENARIOS and toys["toy-key-regenerated"]["expect"] == "202001"


def test_serve_manifest_and_diagnose(tmp_path):
    manifest = tmp_path / "run" / "mockfgt.json"
    serve = subprocess.Popen([*mockfgt_command(), "serve", "--scenario", "toy-healthy", "--scenario",
                              "toy-key-regenerated", "--manifest", str(manifest), "--certs-dir", str(tmp_path / "certs")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        ready = mockfgt("wait", str(manifest), "--pid", str(serve.pid), "--timeout", str(seconds(60)))
        assert ready.returncode == 0, ready.stderr
        devices = {d["scenario"]: d for d in json.loads(manifest.read_text())["devices"]}
        healthy, stale = devices["toy-healthy"], devices["toy-key-regenerated"]
        assert healthy["kind"] == "toybox" and stale["client"]["token"] != stale["token"]

        answer = requests.get(f"{healthy['url']}/api/status", headers={"Authorization": f"Bearer {healthy['token']}"},
                              verify=healthy["ca_bundle"], timeout=seconds(10))
        assert answer.status_code == 200 and answer.json()["model"] == "Toybox"

        def diagnose(device: dict, token: str) -> tuple[int, dict]:
            done = mockfgt("diagnose", device["url"], "--kind", "toybox", f"--token={token}", "--ca",
                           device["ca_bundle"], "--write-check", "--json", "--timeout", str(seconds(10)))
            return done.returncode, json.loads(done.stdout)

        status, report = diagnose(healthy, healthy["client"]["token"])
        assert (status, report["verdict"]) == (0, "ok"), report
        assert "Toybox" in json.dumps(report["steps"])  # the kind's status details, its display name
        status, report = diagnose(stale, stale["client"]["token"])
        assert (status, report["verdict"], report["deciding_step"]) == (1, "202001", "authentication"), report
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=seconds(30))
    assert serve.returncode == 0 and not manifest.exists()


def test_the_catalogue_fixture_runs_the_toy_scenarios(tmp_path):
    (tmp_path / "test_agent_on_toys.py").write_text(
        "import pytest\n"
        "from mockfgt.probe import probe\n\n\n"
        "@pytest.mark.mockfgt_catalogue(kind='toybox')\n"
        "def test_reference_agent(catalogue_device):\n"
        "    assert probe(catalogue_device.client, timeout=30).code == catalogue_device.expect\n"
        "    catalogue_device.remedy()\n"
        "    assert probe(catalogue_device.client, timeout=30).code == 'ok'\n"
    )
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, env=env(), timeout=seconds(180), cwd=tmp_path)
    assert done.returncode == 0 and "4 passed" in done.stdout, done.stdout + done.stderr


def test_the_conformance_matrix_covers_the_toy_kind():
    done = mockfgt("conformance", *(arg for name in SCENARIOS for arg in ("--scenario", name)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "44 of 44 cells pass" in done.stdout
