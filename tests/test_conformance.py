"""The conformance matrix: every catalogue scenario x every client stack agrees with the catalogue.

The matrix runs once per session (in parallel threads, each cell on a freshly switched device); each
cell is its own test, so a failure names the scenario, the mode and the client. The committed
``docs/conformance.md`` must hold the matrix this run produced: regenerate it with ``make conformance``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import requests

import mockfgt
from mockfgt import conformance

from deadlines import seconds

DOC = Path(__file__).resolve().parents[1] / "docs" / "conformance.md"
CELL_IDS = [f"{row.id}-{client}" for row in conformance.rows(mockfgt.catalogue()) for client in conformance.CLIENTS]


@pytest.fixture(scope="session")
def matrix() -> dict[str, conformance.Cell]:
    cells = conformance.run()
    return {cell.id: cell for cell in cells}


@pytest.mark.parametrize("cell_id", CELL_IDS)
def test_client_reports_the_expected_code(matrix, cell_id):
    cell = matrix[cell_id]
    assert cell.passed, f"expected {cell.row.expect}, {cell.client} reported {cell.observed} ({cell.surface})"


def test_every_row_is_checked_by_a_client_that_sees_past_tls(matrix):
    for row in conformance.rows(mockfgt.catalogue()):
        assert all(matrix[f"{row.id}-{c}"].applies for c in ("requests", "httpx", "urllib", "curl", "diagnose"))


def test_openssl_checks_the_tls_rows_only(matrix):
    """Only rows whose every step (a phased row's phases and remedy) expects ok or 202003."""
    for cell in matrix.values():
        if cell.client == "openssl":
            codes = cell.row.steps or (cell.row.expect,)
            assert cell.applies == all(code in (mockfgt.OK, mockfgt.TLS) for code in codes), cell.id


def test_phased_rows_are_walked_step_by_step(matrix):
    """A phased row's cell passes only when every step does; it shows each step's code in turn."""
    phased = [cell for cell in matrix.values() if cell.row.steps and cell.applies]
    assert phased, "the catalogue has phased rows"
    for cell in phased:
        assert len(cell.observed.split(conformance.STEP_ARROW)) == len(cell.row.steps), cell.id
        assert cell.steps_passed is not None, cell.id


def test_client_certificate_rows_cover_both_tls_versions():
    required = [sc for sc in mockfgt.catalogue() if sc.tls["client_certificate"] == "required"]
    assert required, "the catalogue has a client-certificate scenario"
    for sc in required:
        versions = {row.tls for row in conformance.rows([sc])}
        assert versions == {"TLSv1.2", "TLSv1.3"}, sc.name


def test_tls13_reports_a_missing_client_certificate_after_the_handshake(matrix):
    """The catalogue's note, measured: httpx fails in connect with TLS 1.2, in read with TLS 1.3."""
    assert matrix["client-cert-required-verify-TLSv1.2-httpx"].surface == "ConnectError"
    assert matrix["client-cert-required-verify-TLSv1.3-httpx"].surface == "ReadError"


def test_the_document_holds_this_run(matrix):
    cells = list(matrix.values())
    assert DOC.is_file(), "docs/conformance.md is missing: run `make conformance`"
    assert conformance.render_matrix(cells) in DOC.read_text(encoding="utf-8"), (
        "docs/conformance.md is out of date: run `make conformance` and commit the result"
    )


@pytest.mark.parametrize("exit_code, stderr, expected", [
    (35, "curl: (35) Send failure: Connection reset by peer", mockfgt.CONNECTION),
    (35, "curl: (35) OpenSSL/3.0: error:0A00010B:SSL routines::wrong version number", mockfgt.TLS),
    (56, "curl: (56) OpenSSL SSL_read: tlsv13 alert certificate required", mockfgt.TLS),
    (56, "curl: (56) Recv failure: Connection reset by peer", mockfgt.CONNECTION),
    (60, "curl: (60) SSL certificate problem: certificate has expired", mockfgt.TLS),
])
def test_curl_codes_that_mean_two_things_are_told_apart_by_the_reason(exit_code, stderr, expected):
    assert conformance.curl_code(exit_code, stderr) == expected


def test_raise_for_status_errors_are_classified_by_their_response(make_fortigate):
    """requests' HTTPError and httpx's HTTPStatusError carry the answer; a 401 is 202001, not 202000."""
    fgt = make_fortigate("invalid-token")
    client = fgt.client
    url = f"{client.url}/api/v2/monitor/system/status"
    with pytest.raises(requests.HTTPError) as raised:
        requests.get(url, timeout=seconds(5), **client.request_kwargs()).raise_for_status()
    assert mockfgt.classify(raised.value) == mockfgt.AUTHENTICATION
    with pytest.raises(httpx.HTTPStatusError) as raised_httpx:
        httpx.get(url, headers=client.headers(), verify=client.ssl_context(), timeout=seconds(5)).raise_for_status()
    assert mockfgt.classify(raised_httpx.value) == mockfgt.AUTHENTICATION


def test_conformance_without_its_client_stacks_says_what_to_install():
    """requests and httpx are the `conformance` extra, not runtime dependencies: without them the
    command says so instead of failing with an ImportError halfway through the matrix."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['httpx'] = None\n"
            "from mockfgt import cli; sys.exit(cli.main(['conformance', '--scenario', 'fgt-healthy']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds(60))
    assert done.returncode == 2
    assert "the httpx client stack is not installed; pip install 'mockfgt[conformance]'" in done.stderr
