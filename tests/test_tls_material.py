"""Server certificates are minted once per identity and shared, and minted again once they have aged."""

from __future__ import annotations

import socket
import ssl

import mockfgt.tls

from deadlines import seconds


def presented_certificate(device) -> bytes:
    """The leaf certificate the device sends in a handshake, read with the harness CA trusted."""
    ctx = ssl.create_default_context(cafile=device.ca_bundle)
    with socket.create_connection(("127.0.0.1", device.port), timeout=seconds(5)) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


def test_devices_of_one_identity_present_one_certificate(make_fortigate):
    first, second = make_fortigate(), make_fortigate()
    assert first.port != second.port
    assert presented_certificate(first) == presented_certificate(second)


def test_a_swap_back_presents_the_certificate_again(make_fortigate):
    device = make_fortigate()
    before = presented_certificate(device)
    device.use("hostname-mismatch").use("fgt-healthy")
    assert presented_certificate(device) == before


def test_aged_material_is_minted_again(make_fortigate, monkeypatch):
    before = presented_certificate(make_fortigate())
    monkeypatch.setattr(mockfgt.tls, "MATERIAL_MAX_AGE", 0.0)
    again = make_fortigate()
    assert presented_certificate(again) != before
