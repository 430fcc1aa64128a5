"""A thin FortiOS REST client for the tests: requests or httpx, the harness CA, a bearer token.

Each test says which library it drives; both go over a real socket to a real device. The client never
follows proxies from the environment and always trusts exactly the harness CA.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from textwrap import dedent

import httpx
import requests

from deadlines import seconds

TIMEOUT = seconds(10)


class RequestsApi:
    """``api.get("cmdb/firewall/address", params=...)`` against ``https://device/api/v2/...``."""

    def __init__(self, device, token: str | None = "current", url: str | None = None):
        self.device = device
        self.base = (url or device.url) + "/api/v2/"
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or CA bundles from the environment
        self.session.verify = device.ca_bundle
        self.token = device.token if token == "current" else token

    def request(self, method: str, path: str, *, token: str | None = "current", **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        bearer = self.token if token == "current" else token
        if bearer is not None and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.session.request(method, self.base + path, headers=headers, timeout=TIMEOUT, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def httpx_client(device, token: str | None = None) -> httpx.Client:
    """An httpx client for ``device`` trusting the harness CA, with the device's current token."""
    bearer = device.token if token is None else token
    return httpx.Client(
        base_url=device.url + "/api/v2/",
        verify=ssl.create_default_context(cafile=device.ca_bundle),
        headers={"Authorization": f"Bearer {bearer}"},
        trust_env=False,
        timeout=TIMEOUT,
    )


def write_scenario(folder: Path, name: str, body: str, extends: str | None = "fgt-healthy") -> Path:
    """Write ``name.toml`` in ``folder``: a summary, an expect and ``body``, extending fgt-healthy."""
    head = f'summary = "{name} (test)"\nexpect = "ok"\n'
    if extends:
        head = f'extends = "{extends}"\n' + head
    path = folder / f"{name}.toml"
    path.write_text(head + dedent(body))
    return path
