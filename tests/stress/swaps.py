"""Scenario swaps while traffic flows: errors are allowed during a swap, hangs and crashes are not.

Client threads keep sending reads and writes to one device of a harness while two swappers change
its scenario at random, one through :meth:`Device.use`, one through the control API, among faults
that touch every layer: TLS material, refused and reset connections, stalls, a FortiManager in place
of the FortiGate. Every client request has a timeout; afterwards each client thread must have
finished, and the device, back on ``fgt-healthy``, must answer correctly.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from deadlines import seconds

SWAP_TO = ("fgt-healthy", "expired-cert", "tls10-only", "client-cert-required", "read-only-profile",
           "token-regenerated", "reset-on-connect", "port-closed", "plaintext-http", "response-stall",
           "tls-stall", "fmg-healthy", "fgt-healthy")
STATUS = "/api/v2/monitor/system/status"
ADDRESSES = "/api/v2/cmdb/firewall/address"
CLIENT_TIMEOUT = seconds(5)


@dataclass
class SwapFigures:
    swaps: int = 0
    requests: int = 0
    outcomes: Counter = field(default_factory=Counter)  # "200", "401", "SSLError", ...
    hung_clients: int = 0
    served_afterwards: bool = False


def _client(device, stop: threading.Event, figures: SwapFigures, lock: threading.Lock, number: int) -> None:
    session = requests.Session()
    session.trust_env = False
    k = 0
    while not stop.is_set():
        token = device.token  # whatever the scenario's key is now; a swap may change it under us
        try:
            if k % 3 == 2:
                answer = session.post(device.url + ADDRESSES, json={"name": f"s{number}-{k}", "subnet": "192.0.2.1/32"},
                                      headers={"Authorization": f"Bearer {token}"}, verify=device.ca_bundle,
                                      timeout=CLIENT_TIMEOUT)
            else:
                answer = session.get(device.url + STATUS, headers={"Authorization": f"Bearer {token}"},
                                     verify=device.ca_bundle, timeout=CLIENT_TIMEOUT)
            outcome = str(answer.status_code)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
            session.close()  # a broken connection is not reused
            session = requests.Session()
            session.trust_env = False
        with lock:
            figures.requests += 1
            figures.outcomes[outcome] += 1
        k += 1
        if k % 2 == 0:  # half the requests on a new connection, so handshakes meet the swaps too
            session.close()
            session = requests.Session()
            session.trust_env = False
    session.close()


def _swapper(harness, name: str, swaps: int, via_control: bool, figures: SwapFigures, lock: threading.Lock,
             seed: int) -> None:
    rng = random.Random(seed)
    device = harness.device(name)
    for _ in range(swaps):
        scenario = rng.choice(SWAP_TO)
        if via_control:
            answer = requests.post(f"{harness.control_url}/devices/{name}/scenario", json={"scenario": scenario},
                                   headers={"Authorization": f"Bearer {harness.control_token}"}, timeout=seconds(30))
            assert answer.status_code == 200, answer.text
        else:
            device.use(scenario)
        with lock:
            figures.swaps += 1
        time.sleep(rng.uniform(0.0, 0.02))


def swap_under_traffic(harness, name: str, clients: int, swaps_each: int, seed: int = 7) -> SwapFigures:
    """``clients`` client threads against device ``name`` while two swappers make ``swaps_each`` swaps each."""
    figures, lock, stop = SwapFigures(), threading.Lock(), threading.Event()
    device = harness.device(name)
    client_threads = [threading.Thread(target=_client, args=(device, stop, figures, lock, n), name=f"swap-client-{n}")
                      for n in range(clients)]
    swappers = [threading.Thread(target=_swapper, args=(harness, name, swaps_each, via, figures, lock, seed + via),
                                 name=f"swapper-{via}") for via in (False, True)]
    for thread in client_threads + swappers:
        thread.start()
    for thread in swappers:
        thread.join()
    stop.set()
    device.use("fgt-healthy")  # ends any stall a client is still waiting in
    for thread in client_threads:
        thread.join(CLIENT_TIMEOUT * 3)
    figures.hung_clients = sum(t.is_alive() for t in client_threads)
    device.use("fgt-healthy")  # again: the last requests with stale keys may have locked the source out
    figures.served_afterwards = _serves_correctly(device)
    return figures


def _serves_correctly(device) -> bool:
    auth = {"Authorization": f"Bearer {device.token}"}
    status = requests.get(device.url + STATUS, headers=auth, verify=device.ca_bundle, timeout=CLIENT_TIMEOUT)
    created = requests.post(device.url + ADDRESSES, json={"name": "after-swaps", "subnet": "192.0.2.99/32"},
                            headers=auth, verify=device.ca_bundle, timeout=CLIENT_TIMEOUT)
    read = requests.get(device.url + ADDRESSES + "/after-swaps", headers=auth, verify=device.ca_bundle,
                        timeout=CLIENT_TIMEOUT)
    return (status.status_code == 200 and status.json()["status"] == "success" and created.status_code == 200
            and read.status_code == 200 and read.json()["results"][0]["subnet"] == "192.0.2.99 255.255.255.255")
