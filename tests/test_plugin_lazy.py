"""The pytest plugin is free until used: installing mockfgt must not slow other projects' test runs.

pytest imports ``mockfgt.pytest_plugin`` (entry point ``pytest11``) in every session of an environment
where mockfgt is installed. These tests run new interpreters and look at ``sys.modules``: what got
imported, not how long it took (``make bench`` measures the time).
"""

from __future__ import annotations

import json
import subprocess
import sys

from deadlines import seconds
from run_cli import cli_env

pytest_plugins = ["pytester"]

#: What a session that uses no mockfgt fixture must not pay for.
HEAVY = ("werkzeug", "flask", "jinja2", "trustme", "cryptography", "mockfgt.device", "mockfgt.listener",
         "mockfgt.tls", "mockfgt.castore", "mockfgt.scenario", "mockfgt.harness", "mockfgt.fortios",
         "mockfgt.fortimanager")

LOADED = """
import json, sys
print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {names!r}))))
"""


def _heavy_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules of ``heavy`` (and their submodules) that running ``code`` in a new interpreter imported."""
    done = subprocess.run([sys.executable, "-c", code + LOADED.format(names=heavy)], capture_output=True,
                          text=True, timeout=seconds(30), env=cli_env(), check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_plugin_imports_nothing_heavy():
    assert _heavy_after("import mockfgt.pytest_plugin") == []


def test_importing_mockfgt_imports_nothing_heavy():
    assert _heavy_after("import mockfgt") == []


def test_the_lazy_names_still_load():
    # The other side of laziness: the public names are there when asked for.
    assert "mockfgt.device" in _heavy_after("import mockfgt\nmockfgt.FortiGate")


NO_FIXTURE = """
import sys

HEAVY = {heavy!r}


def test_nothing_heavy_was_imported():
    assert "mockfgt.pytest_plugin" in sys.modules  # the plugin is loaded...
    loaded = [m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []  # ...and costs nothing


def test_with_a_parameter(x=1):
    assert x == 1
"""


def test_a_session_without_mockfgt_fixtures_loads_no_machinery(pytester, monkeypatch):
    # Only this plugin, as the entry point would load it (other installed plugins may import Werkzeug).
    pytester.makepyfile(test_plain=NO_FIXTURE.format(heavy=HEAVY))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("-p", "mockfgt.pytest_plugin", "-q", "-p", "no:cacheprovider",
                                           timeout=seconds(60))
    result.assert_outcomes(passed=2)


def test_reading_the_catalogue_loads_neither_flask_nor_the_tls_machinery():
    # `mockfgt scenarios`, `scenarios check` and catalogue_device's parametrisation read scenarios only.
    machinery = tuple(h for h in HEAVY if h not in ("mockfgt.scenario", "mockfgt.fortios", "mockfgt.fortimanager"))
    code = "import mockfgt.scenario as s\nassert len(s.catalogue()) > 30"
    assert _heavy_after(code, (*machinery, "mockfgt.fortios.wire", "mockfgt.fortimanager.wire")) == []


def test_a_manifest_read_loads_no_device_machinery(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text('{"ca_bundle": "/x/ca.pem", "devices": []}')
    code = f"from mockfgt import cli\nassert cli.main(['manifest', {str(manifest)!r}, 'get', 'ca_bundle']) == 0"
    assert _heavy_after(code) == []
