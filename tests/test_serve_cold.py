"""A cold `mockfgt serve --all`: every device in the manifest answers as soon as the manifest exists.

The serve process writes its manifest before it has imported the web framework or built the device
kinds' apps (docs/performance.md, cold start); what the first requests need is built right after,
or by the first request itself. So this reads the manifest the moment it appears, polling the file
rather than starting another interpreter, and at once sends the agent's calls to every device and a
call to the control API: no refused connection, no error, every device with its scenario's outcome.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from mockfgt.agent import Agent
from mockfgt.probe import probe

from deadlines import seconds
from run_cli import cli_env, mockfgt_command


def wait_for_file(path, process, limit: float) -> dict:
    """The manifest as soon as it exists (it is written whole, by a rename)."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert process.poll() is None, f"serve exited: {process.communicate()[0]}"
        assert time.monotonic() < deadline, "no manifest"
        time.sleep(0.002)
    return json.loads(path.read_text())


def test_every_device_answers_the_moment_the_manifest_exists(tmp_path):
    manifest = tmp_path / "mockfgt.json"
    server = subprocess.Popen([*mockfgt_command(), "serve", "--all", "--manifest", str(manifest),
                               "--certs-dir", str(tmp_path / "certs")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env())
    try:
        document = wait_for_file(manifest, server, seconds(30))

        def outcome(entry: dict) -> tuple[str, str]:
            stalls = entry["expect"] == "202004"  # 1 s where the device stalls on purpose
            agent = replace(Agent.from_document(entry["agent"]), timeout=1.0 if stalls else seconds(5))
            return entry["name"], probe(agent, timeout=agent.timeout).code

        def control() -> list[str]:
            ask = urllib.request.Request(document["control_url"] + "/devices",
                                         headers={"Authorization": f"Bearer {document['control_token']}"})
            with urllib.request.urlopen(ask, timeout=seconds(5)) as answer:
                return [d["name"] for d in json.loads(answer.read())]

        with ThreadPoolExecutor(8) as pool:
            listed = pool.submit(control)
            codes = dict(pool.map(outcome, document["devices"]))
        wrong = {e["name"]: (codes[e["name"]], e["expect"]) for e in document["devices"]
                 if codes[e["name"]] not in (e["expect"], e.get("also_acceptable"))}
        assert not wrong, f"reported, expected: {wrong}"
        assert listed.result() == [e["name"] for e in document["devices"]]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=seconds(20))
    assert server.returncode == 0, output
    assert "Traceback" not in output, output
