"""One harness CA per certs folder: made once, shared by every run, renewed only on purpose."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import mockfgt
from mockfgt.tls import CAError, HarnessCA

from run_cli import cli_env, mockfgt_command, run_mockfgt
from test_cli import Served, run_curl

RACERS = 6


def fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def served(certs: Path, *args: str) -> Served:
    return Served("--port", "0", "--certs-dir", str(certs), *args)


@pytest.fixture
def runs():
    started: list[Served] = []

    def start(certs: Path, *args: str) -> Served:
        started.append(served(certs, *args))
        return started[-1]

    yield start
    for run in started:
        run.kill()


# -- one CA per folder ----------------------------------------------------------------------------
def test_two_harness_cas_of_one_folder_are_one_ca(tmp_path):
    first, second = HarnessCA(tmp_path / "certs"), HarnessCA(tmp_path / "certs")
    assert first.made and not second.made
    assert first.cert_pem == second.cert_pem == first.cert_path.read_bytes()
    assert mode(first.certs_dir) == 0o700 and mode(first.key_path) == 0o600
    assert first.private_ca_path.read_bytes() == second.private_ca_path.read_bytes()


def test_a_ca_without_its_key_from_an_older_mockfgt_is_replaced(tmp_path):
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "harness-ca.pem").write_bytes(HarnessCA(tmp_path / "old").cert_pem)  # what 0.x left behind
    ca = HarnessCA(folder)
    assert ca.made and ca.key_path.is_file() and ca.cert_path.read_bytes() == ca.cert_pem


def _race(barrier, folder: str, results) -> None:
    barrier.wait()  # every racer constructs at the same instant
    results.put(fingerprint(HarnessCA(folder).cert_pem))


def test_racing_processes_agree_on_one_complete_ca(tmp_path):
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with server threads
    barrier, results = spawn.Barrier(RACERS), spawn.Queue()
    racers = [spawn.Process(target=_race, args=(barrier, str(tmp_path / "certs"), results)) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    prints = {results.get(timeout=60) for _ in racers}
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    on_disk = HarnessCA(tmp_path / "certs")
    assert prints == {fingerprint(on_disk.cert_pem)}
    assert not on_disk.made
    assert sorted(p.name for p in on_disk.certs_dir.iterdir()) == [".lock", "harness-ca.key", "harness-ca.pem"]


def test_a_second_run_leaves_the_first_runs_clients_working(tmp_path, runs, curl):
    certs = tmp_path / "certs"
    first = runs(certs)
    second = runs(certs, "--scenario", "expired-cert")
    assert first.field("CA bundle") == second.field("CA bundle") == str(certs.resolve() / "harness-ca.pem")
    assert run_curl(curl, first.curl_line())[0] == 200  # curl exited 60 here when each run minted a CA
    token = first.field("API token")
    answer = requests.get(f"https://127.0.0.1:{first.port}/api/v2/monitor/system/status", timeout=10,
                          headers={"Authorization": f"Bearer {token}"}, verify=first.field("CA bundle"))
    assert answer.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):  # the second run still serves its fault
        requests.get(f"https://127.0.0.1:{second.port}/", timeout=10, verify=second.field("CA bundle"))


def manifest_device(path: Path) -> dict:
    return json.loads(path.read_text())["devices"][0]


def test_a_second_run_keeps_the_first_runs_private_ca_and_client_certificate(tmp_path, runs):
    certs = tmp_path / "certs"
    for scenario in ("private-ca", "client-cert-required"):
        runs(certs, "--scenario", scenario, "--manifest", str(tmp_path / f"{scenario}-1.json"))
    for scenario in ("private-ca", "client-cert-required"):
        runs(certs, "--scenario", scenario, "--manifest", str(tmp_path / f"{scenario}-2.json"))
    private = manifest_device(tmp_path / "private-ca-1.json")
    answer = requests.get(private["url"] + "/api/v2/monitor/system/status", verify=private["private_ca_bundle"],
                          headers={"Authorization": f"Bearer {private['token']}"}, timeout=10)
    assert answer.status_code == 200
    mutual = manifest_device(tmp_path / "client-cert-required-1.json")
    pair = mutual["client_certificate"]
    answer = requests.get(mutual["url"] + "/api/v2/monitor/system/status", verify=mutual["ca_bundle"],
                          cert=(pair["cert"], pair["key"]), headers={"Authorization": f"Bearer {mutual['token']}"},
                          timeout=10)
    assert answer.status_code == 200


def test_an_intermediate_loaded_from_the_folder_still_sends_the_chain(tmp_path):
    first = HarnessCA(tmp_path / "certs")
    made = first.intermediate.cert_pem.bytes()
    with mockfgt.Device("incomplete-chain", ca=HarnessCA(tmp_path / "certs")) as device:
        device.remedy()  # the remedy: the device sends the intermediate too
        assert device.ca.intermediate.cert_pem.bytes() == made
        answer = requests.get(device.url + "/api/v2/monitor/system/status", verify=str(first.cert_path),
                              headers={"Authorization": f"Bearer {device.token}"}, timeout=10)
    assert answer.status_code == 200


# -- mockfgt ca -----------------------------------------------------------------------------------
def ca_command(cwd: Path, *args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([*mockfgt_command(), "ca", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=cli_env(), **options)


def test_ca_prints_the_path_serve_uses_by_default_and_makes_it_once(tmp_path):
    first, second = ca_command(tmp_path), ca_command(tmp_path)
    path = tmp_path / "certs" / "harness-ca.pem"
    assert first.returncode == 0 and first.stdout.strip() == str(path.resolve()), first.stderr
    assert second.stdout == first.stdout and HarnessCA(tmp_path / "certs").cert_pem == path.read_bytes()
    assert first.stderr == second.stderr == ""


def test_install_hint_names_the_clients_and_warns_about_the_key(tmp_path):
    result = run_mockfgt("ca", "--install-hint", "--certs-dir", str(tmp_path / "certs"))
    assert result.returncode == 0, result.stderr
    path = str((tmp_path / "certs").resolve() / "harness-ca.pem")
    for expected in (f"--cacert {path}", "verify=", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "keytool -importcert",
                     "/usr/local/share/ca-certificates", "update-ca-certificates", "security add-trusted-cert",
                     "harness-ca.key", "test CA"):
        assert expected in result.stdout


def test_renew_makes_a_new_ca_and_discards_what_the_old_one_made(tmp_path, runs, curl):
    certs = tmp_path / "certs"
    old = runs(certs, "--scenario", "client-cert-required", "--manifest", str(tmp_path / "m.json"))
    old_print = fingerprint((certs / "harness-ca.pem").read_bytes())
    assert (certs / "server").is_dir() and (certs / "client-cert-required" / "client-key.pem").is_file()
    result = run_mockfgt("ca", "--renew", "--certs-dir", str(certs))
    assert result.returncode == 0, result.stderr
    assert f"made a new harness CA {certs.resolve() / 'harness-ca.pem'}" in result.stdout
    assert "server/" in result.stdout and "restarted" in result.stdout
    assert fingerprint((certs / "harness-ca.pem").read_bytes()) != old_print
    assert not (certs / "server").exists() and not (certs / "client-cert-required").exists()
    old.kill()
    fresh = runs(certs)
    assert run_curl(curl, fresh.curl_line())[0] == 200


def _ageing_ca(folder: Path, days: int) -> None:
    """A real CA (as an older or foreign run could have left) that expires in ``days``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ageing harness CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=300))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(mode=0o700)
    (folder / "harness-ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "harness-ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_an_ageing_ca_is_warned_about_never_renewed_by_a_start(tmp_path, runs, curl):
    certs = tmp_path / "certs"
    _ageing_ca(certs, days=10)
    before = (certs / "harness-ca.pem").read_bytes()
    result = run_mockfgt("ca", "--certs-dir", str(certs))
    assert result.returncode == 0 and result.stdout.strip() == str(certs.resolve() / "harness-ca.pem")
    warning = result.stderr.strip()
    assert "\n" not in warning and "expires" in warning and "mockfgt ca --renew" in warning
    run = runs(certs)
    assert run_curl(curl, run.curl_line())[0] == 200  # still the ageing CA, and it still works
    assert (certs / "harness-ca.pem").read_bytes() == before


# -- refusals -------------------------------------------------------------------------------------
def test_a_symlinked_certs_folder_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "certs").symlink_to(tmp_path / "real")
    with pytest.raises(CAError, match="symbolic link"):
        HarnessCA(tmp_path / "certs")
    result = run_mockfgt("serve", "--port", "0", "--certs-dir", str(tmp_path / "certs"))
    assert result.returncode == 2 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "real").iterdir()) == []


def test_a_symlinked_ca_file_is_refused(tmp_path):
    elsewhere = HarnessCA(tmp_path / "elsewhere")
    certs = tmp_path / "certs"
    certs.mkdir(mode=0o700)
    (certs / "harness-ca.pem").symlink_to(elsewhere.cert_path)
    (certs / "harness-ca.key").symlink_to(elsewhere.key_path)
    result = run_mockfgt("ca", "--certs-dir", str(certs))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"refusing {certs.resolve() / 'harness-ca.pem'}: it is a symbolic link" in result.stderr


def test_a_folder_of_another_user_is_refused(tmp_path):
    if os.geteuid() == 0:
        folder = tmp_path / "theirs"
        folder.mkdir()
        os.chown(folder, 65534, 65534)  # nobody
    else:
        folder = Path("/usr")  # root's
    result = run_mockfgt("ca", "--certs-dir", str(folder))
    assert result.returncode == 2 and "belongs to user id" in result.stderr and "Traceback" not in result.stderr
    assert not (folder / "harness-ca.pem").exists()


@pytest.mark.parametrize("broken", ["harness-ca.pem", "harness-ca.key"])
def test_a_corrupt_ca_is_a_clear_error_naming_the_file(tmp_path, broken):
    certs = tmp_path / "certs"
    HarnessCA(certs)
    (certs / broken).write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    result = run_mockfgt("serve", "--port", "0", "--certs-dir", str(certs))
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert str(certs.resolve() / broken) in result.stderr and "mockfgt ca --renew" in result.stderr
    assert run_mockfgt("ca", "--renew", "--certs-dir", str(certs)).returncode == 0
    assert run_mockfgt("ca", "--certs-dir", str(certs)).returncode == 0


def test_a_key_of_another_ca_is_a_clear_error(tmp_path):
    certs = tmp_path / "certs"
    HarnessCA(certs)
    (certs / "harness-ca.key").write_bytes(HarnessCA(tmp_path / "other").key_path.read_bytes())
    with pytest.raises(CAError, match="does not belong to"):
        HarnessCA(certs)


KEYS_UNDER_UMASK_0 = """
import sys
from mockfgt.tls import HarnessCA
ca = HarnessCA(sys.argv[1])
ca.private_ca, ca.intermediate
ca.issue_client_cert(ca.certs_dir / "device")
ca.server_tls(shape="valid", versions=["TLSv1.3"], client_certificate=False, hostname="h", serial="s", kind="fortigate")
"""


def test_keys_are_owner_only_even_under_umask_0(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run([sys.executable, "-c", KEYS_UNDER_UMASK_0, str(certs)], check=True, timeout=60, umask=0)
    keys = [p for p in certs.rglob("*") if p.suffix == ".key" or p.name.endswith("-key.pem")]
    assert len(keys) == 5  # harness, intermediate, private CA; client; server
    assert {mode(p) for p in keys} == {0o600}
    assert {mode(p) for p in [certs, *certs.rglob("*")] if p.is_dir()} == {0o700}
    digest = hashlib.sha256(certs.joinpath("harness-ca.pem").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(HarnessCA(certs).cert_pem).hexdigest()


def test_a_certs_folder_others_can_write_is_closed_to_them(tmp_path):
    folder = tmp_path / "certs"
    folder.mkdir()
    folder.chmod(0o777)  # a clone made under umask 0
    HarnessCA(folder)
    assert folder.stat().st_mode & 0o022 == 0
