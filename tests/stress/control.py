"""What a web page or another local user can try against the control API, many times: all refused.

A page the user opens can send "simple" cross-origin requests (GET, or POST as text/plain or a form,
no custom header, so no preflight) and, after DNS rebinding, same-origin requests with a foreign
``Host``. Another local user can reach the port but not read the 0600 manifest, so has no token.
Each kind below is one such request; none may be answered 2xx, change a device, carry a CORS
header, answer 5xx, or repeat a secret (device keys, admin passwords, the control token).

    PYTHONPATH=tests .venv/bin/python -c "from stress import control; print(*control.run(rounds=50).lines(), sep='\\n')"

:func:`attack` takes a started :class:`mockfgt.Harness`; :func:`run` builds one.
"""

from __future__ import annotations

import secrets as random_secrets
from collections import Counter
from dataclasses import dataclass, field

import requests

from deadlines import seconds

EVIL = "http://evil.example"
REBOUND = "rebind.evil.example"


@dataclass
class ControlFigures:
    requests: int = 0
    by_kind: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    accepted: list = field(default_factory=list)  # (kind, status) answered 2xx: must stay empty
    server_errors: int = 0  # 5xx: must be 0
    cors_headers: int = 0  # answers with an Access-Control-* header: must be 0
    leaks: int = 0  # answers repeating a device key, password or the control token: must be 0
    devices_changed: list = field(default_factory=list)  # devices whose scenario or key moved: must be empty

    @property
    def ok(self) -> bool:
        return not (self.accepted or self.server_errors or self.cors_headers or self.leaks or self.devices_changed)

    def lines(self) -> list[str]:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return [f"{self.requests} hostile control requests ({len(self.by_kind)} kinds); statuses {statuses}",
                f"accepted {len(self.accepted)}, 5xx {self.server_errors}, CORS headers {self.cors_headers}, "
                f"secrets repeated {self.leaks}, devices changed {len(self.devices_changed)} (all must be 0)"]


def secrets_of(harness) -> set[str]:
    """Every credential the manifest holds: keys, passwords, the control token."""
    found, stack = set(), [harness.manifest()]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("token", "tokens", "control_token", "password") and isinstance(item, str) and item:
                    found.add(item)
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    for device in harness.devices.values():
        found.update(device.tokens.values())
    return found


def _kinds(harness, target: str) -> dict[str, dict]:
    """Request keyword arguments by kind; ``target`` is the device whose scenario they try to switch."""
    host, port = harness.control_address
    switch = f"/devices/{target}/scenario"
    body = '{"scenario": "expired-cert"}'
    token = {"Authorization": f"Bearer {harness.control_token}"}
    evil = {"Origin": EVIL}
    return {
        # A stranger on the machine: no token, or a guessed one.
        "no-token": dict(method="GET", path="/manifest", headers={}),
        "wrong-token": dict(method="POST", path=switch, data=body, headers={
            "Authorization": f"Bearer {random_secrets.token_urlsafe(32)}", "Content-Type": "application/json"}),
        "basic-auth": dict(method="GET", path="/manifest", headers={"Authorization": "Basic YWRtaW46"}),
        # A web page: simple requests, no preflight.
        "page-text-plain": dict(method="POST", path=switch, data=body, headers={**evil, "Content-Type": "text/plain"}),
        "page-form": dict(method="POST", path=f"/devices/{target}/regenerate-key", data="user=agent",
                          headers={**evil, "Content-Type": "application/x-www-form-urlencoded"}),
        "page-get": dict(method="GET", path="/manifest", headers=evil),
        "null-origin": dict(method="POST", path=switch, data=body, headers={"Origin": "null", "Content-Type": "text/plain"}),
        "preflight": dict(method="OPTIONS", path=switch, headers={**evil, "Access-Control-Request-Method": "POST",
                                                                   "Access-Control-Request-Headers": "authorization"}),
        # The layers behind the token hold on their own, even for a caller that somehow had it.
        "page-with-token": dict(method="POST", path=switch, data=body,
                                headers={**token, **evil, "Content-Type": "text/plain"}),
        "text-plain-with-token": dict(method="POST", path=switch, data=body, headers={**token, "Content-Type": "text/plain"}),
        # DNS rebinding: the page's own name now points at 127.0.0.1, so to the browser it is same-origin.
        "rebind": dict(method="GET", path="/manifest", headers={"Host": f"{REBOUND}:{port}"}),
        "rebind-same-origin": dict(method="POST", path=switch, data=body, headers={
            "Host": f"{REBOUND}:{port}", "Origin": f"http://{REBOUND}:{port}", "Content-Type": "text/plain"}),
        "rebind-with-token": dict(method="GET", path="/manifest", headers={**token, "Host": f"{REBOUND}:{port}"}),
        "other-port-host": dict(method="GET", path="/devices", headers={**token, "Host": f"{host}:{port + 1}"}),
    }


def attack(harness, rounds: int = 20) -> ControlFigures:
    """Every kind ``rounds`` times against ``harness`` (started, with a control API and a device)."""
    figures = ControlFigures()
    target = next(iter(harness.devices))
    before = {name: (d.scenario.name, d.token) for name, d in harness.devices.items()}
    known = secrets_of(harness)
    session = requests.Session()
    session.trust_env = False  # loopback: never a proxy
    try:
        for _ in range(rounds):
            for kind, spec in _kinds(harness, target).items():
                answer = session.request(spec["method"], harness.control_url + spec["path"], data=spec.get("data"),
                                         headers=spec["headers"], timeout=seconds(10))
                figures.requests += 1
                figures.by_kind[kind] += 1
                figures.statuses[answer.status_code] += 1
                if answer.status_code < 300:
                    figures.accepted.append((kind, answer.status_code))
                figures.server_errors += answer.status_code >= 500
                figures.cors_headers += any(h.lower().startswith("access-control-") for h in answer.headers)
                figures.leaks += any(secret in answer.text for secret in known)
    finally:
        session.close()
    after = {name: (d.scenario.name, d.token) for name, d in harness.devices.items()}
    figures.devices_changed = [name for name in before if before[name] != after[name]]
    return figures


def run(rounds: int = 20, ca=None) -> ControlFigures:
    """A harness of its own (a FortiGate and a FortiManager with a password login), attacked ``rounds`` times."""
    from mockfgt import Harness

    with Harness(ca=ca) as harness:
        harness.add("fgt-healthy")
        harness.add("fmg-healthy")
        harness.start()
        return attack(harness, rounds)
