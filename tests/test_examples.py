"""The example agents under examples/ pass ``mockfgt check`` on the whole catalogue, in both modes.

They are what a user writing an agent in another language starts from, so they must stay correct:
each is run as a user runs it, through the installed ``mockfgt check``, against every scenario with
Insecure on and off where that changes the answer. Node.js and curl are required; Go runs where ``go``
is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deadlines import seconds
from run_cli import run_mockfgt

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def check_everything(*agent: str, cwd: Path | None = None) -> dict:
    done = run_mockfgt("check", "--timeout", str(seconds(1)), "--json", "--", *agent, timeout=seconds(240))
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    failures = [line for run in report["runs"] for line in run["explanation"]]
    assert report["failed"] == 0, "\n".join(failures)
    return report


def test_the_node_agent_passes_every_scenario():
    assert shutil.which("node"), "Node.js is needed for the example agents (Debian: apt install nodejs)"
    report = check_everything("node", str(EXAMPLES / "node" / "agent.js"), "{settings}")
    assert report["skipped"] == 0 and report["passed"] == len(report["runs"])


def test_the_curl_agent_passes_every_scenario_it_supports():
    report = check_everything("sh", str(EXAMPLES / "curl" / "agent.sh"))
    skipped = {(r["scenario"], r["skip_reason"]) for r in report["runs"] if r["verdict"] == "skipped"}
    assert skipped == {("fmg-not-super-user", "rewriting trusted hosts needs a JSON parser")}


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed (.ci/run installs Debian's golang-go)")
def test_the_go_agent_passes_every_scenario(tmp_path):
    binary = tmp_path / "agent"
    build = subprocess.run(["go", "build", "-o", str(binary), "."], cwd=EXAMPLES / "go", capture_output=True,
                           text=True, timeout=seconds(300))
    assert build.returncode == 0, build.stderr
    report = check_everything(str(binary), "{settings}")
    assert report["skipped"] == 0 and report["passed"] == len(report["runs"])
