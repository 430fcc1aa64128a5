"""Devices of one kind share one app; each request is still answered from its own device's state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from mockfgt.device import shared_app

from deadlines import seconds

ADDRESSES = "/api/v2/cmdb/firewall/address"


def address_names(device, session: requests.Session) -> set[str]:
    answer = session.get(device.url + ADDRESSES, headers={"Authorization": f"Bearer {device.token}"},
                         verify=device.ca_bundle, timeout=seconds(5))
    assert answer.status_code == 200
    return {row["name"] for row in answer.json()["results"]}


def test_concurrent_requests_to_two_devices_see_their_own_state(make_fortigate):
    first, second = make_fortigate(), make_fortigate()
    assert first._serving[0] is second._serving[0] is shared_app(first._kind)
    created = requests.post(first.url + ADDRESSES, json={"name": "only-on-first", "subnet": "192.0.2.9/32"},
                            headers={"Authorization": f"Bearer {first.token}"}, verify=first.ca_bundle,
                            timeout=seconds(5))
    assert created.status_code == 200

    def walk(device) -> list[bool]:
        with requests.Session() as session:
            return ["only-on-first" in address_names(device, session) for _ in range(20)]

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(walk, [first, second, first, second]))
    assert seen == [[True] * 20, [False] * 20, [True] * 20, [False] * 20]


def test_a_swap_is_seen_by_the_next_request(make_fortigate):
    device = make_fortigate()
    token = device.token
    device.use("token-regenerated")
    answer = requests.get(device.url + "/api/v2/monitor/system/status", headers={"Authorization": f"Bearer {token}"},
                          verify=device.ca_bundle, timeout=seconds(5))
    assert answer.status_code == 401
