"""Concurrent writers and scenario swaps under traffic, small enough for every run.

The full sizes (50 clients x 200 writes, hundreds of swaps) run in ``make stress``.
"""

from __future__ import annotations

import pytest

from mockfgt import Harness

from stress import swaps, writers
from stress.watch import ErrorLog, Resources, settle

WORKSPACE_SCENARIO = writers.__file__.replace("writers.py", "scenarios/fmg-workspace.toml")


@pytest.fixture
def errors():
    with ErrorLog() as log:
        yield log


def test_fortios_writers_lose_nothing_and_revisions_form_one_chain(make_fortigate, errors):
    device = make_fortigate()
    figures = writers.fortios_writers(device, clients=10, writes=20)
    assert figures.writes == 200
    assert figures.failed == [] and figures.lost == [] and figures.unexpected == [] and figures.duplicated == []
    assert figures.revision_problems == []
    assert figures.journal_missing == 0 and figures.lost_writes == 0
    assert len(errors) == 0, errors.describe()


def test_fortimanager_writers_under_the_workspace_lock_lose_nothing(make_fortimanager, errors):
    device = make_fortimanager(WORKSPACE_SCENARIO)
    figures = writers.fortimanager_writers(device, clients=10, writes=20, batch=10)
    assert figures.writes == 200
    assert figures.failed == [] and figures.lost == [] and figures.unexpected == []
    assert figures.journal_missing == 0 and figures.lost_writes == 0
    assert device.state.adoms["root"].lock is None  # every client unlocked
    assert len(errors) == 0, errors.describe()


def test_scenario_swaps_under_traffic_never_hang_or_crash_the_device(mockfgt_ca, errors):
    with Harness(ca=mockfgt_ca) as harness:
        harness.add("fgt-healthy")
        harness.start()
        harness.device("fgt-healthy")._listener.request_timeout = 2.0  # stalled handshakes end sooner
        baseline = Resources.now()
        figures = swaps.swap_under_traffic(harness, "fgt-healthy", clients=6, swaps_each=25)
        after = settle(baseline)
    assert figures.swaps == 50 and figures.requests > 0
    assert figures.hung_clients == 0
    assert figures.served_afterwards
    assert len(errors) == 0, errors.describe()
    assert after.threads <= baseline.threads and after.descriptors <= baseline.descriptors
