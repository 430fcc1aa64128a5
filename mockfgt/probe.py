"""The reference agent: what a typical address-managing agent does, and the code it should report.

``probe(client)`` runs the agent's usual calls against whatever ``client`` points at (a mock device's
:attr:`~mockfgt.Device.client`, or settings you build for a real device) with the standard library
only, and classifies the first failure with :func:`mockfgt.classify`. The CLI, the benchmarks and
``diagnose`` use it; tests also drive the devices with requests, httpx and curl directly.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from .classify import classify
from .codes import OK


@dataclass(frozen=True)
class ProbeResult:
    code: str  # "ok" or 202000..202004
    step: str  # the call that decided it, e.g. "GET /api/v2/monitor/system/status"
    detail: str  # HTTP status or the exception, for humans


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: dict | None = None


def fortigate_steps(client) -> list[Step]:
    """Status probe, list addresses, and (for a writing agent) create and delete one."""
    steps = [Step("GET", "/api/v2/monitor/system/status"), Step("GET", "/api/v2/cmdb/firewall/address")]
    if client.write:
        name = f"mockfgt-probe-{uuid.uuid4().hex[:8]}"
        steps += [
            Step("POST", "/api/v2/cmdb/firewall/address", {"name": name, "subnet": "192.0.2.1/32"}),
            Step("DELETE", f"/api/v2/cmdb/firewall/address/{name}"),
        ]
    return steps


def send(client, step: Step, timeout: float):
    """One HTTP call as the agent makes it; returns the urllib response or raises."""
    params = client.params()
    url = client.url + step.path + (f"?{urlencode(params)}" if params else "")
    data = json.dumps(step.body).encode() if step.body is not None else None
    request = urllib.request.Request(url, data=data, method=step.method, headers=client.headers())
    if data is not None:
        request.add_header("Content-Type", "application/json")
    handlers = [urllib.request.ProxyHandler({})]  # loopback only: never a proxy from the environment
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=client.ssl_context()))
    opener = urllib.request.build_opener(*handlers)
    with opener.open(request, timeout=timeout) as response:
        response.read()
        return response


def probe(client, *, kind: str = "fortigate", timeout: float = 10.0) -> ProbeResult:
    """Run the reference agent once and report the first failure's code, or ``ok``."""
    steps = fortigate_steps(client)
    for step in steps:
        label = f"{step.method} {step.path}"
        try:
            response = send(client, step, timeout)
        except urllib.error.HTTPError as exc:
            return ProbeResult(classify(exc), label, f"HTTP {exc.code}")
        except Exception as exc:  # classified, never raised: the probe reports what a client would
            try:
                return ProbeResult(classify(exc), label, repr(exc))
            except ValueError:
                raise exc from None
        code = classify(response)
        if code != OK:
            return ProbeResult(code, label, f"HTTP {response.status}")
    return ProbeResult(OK, f"{len(steps)} calls", "all answered")
