"""pytest fixtures for mockfgt (registered through the ``pytest11`` entry point).

Fixtures, named for what they give:

- ``fortigate``: a healthy mock FortiGate, reset before each test. One server per session (per
  xdist worker), so a test pays for a reset (milliseconds), not for a start.
- ``fortimanager``: the same for a FortiManager.
- ``make_fortigate`` / ``make_fortimanager``: factories for extra devices of any scenario, stopped
  when the test ends: ``fgt = make_fortigate("expired-cert")``.
- ``catalogue_device``: parametrises a test over the scenario catalogue, one run per scenario (ids are
  the scenario names, so ``-k expired`` works). Narrow it with the marker
  ``@pytest.mark.mockfgt_catalogue(kind="fortigate", expect=["202003"], names=[...])`` or the option
  ``--mockfgt-expect=202003``. The device has ``url``, ``token``, ``ca_bundle``, ``client``,
  ``expect``, ``expect_insecure``, ``accepts(code, insecure=False)`` (``expect`` or the row's
  ``also_acceptable``, where the client's TLS stack decides) and ``remedy()``. A phased scenario
  (``phased=True`` in the marker keeps only those) is walked with one agent instance:
  ``for step in catalogue_device.walk_phases(): step.check(agent.run())`` (:mod:`mockfgt.walk`).
- ``mockfgt_ca``: the session's harness CA (``.cert_path`` to trust).

Ports are always ephemeral. Under pytest-xdist every worker starts its own devices, and all workers
of a run share one CA folder: the CA is made once under the folder's lock and loaded by the others,
so a client that trusts it trusts every worker's devices.

Free until used: pytest imports this module in every session of an environment where mockfgt is
installed, so it imports nothing but pytest and :mod:`mockfgt.codes`. The device machinery (Werkzeug,
Flask, trustme, cryptography) loads when a test first asks for a mockfgt fixture, and the catalogue
when a test first asks for ``catalogue_device``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from .codes import CODES

if TYPE_CHECKING:
    from .device import Device, FortiGate, FortiManager
    from .tls import HarnessCA


def pytest_addoption(parser):
    group = parser.getgroup("mockfgt")
    group.addoption("--mockfgt-expect", action="append", default=[], choices=CODES,
                    help="run catalogue_device tests only for scenarios expecting this code (repeatable)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "mockfgt_catalogue(kind=None, expect=None, names=None, phased=None): narrow the catalogue_device "
        "parametrisation (phased=True: only scenarios with [[phases]], to walk with device.walk_phases())"
    )


def pytest_generate_tests(metafunc):
    if "catalogue_device" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("mockfgt_catalogue")
    options = marker.kwargs if marker else {}
    wanted_codes = set(options.get("expect") or []) | set(metafunc.config.getoption("--mockfgt-expect"))
    names = options.get("names")
    from .scenario import ScenarioError, catalogue, search_path

    try:
        scenarios = catalogue()
    except ScenarioError as exc:
        pytest.fail(f"mockfgt: catalogue_device has no catalogue: {exc}", pytrace=False)
    chosen = [
        sc.name for sc in scenarios
        if (options.get("kind") in (None, sc.kind))
        and (not wanted_codes or sc.expect in {str(c) for c in wanted_codes})
        and (names is None or sc.name in names)
        and (options.get("phased") is None or bool(sc.phases) == bool(options["phased"]))
    ]
    if not chosen:
        # An empty parametrisation would skip the test and let the run pass with nothing tested.
        folders = ", ".join(str(f) for f in search_path())
        pytest.fail(f"mockfgt: no catalogue scenario matches {metafunc.definition.nodeid} "
                    f"(kind={options.get('kind')}, expect={sorted(wanted_codes) or None}, names={names}, "
                    f"phased={options.get('phased')}); "
                    f"searched {folders}", pytrace=False)
    metafunc.parametrize("catalogue_device", chosen, ids=chosen, indirect=True)


@pytest.fixture(scope="session")
def mockfgt_ca(tmp_path_factory) -> HarnessCA:
    from .tls import HarnessCA

    return HarnessCA(_certs_dir(tmp_path_factory))


def _certs_dir(tmp_path_factory) -> Path:
    """This session's CA folder: under xdist, one beside the workers' own temp folders, shared by them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Each worker's base temp is <run's temp>/popen-gwN; the folder above is the whole run's.
        return tmp_path_factory.getbasetemp().parent / "mockfgt-certs"
    return tmp_path_factory.mktemp("mockfgt-certs")


def _session_device(name: str, ca):
    from . import device as devices

    device = getattr(devices, name)(ca=ca).start()
    yield device
    device.stop()


@pytest.fixture(scope="session")
def _mockfgt_fortigate(mockfgt_ca):
    yield from _session_device("FortiGate", mockfgt_ca)


@pytest.fixture(scope="session")
def _mockfgt_fortimanager(mockfgt_ca):
    yield from _session_device("FortiManager", mockfgt_ca)


D = TypeVar("D", bound="Device")


def _fresh(device: D, scenario: str) -> D:
    device.use(scenario)
    device.journal.clear()
    return device


@pytest.fixture
def fortigate(_mockfgt_fortigate) -> FortiGate:
    """A healthy mock FortiGate (scenario ``fgt-healthy``), fresh state and empty journal for this test."""
    return _fresh(_mockfgt_fortigate, "fgt-healthy")


@pytest.fixture
def fortimanager(_mockfgt_fortimanager) -> FortiManager:
    """A healthy mock FortiManager (scenario ``fmg-healthy``), fresh state and empty journal for this test."""
    return _fresh(_mockfgt_fortimanager, "fmg-healthy")


@pytest.fixture
def catalogue_device(request, mockfgt_ca) -> Iterator[Device]:
    """A device serving this test's catalogue scenario, named after it (its ``kind`` is the
    scenario's). Made per test, which costs milliseconds, so a failure names the right device."""
    from .device import Device

    device = Device(request.param, name=request.param, ca=mockfgt_ca).start()
    yield device
    device.stop()


def pytest_assertrepr_compare(config, op, left, right):
    """``assert code == device.expect`` fails with the scenario, the journal and the remedy."""
    from .explain import assertrepr

    return assertrepr(op, left, right)


def _made_devices(name: str, ca):
    """A factory fixture's body: yield ``make(scenario, **kwargs)``, stop what it made afterwards."""
    from . import device as devices

    cls = getattr(devices, name)
    made = []

    def make(scenario=None, **kwargs):
        kwargs.setdefault("ca", ca)
        device = cls(scenario, **kwargs).start()
        made.append(device)
        return device

    yield make
    for device in made:
        device.stop()


@pytest.fixture
def make_fortigate(mockfgt_ca):
    """Start extra FortiGates: ``make_fortigate("expired-cert", host="::1")``; stopped after the test."""
    yield from _made_devices("FortiGate", mockfgt_ca)


@pytest.fixture
def make_fortimanager(mockfgt_ca):
    """Start extra FortiManagers; stopped after the test."""
    yield from _made_devices("FortiManager", mockfgt_ca)
