"""Every catalogue scenario through the CLI: `mockfgt serve --scenario X` as a real process, its banner,
and the curl line it prints, run as printed. The outcome must be the scenario's fault.

All servers start at once (one process each, as users start them side by side), then each scenario's
curl line runs; at the end every server gets SIGTERM and must stop cleanly without a traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from mockfgt import codes
from mockfgt.conformance import curl_code
from mockfgt.flows import Call, judge

from deadlines import seconds
from run_cli import cli_env, run_mockfgt
from test_cli import Served

CATALOGUE = json.loads(run_mockfgt("scenarios", "--json").stdout)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    certs = tmp_path_factory.mktemp("every-scenario") / "certs"
    pending = {sc["name"]: Served("--scenario", sc["name"], "--port", "0", "--certs-dir", str(certs), wait=False)
               for sc in CATALOGUE}
    started = {}
    try:
        for name, served in pending.items():
            started[name] = served.wait_ready()
        yield started
    finally:
        for served in pending.values():
            served.kill()


def transfers(argv: list[str]) -> list[list[str]]:
    """The transfers of one curl command: its arguments split at --next (the curl word dropped)."""
    groups: list[list[str]] = [[]]
    for arg in argv[1:]:
        groups.append([]) if arg == "--next" else groups[-1].append(arg)
    return groups


def outcome(kind: str, shown_by: str, argv: list[str]) -> str:
    """What a correct client reports for the last transfer of a curl command, as the agent judges it."""
    *before, last = transfers(argv)
    command = [argv[0]]
    for group in before:  # a login whose cookies the last transfer carries: its answer is not the verdict
        command += [*group, "--silent", "--show-error", "--output", "/dev/null", "--next"]
    command += [*last, "--silent", "--show-error", "--write-out", "\n%{http_code}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds(60), env=cli_env())
    if result.returncode != 0:
        return curl_code(result.returncode, result.stderr)
    body, status = result.stdout.rsplit("\n", 1)
    data = last[last.index("--data") + 1] if "--data" in last else None
    method = last[last.index("-X") + 1] if "-X" in last else ("POST" if data else "GET")
    jsonrpc = json.loads(data) if kind == "fortimanager" and data else None
    call = Call(shown_by, method, urlsplit(last[-1]).path, jsonrpc)
    return judge(kind, call, int(status), body.encode())


@pytest.fixture(scope="module")
def stalled(servers, curl):
    """The outcomes of the curl lines of the devices that stall on purpose, started together at once.

    Each waits out the line's own --max-time (the agent's 10 s timeout is what the line shows), so
    they wait side by side while the other scenarios' lines run, not one after another."""
    stalling = [sc for sc in CATALOGUE if sc["expect"] == codes.TIMEOUT]
    with ThreadPoolExecutor(max(1, len(stalling))) as pool:
        yield {sc["name"]: pool.submit(outcome, sc["kind"], sc["shown_by"], [curl, *servers[sc["name"]].curl_line()[1:]])
               for sc in stalling}


@pytest.mark.parametrize("scenario", CATALOGUE, ids=[sc["name"] for sc in CATALOGUE])
def test_the_printed_curl_line_shows_the_fault(servers, stalled, scenario, curl):
    served = servers[scenario["name"]]
    argv = served.curl_line()
    assert argv[0] == "curl"
    # curl's TLS stack may accept what a strict one refuses, where the scenario says so (also_acceptable)
    acceptable = (scenario["expect"], scenario.get("also_acceptable"))
    if scenario["name"] in stalled:
        reported = stalled[scenario["name"]].result()
    else:
        reported = outcome(scenario["kind"], scenario["shown_by"], [curl, *argv[1:]])
    assert reported in acceptable, served.banner
    assert f"A correct client reports: {scenario['expect']}" in "\n".join(served.banner)
    if scenario.get("also_acceptable"):
        assert f"Also acceptable: {scenario['also_acceptable']}" in "\n".join(served.banner)


def test_every_server_stops_cleanly(servers):
    for name, served in servers.items():
        code, out, err = served.stop(signal.SIGTERM)
        assert code == 0 and "Traceback" not in err, (name, err)
        assert "mockfgt: stopped" in out, name
