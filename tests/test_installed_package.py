"""mockfgt as users receive it: a wheel built from this checkout, installed (not editable) into a new
virtual environment outside the checkout, run from a folder outside it.

Nothing here imports the checkout's copy: every command runs the venv's ``mockfgt`` or its Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from deadlines import seconds
from run_cli import cli_env
from test_cli import Served, run_curl

CHECKOUT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=seconds(300), cwd=cwd,
                          env=cli_env(PIP_DISABLE_PIP_VERSION_CHECK="1"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a clean copy of what the sdist holds: no build/ folder or byte code of the
    checkout's can slip into it, and the build never writes into the checkout (other tests run there)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(CHECKOUT / "mockfgt", source / "mockfgt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(CHECKOUT / "scenarios", source / "scenarios")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", work / "dist", source, cwd=work)
    assert built.returncode == 0, built.stderr
    (found,) = (work / "dist").glob("mockfgt-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The bin folder of a fresh venv holding the wheel (and pytest, requests for the fixture check)."""
    work = tmp_path_factory.mktemp("installed")
    assert CHECKOUT not in work.parents
    # No pip of its own (ensurepip costs seconds): this interpreter's pip installs into it.
    made = _run(sys.executable, "-m", "venv", "--without-pip", work / "venv", cwd=work)
    assert made.returncode == 0, made.stderr
    bin_dir = work / "venv" / "bin"
    pip = _run(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--quiet", wheel,
               "pytest", "requests", cwd=work)
    assert pip.returncode == 0, pip.stderr
    return bin_dir


def test_the_wheel_ships_the_catalogue_and_every_subpackage(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("mockfgt/scenarios/") and n.endswith(".toml")}
    assert shipped == {p.name for p in (CHECKOUT / "scenarios").glob("*.toml")}
    assert "mockfgt/fortios/system.py" in names and "mockfgt/fortimanager/wire.py" in names
    assert "mockfgt/py.typed" in names


def in_venv(bin_dir: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(args, capture_output=True, text=True, timeout=seconds(120), cwd=cwd,
                          env=cli_env(PATH=path, **env))


def test_the_installed_package_is_not_the_checkout(installed, tmp_path):
    where = in_venv(installed, str(installed / "python"), "-c", "import mockfgt; print(mockfgt.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout


def test_the_installed_package_is_typed_and_versioned_once(installed, tmp_path):
    """py.typed ships (PEP 561), and the distribution's version is mockfgt.__version__."""
    script = ("import importlib.metadata as m, pathlib, mockfgt; "
              "print(pathlib.Path(mockfgt.__file__).with_name('py.typed').is_file(), "
              "m.version('mockfgt') == mockfgt.__version__)")
    checked = in_venv(installed, str(installed / "python"), "-c", script, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.split() == ["True", "True"], checked.stdout


def test_the_installed_catalogue_lists_every_scenario(installed, tmp_path):
    listed = in_venv(installed, str(installed / "mockfgt"), "scenarios", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {sc["name"] for sc in json.loads(listed.stdout)}
    assert names == {p.stem for p in (CHECKOUT / "scenarios").glob("*.toml")}
    assert in_venv(installed, str(installed / "python"), "-m", "mockfgt", "scenarios", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("scenario", ["fgt-healthy", "fmg-healthy"])
def test_the_installed_command_serves_and_its_curl_line_works(installed, tmp_path, scenario, curl, monkeypatch):
    monkeypatch.chdir(tmp_path)
    served = Served("--scenario", scenario, "--port", "0", "--certs-dir", str(tmp_path / "certs"),
                    command=[str(installed / "mockfgt")])
    try:
        status, body = run_curl(curl, served.curl_line())
        assert status == 200
        if scenario == "fmg-healthy":
            assert json.loads(body)["result"][0]["status"]["code"] == 0
        else:
            assert json.loads(body)["status"] == "success"
    finally:
        served.kill()


def test_the_installed_fixtures_work_in_a_users_project(installed, tmp_path):
    (tmp_path / "test_agent.py").write_text(textwrap.dedent('''
        import pytest, requests

        STATUS = "/api/v2/monitor/system/status"

        def test_fortigate(fortigate):
            headers = {"Authorization": f"Bearer {fortigate.token}"}
            assert requests.get(fortigate.url + STATUS, headers=headers, verify=fortigate.ca_bundle).ok

        def test_fortimanager(fortimanager):
            body = {"id": 1, "method": "get", "params": [{"url": "/sys/status"}]}
            answer = requests.post(fortimanager.url + "/jsonrpc", json=body, verify=fortimanager.ca_bundle,
                                   headers={"Authorization": f"Bearer {fortimanager.token}"}).json()
            assert answer["result"][0]["status"]["code"] == 0

        def test_make_fortigate(make_fortigate):
            fgt = make_fortigate("expired-cert")
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(fgt.url + STATUS, verify=fgt.ca_bundle)

        @pytest.mark.mockfgt_catalogue(names=["fgt-healthy", "invalid-token"])
        def test_catalogue(catalogue_device):
            answer = requests.get(catalogue_device.url + STATUS, verify=catalogue_device.ca_bundle,
                                  headers={"Authorization": f"Bearer {catalogue_device.client.token}"})
            assert answer.ok == (catalogue_device.expect == "ok")
    '''))
    result = in_venv(installed, str(installed / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     "test_agent.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout
