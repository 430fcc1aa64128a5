"""A mock device's life cycle and TLS identity, seen from real clients and real sockets.

Start, stop, swap scenarios, run many at once, serve on ::1; the certificate the device presents
(SANs, chain, validity) and the key files it leaves on disk; the TLS versions it offers; and the
pytest fixtures that hand devices to tests.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography import x509

import mockfgt

from deadlines import seconds
from fortios_client import RequestsApi, httpx_client

pytest_plugins = ["pytester"]
STATUS = "monitor/system/status"


def status_code(device, token: str | None = "current") -> int:
    return RequestsApi(device).get(STATUS, token=token).status_code


def refuses_connections(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=seconds(5)).close()
    except ConnectionRefusedError:
        return True
    return False


def peer_certificate(device, host: str = "127.0.0.1", **context_options) -> tuple[x509.Certificate, str]:
    """The leaf the device presents and the negotiated protocol, through the stdlib ssl module."""
    context = ssl.create_default_context(cafile=device.ca_bundle)
    for name, value in context_options.items():
        setattr(context, name, value)
    with socket.create_connection((host, device.port), timeout=seconds(10)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der, version = tls.getpeercert(binary_form=True), tls.version()
    return x509.load_der_x509_certificate(der), version


# -- life cycle ---------------------------------------------------------------------------------
def test_context_manager_serves_inside_and_releases_after(mockfgt_ca):
    with mockfgt.FortiGate(ca=mockfgt_ca) as fgt:
        port = fgt.port
        assert port > 0 and fgt.url == f"https://127.0.0.1:{port}"
        assert status_code(fgt) == 200
    assert refuses_connections(port)


def test_start_and_stop_are_idempotent(mockfgt_ca):
    fgt = mockfgt.FortiGate(ca=mockfgt_ca)
    assert fgt.start() is fgt.start()
    assert status_code(fgt) == 200
    fgt.stop()
    fgt.stop()
    assert refuses_connections(fgt.port)


def test_stop_releases_the_port_for_a_new_device(mockfgt_ca):
    first = mockfgt.FortiGate(ca=mockfgt_ca).start()
    port = first.port
    assert status_code(first) == 200
    first.stop()
    with mockfgt.FortiGate(ca=mockfgt_ca, port=port) as second:
        assert second.port == port
        assert status_code(second) == 200
        assert status_code(second, token=first.token) == 401  # a new device, a new key


def test_stop_ends_a_stalled_response_at_once(make_fortigate):
    """A request stalled until the client leaves: stop() drops it at once (the recv would time out)."""
    fgt = make_fortigate("response-stall")
    context = ssl.create_default_context(cafile=fgt.ca_bundle)
    with socket.create_connection(("127.0.0.1", fgt.port), timeout=seconds(30)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(f"GET /api/v2/{STATUS} HTTP/1.1\r\nHost: localhost\r\n"
                        f"Authorization: Bearer {fgt.token}\r\n\r\n".encode())
            fgt.stop()
            try:
                leftover = tls.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                leftover = b""
    assert leftover == b"" or leftover.startswith(b"HTTP/1.1 ")
    assert refuses_connections(fgt.port)


def test_swapping_scenarios_keeps_the_port(fortigate):
    port, url = fortigate.port, fortigate.url
    fortigate.use("expired-cert")
    assert (fortigate.port, fortigate.url) == (port, url)
    with pytest.raises(requests.exceptions.SSLError):
        RequestsApi(fortigate).get(STATUS)
    fortigate.use("plaintext-http")
    response = requests.get(f"http://127.0.0.1:{port}/api/v2/{STATUS}", timeout=seconds(10),
                            headers={"Authorization": f"Bearer {fortigate.token}"})
    assert response.status_code == 200
    fortigate.use("fgt-healthy")
    assert fortigate.port == port and status_code(fortigate) == 200


def test_swapping_to_a_closed_port_and_back(fortigate):
    fortigate.use("port-closed")
    assert refuses_connections(fortigate.port)
    fortigate.use("fgt-healthy")
    assert status_code(fortigate) == 200


def test_reset_restores_the_scenarios_state(fortigate):
    api = RequestsApi(fortigate)
    api.post("cmdb/firewall/address", json={"name": "tmp", "subnet": "192.0.2.1/32"})
    fortigate.reset()
    assert "tmp" not in [r["name"] for r in RequestsApi(fortigate).get("cmdb/firewall/address").json()["results"]]


def test_many_devices_in_one_process(make_fortigate):
    devices = [make_fortigate() for _ in range(6)]
    assert len({d.port for d in devices}) == 6
    assert len({d.token for d in devices}) == 6
    assert [status_code(d) for d in devices] == [200] * 6
    assert status_code(devices[1], token=devices[0].token) == 401  # each has its own keys
    devices[2].stop()
    assert refuses_connections(devices[2].port)
    assert status_code(devices[3]) == 200


def test_a_device_on_ipv6_loopback(make_fortigate):
    fgt = make_fortigate(host="::1")
    assert fgt.url == f"https://[::1]:{fgt.port}"
    with httpx_client(fgt) as client:
        assert client.get(STATUS).status_code == 200
    assert RequestsApi(fgt).get(STATUS).json()["status"] == "success"


def test_the_agent_connects_where_the_device_serves(make_fortigate):
    fgt = make_fortigate(host="::1")
    assert fgt.client.url == fgt.url
    response = requests.get(f"{fgt.client.url}/api/v2/{STATUS}", timeout=seconds(10), **fgt.client.request_kwargs())
    assert response.status_code == 200


def test_a_fortigate_refuses_a_fortimanager_scenario_file(tmp_path, mockfgt_ca):
    path = tmp_path / "fmg.toml"
    path.write_text('summary = "x"\nexpect = "ok"\n[device]\nkind = "fortimanager"\n')
    with pytest.raises((ValueError, mockfgt.ScenarioError)):
        mockfgt.FortiGate(path, ca=mockfgt_ca)


# -- certificate material -----------------------------------------------------------------------
def test_private_keys_on_disk_are_owner_only(fortigate):
    server_keys = list((Path(fortigate.ca.certs_dir) / "server").glob("*/server-key.pem"))
    assert server_keys and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in server_keys)
    fortigate.use("client-cert-required")
    cert, client_key = fortigate.remedy().cert  # the remedy gives the agent a client certificate
    assert Path(client_key).parent == fortigate.material_dir
    assert stat.S_IMODE(Path(client_key).stat().st_mode) == 0o600
    ca_keys = list(Path(fortigate.ca.certs_dir).glob("*ca.key"))  # kept so later runs load the same CA
    assert fortigate.ca.key_path in ca_keys and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in ca_keys)


def test_leaf_names_localhost_loopbacks_and_hostname(fortigate):
    leaf, _ = peer_certificate(fortigate)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "fgt-mock"}
    assert set(sans.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"),
                                                              ipaddress.ip_address("::1")}
    ca = x509.load_pem_x509_certificate(Path(fortigate.ca_bundle).read_bytes())
    assert leaf.issuer == ca.subject


def test_leaf_verifies_by_ip_on_both_loopbacks(make_fortigate):
    fgt = make_fortigate(host="::1")
    context = ssl.create_default_context(cafile=fgt.ca_bundle)
    with socket.create_connection(("::1", fgt.port), timeout=seconds(10)) as raw:
        with context.wrap_socket(raw, server_hostname="::1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_factory_certificate_shape(fortigate):
    fortigate.use("self-signed-factory")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", fortigate.port), timeout=seconds(10)) as raw:
        with context.wrap_socket(raw) as tls:
            leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert leaf.subject == leaf.issuer
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "FGVM02TM24000001"
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)


# -- TLS versions -------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=str)
def test_healthy_device_speaks_tls_1_2_and_1_3(fortigate, version):
    _, negotiated = peer_certificate(fortigate, minimum_version=version, maximum_version=version)
    assert negotiated == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_healthy_device_refuses_tls_1_1(fortigate):
    with pytest.raises(ssl.SSLError):
        peer_certificate(fortigate, maximum_version=ssl.TLSVersion.TLSv1_1)


def s_client(device, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{device.port}", "-servername", "localhost",
         "-CAfile", device.ca_bundle, "-verify_return_error", *flags],
        input=b"", capture_output=True, timeout=seconds(30),
    )


@pytest.mark.parametrize(("flag", "name"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_openssl_s_client_negotiates(fortigate, flag, name):
    result = s_client(fortigate, flag)
    assert result.returncode == 0, result.stderr.decode()
    assert f"Protocol  : {name}".encode() in result.stdout or f"New, {name}".encode() in result.stdout
    assert b"Verify return code: 0 (ok)" in result.stdout


def test_openssl_s_client_cannot_get_tls_1_1(fortigate):
    assert s_client(fortigate, "-tls1_1").returncode != 0


def test_tls12_only_scenario_refuses_tls13(fortigate, tmp_path):
    scenario = tmp_path / "tls12.toml"
    scenario.write_text('extends = "fgt-healthy"\nsummary = "x"\nexpect = "ok"\n[tls]\nversions = ["TLSv1.2"]\n')
    fortigate.use(scenario)
    _, negotiated = peer_certificate(fortigate)
    assert negotiated == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        peer_certificate(fortigate, minimum_version=ssl.TLSVersion.TLSv1_3)


# -- the pytest fixtures ------------------------------------------------------------------------
FIXTURE_TESTS = '''
from deadlines import seconds
from fortios_client import RequestsApi

seen = {}


def test_a_dirties_the_device(fortigate):
    seen["port"], seen["token"] = fortigate.port, fortigate.token
    api = RequestsApi(fortigate)
    assert api.post("cmdb/firewall/address", json={"name": "left-over", "subnet": "192.0.2.1/32"}).status_code == 200
    fortigate.apply({"op": "regenerate-key", "user": "agent"})
    fortigate.use("expired-cert")


def test_b_gets_it_clean(fortigate):
    assert fortigate.port == seen["port"]  # one server per session
    assert fortigate.scenario.name == "fgt-healthy"
    assert fortigate.token != seen["token"]  # fresh state, fresh key
    assert "left-over" not in [r["name"] for r in RequestsApi(fortigate).get("cmdb/firewall/address").json()["results"]]


def test_c_factory_devices(make_fortigate):
    first = make_fortigate("read-only-profile")
    second = make_fortigate(host="::1")
    seen["made"] = [first, second]
    assert first.port != second.port and first.scenario.name == "read-only-profile"


def test_d_factory_devices_were_stopped(make_fortigate):
    import socket
    for device in seen["made"]:
        host = "::1" if ":" in device.host else "127.0.0.1"
        try:
            socket.create_connection((host, device.port), timeout=seconds(5)).close()
        except ConnectionRefusedError:
            continue
        raise AssertionError(f"{device} still accepts connections")
'''


def test_fixtures_reset_state_between_tests(pytester):
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makepyfile(test_fixture_reset=FIXTURE_TESTS)
    result = pytester.runpytest("-p", "no:randomly", "-q")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize("name", ["../escaped", "a/b", "a\\b", ".hidden", "tab\there", "x" * 129])
def test_a_device_name_that_is_not_one_folder_is_refused(tmp_path, name):
    """A device's name becomes a folder under the certificates folder and a control-URL segment:
    '../escaped' would write key material outside that folder, 'a/b' could never be addressed."""
    certs = tmp_path / "certs"
    with pytest.raises(ValueError, match="device name"):
        mockfgt.FortiGate(name=name, certs_dir=certs)
    assert not (tmp_path / "escaped").exists()
    assert not certs.exists() or all(p.parent == certs for p in certs.iterdir())


def test_a_device_name_may_have_spaces_and_dots_inside(tmp_path):
    with mockfgt.FortiGate(name="edge fw 1.2", certs_dir=tmp_path) as fgt:
        assert fgt.material_dir == tmp_path / "edge fw 1.2"
        assert status_code(fgt) == 200


def test_the_dns_remedy_points_the_agent_at_the_address_the_device_serves_on(tmp_path):
    """The remedy of dns-unresolvable is "use the device's address": on a device bound to ::1 that is
    ::1, not a fixed 127.0.0.1 where nothing listens."""
    with mockfgt.FortiGate("dns-unresolvable", host="::1", certs_dir=tmp_path) as fgt:
        agent = fgt.remedy()
        assert agent.url == f"https://[::1]:{fgt.port}"
        assert status_code(fgt) == 200
