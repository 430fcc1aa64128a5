"""Hundreds of deliberately failed handshakes against every TLS fault; the device does not degrade.

``make stress`` runs the same storm with thousands; both report the healthy request's time before
and after (printed here with -s), never assert it.
"""

from __future__ import annotations

import pytest

import mockfgt

from deadlines import seconds
from stress import handshakes
from stress.watch import ErrorLog, Resources, settle

PER_KIND = 40


@pytest.fixture
def devices(mockfgt_ca):
    healthy = mockfgt.FortiGate(ca=mockfgt_ca).start()
    faulty = {name: mockfgt.Device(name, ca=mockfgt_ca).start() for name in handshakes.TLS_SCENARIOS}
    yield healthy, faulty
    for device in (healthy, *faulty.values()):
        device.stop()


def test_a_storm_of_failed_handshakes_leaves_every_device_serving(devices):
    healthy, faulty = devices
    handshakes.storm(healthy, faulty, 1)  # warm up: first connections open what stays open (contexts, pools)
    baseline = settle(Resources.now(), timeout=seconds(2))
    with ErrorLog() as errors:
        figures = handshakes.storm(healthy, faulty, PER_KIND)
    after = settle(baseline)
    kinds = len(handshakes.TLS_SCENARIOS) + len(handshakes.CLIENT_FAULTS)
    print(f"\n{figures.attempts} failed handshakes; healthy GET {figures.healthy_before_ms} ms before, "
          f"{figures.healthy_after_ms} ms after; {baseline} -> {after}")
    assert figures.attempts == kinds * PER_KIND
    assert figures.unexpected_successes == []
    assert sum(figures.failed.values()) == figures.attempts
    # Every TLS refusal happened on the device, not only in the client (plaintext-http has no TLS to fail).
    assert figures.refused_on_the_device == (len(handshakes.TLS_SCENARIOS) - 1) * PER_KIND
    assert len(errors) == 0, errors.describe()
    assert after.threads <= baseline.threads and after.descriptors <= baseline.descriptors
    for device in faulty.values():  # the faults are still the scenarios' own, untouched by the storm
        assert device.scenario.expect != "ok" or device.scenario.name == "plaintext-http"
