"""A small FortiManager JSON-RPC caller for the tests, over requests or httpx, trusting the harness CA only."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import requests

from deadlines import seconds

LIBRARIES = ("requests", "httpx")


class Rpc:
    """``Rpc(device).one("get", "/sys/status")`` -> the first ``result`` entry (HTTP 200 asserted).

    ``key`` goes in ``Authorization: Bearer``, ``query_key`` in ``?access_token=``, ``session`` in the
    body; ``host`` overrides the URL's host (e.g. ``"::1"`` for a device listening there).
    """

    def __init__(self, device, library: str = "requests", *, key: str | None = None, query_key: str | None = None,
                 session: str | None = None) -> None:
        self.url = f"{device.url}/jsonrpc"
        self.library, self.session = library, session
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.params = {"access_token": query_key} if query_key else {}
        self.ca = device.ca_bundle
        self._httpx = httpx.Client(verify=ssl.create_default_context(cafile=self.ca)) if library == "httpx" else None

    def post(self, body) -> dict:
        if self._httpx is not None:
            response = self._httpx.post(self.url, json=body, headers=self.headers, params=self.params,
                                        timeout=seconds(10))
        else:
            response = requests.post(self.url, json=body, headers=self.headers, params=self.params, verify=self.ca,
                                     timeout=seconds(10))
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        return response.json()

    def call(self, method: str, *items: dict, **extra) -> dict:
        body = {"id": 1, "method": method, "params": list(items), **extra}
        if self.session and "session" not in extra:
            body["session"] = self.session
        return self.post(body)

    def one(self, method: str, url: str, data=None, **item) -> dict:
        extra = {k: item.pop(k) for k in ("verbose", "id") if k in item}
        param = {"url": url, **({"data": data} if data is not None else {}), **item}
        return self.call(method, param, **extra)["result"][0]

    def code(self, method: str, url: str, data=None, **item) -> int:
        return self.one(method, url, data, **item)["status"]["code"]

    def login(self, user: str, password: str) -> dict:
        answer = self.call("exec", {"url": "/sys/login/user", "data": {"user": user, "passwd": password}})
        self.session = answer.get("session")
        return answer

    def close(self) -> None:
        if self._httpx is not None:
            self._httpx.close()


def key_rpc(device, library: str = "requests") -> Rpc:
    """A caller holding the scenario API user's current key."""
    return Rpc(device, library, key=device.token)


def admin_password(device, user: str = "admin") -> str:
    return device.state.admins[user].password


def scenario_file(tmp_path: Path, name: str, text: str) -> Path:
    """A scenario file next to the test (``extends`` finds the catalogue)."""
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path
