"""Shared test set-up: the clients under test must trust only what each test gives them.

CI images (and these machines) export REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE and
SSL_CERT_DIR; requests lets REQUESTS_CA_BUNDLE override a CA set on a Session and curl honours
CURL_CA_BUNDLE. Clearing them for the whole run means every test states its trust explicitly.
"""

from __future__ import annotations

import os
import shutil

import pytest

TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
for _name in TRUST_VARIABLES:
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.fail("curl is required by the test suite (apt-get install curl)")
    return path
