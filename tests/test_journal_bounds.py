"""A device's journal is bounded in bytes as well as in entries, and is read in bounded pages (issue 13).

A client flooding a device with huge headers and bodies used to grow the journal by everything it
sent (5.9 MB of headers per request); now each part of an entry is stored cut to a few KiB with its
true size recorded, the oldest entries go once the journal weighs ``journal_bytes``, and the control
API answers a large journal page by page.
"""

from __future__ import annotations

import json

import pytest
import requests

from mockfgt import Harness
from mockfgt.control import JOURNAL_PAGE_BYTES
from mockfgt.device import MAX_HEADER_BYTES
from mockfgt.journal import BODY_LIMIT, HEADERS_LIMIT, VALUE_LIMIT, weigh

from deadlines import seconds
from run_cli import control_auth, run_mockfgt
from stress import journal_flood

STATUS = "/api/v2/monitor/system/status"
BIG_VALUE = "v" * 60_000  # under http.server's 64 KiB line limit, so the request is read whole


def _session(device) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = device.ca_bundle
    return session


def _flood(device, requests_sent: int, *, headers: int, body: int = 0) -> list[requests.Response]:
    with _session(device) as session:
        big = {f"X-Flood-{i}": BIG_VALUE for i in range(headers)}
        return [session.post(device.url + STATUS, headers=big, data=b"b" * body, timeout=seconds(30))
                for _ in range(requests_sent)]


def test_a_flood_of_huge_headers_and_bodies_stays_within_the_journal_byte_cap(make_fortigate):
    cap = 256 * 1024
    device = make_fortigate(journal_bytes=cap)
    answers = _flood(device, 30, headers=20, body=1_000_000)  # 1.2 MB of headers and 1 MB of body each
    assert {a.status_code for a in answers} == {431}
    events = device.journal.events()
    assert device.journal.bytes <= cap
    assert sum(weigh(e) for e in events) <= cap  # the weight is what the entries weigh as JSON
    assert device.journal.evicted == 30 - len(events) > 0  # the oldest went first...
    assert [e["seq"] for e in events] == list(range(31 - len(events), 31))  # ...the newest stayed
    for entry in events:
        assert entry["status"] == 431
        assert entry["headers_size"] > 20 * 60_000 and entry["body_size"] == 1_000_000
        assert set(entry["truncated"]) == {"headers", "body"}
        assert entry["header_sizes"]["X-Flood-0"] == 60_000
        assert all(len(v) <= VALUE_LIMIT for v in entry["headers"].values())
        assert sum(len(v) for v in entry["headers"].values()) <= HEADERS_LIMIT
        assert len(entry["body"]) <= BODY_LIMIT


def test_the_journal_keeps_what_a_normal_request_sent_whole(fortigate):
    with _session(fortigate) as session:
        session.post(fortigate.url + "/api/v2/cmdb/firewall/address", json={"name": "bounds-1", "subnet": "192.0.2.7/32"},
                     headers={"Authorization": f"Bearer {fortigate.token}"}, timeout=seconds(10))
    entry = fortigate.assert_request_made("POST", "/api/v2/cmdb/firewall/address", status=200)[0]
    assert entry["truncated"] == [] and entry["header_sizes"] == {}
    assert json.loads(entry["body"]) == {"name": "bounds-1", "subnet": "192.0.2.7/32"}
    assert entry["headers_size"] > 0


def test_header_sections_over_the_limit_are_refused_431_and_the_connection_serves_on(fortigate):
    assert MAX_HEADER_BYTES == 64 * 1024
    with _session(fortigate) as session:
        get = lambda headers: session.get(fortigate.url + STATUS, headers=headers, timeout=seconds(10))  # noqa: E731
        under = get({"Authorization": f"Bearer {fortigate.token}", "X-Big": "u" * 60_000})
        over = get({"Authorization": f"Bearer {fortigate.token}", "X-Big": "o" * 40_000, "X-Big-2": "o" * 30_000})
        after = get({"Authorization": f"Bearer {fortigate.token}"})
    assert under.status_code == 200  # 60 KB in all is accepted
    assert over.status_code == 431 and "Request Header Fields Too Large" in over.text
    assert after.status_code == 200
    refused = fortigate.assert_request_made("GET", STATUS, status=431, count=1)[0]
    assert refused["result"] is None and refused["header_sizes"] == {"X-Big": 40_000, "X-Big-2": 30_000}


def test_journal_capacity_still_bounds_the_number_of_entries(make_fortigate):
    device = make_fortigate(journal_capacity=5)
    with _session(device) as session:
        for _ in range(8):
            session.get(device.url + STATUS, timeout=seconds(10))
    assert [e["seq"] for e in device.journal.events()] == [4, 5, 6, 7, 8]
    assert device.journal.evicted == 3


def test_clearing_the_journal_forgets_its_weight(make_fortigate):
    device = make_fortigate()
    _flood(device, 3, headers=2)
    assert device.journal.bytes > 0
    device.journal.clear()
    assert device.journal.bytes == 0 and device.journal.events() == []


def test_a_journal_byte_cap_must_be_positive(make_fortigate):
    with pytest.raises(ValueError, match="at least one"):
        make_fortigate(journal_bytes=0)


# -- reading a large journal --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flooded(mockfgt_ca):
    """A harness whose device journal weighs about 2.5 pages of the control API."""
    with Harness(ca=mockfgt_ca) as harness:
        device = harness.add("fgt-healthy")
        harness.start()
        with _session(device) as session:
            for _ in range(80):  # ~33 KiB an entry: headers cut to 16 KiB, the body to 16 KiB
                session.post(device.url + STATUS, data=b"p" * 40_000, timeout=seconds(30),
                             headers={f"X-Page-{i}": "p" * 8_000 for i in range(4)})
        assert device.journal.bytes > 2 * JOURNAL_PAGE_BYTES
        yield harness, device


def test_the_control_api_answers_a_large_journal_in_bounded_pages(flooded):
    harness, device = flooded
    url = f"{harness.control_url}/devices/{device.name}/journal"
    seen, since, pages = [], 0, 0
    while True:
        answer = requests.get(url, params={"since": since}, timeout=seconds(10), headers=control_auth(harness))
        assert answer.status_code == 200
        assert len(answer.content) <= JOURNAL_PAGE_BYTES + 64 * 1024  # a page, plus at most one entry
        page = answer.json()
        seen += [e["seq"] for e in page]
        pages += 1
        assert answer.headers["X-Mockfgt-Journal-Next"] == str(page[-1]["seq"])
        if answer.headers["X-Mockfgt-Journal-More"] == "false":
            break
        since = page[-1]["seq"]
    assert pages >= 3
    assert seen == [e["seq"] for e in device.journal.events()]  # every event once, in order


def test_the_control_api_answers_at_most_limit_events(flooded):
    harness, device = flooded
    answer = requests.get(f"{harness.control_url}/devices/{device.name}/journal", params={"since": 3, "limit": 2}, headers=control_auth(harness),
                          timeout=seconds(10))
    assert [e["seq"] for e in answer.json()] == [4, 5] and answer.headers["X-Mockfgt-Journal-More"] == "true"
    refused = requests.get(f"{harness.control_url}/devices/{device.name}/journal", params={"limit": 0}, headers=control_auth(harness),
                           timeout=seconds(10))
    assert refused.status_code == 400 and "limit" in refused.json()["error"]


def test_ctl_journal_reads_every_page(flooded):
    harness, device = flooded
    everything = run_mockfgt("ctl", "--control", harness.control_url, "journal", device.name,
                             MOCKFGT_CONTROL_TOKEN=harness.control_token)
    assert everything.returncode == 0, everything.stderr
    assert [e["seq"] for e in json.loads(everything.stdout)] == [e["seq"] for e in device.journal.events()]
    some = run_mockfgt("ctl", "--control", harness.control_url, "journal", device.name, "--since", "10",
                       "--limit", "3", MOCKFGT_CONTROL_TOKEN=harness.control_token)
    assert [e["seq"] for e in json.loads(some.stdout)] == [11, 12, 13]


# -- the stress module at the size of make test ---------------------------------------------------------
def test_a_journal_flood_leaves_only_bounded_bytes_held(mockfgt_ca):
    with Harness(ca=mockfgt_ca) as harness:
        device = harness.add("fgt-healthy")
        harness.start()
        figures = journal_flood.flood(harness, device, **journal_flood.SIZES["test"])
        assert len(device.journal) == 0  # the flood ends with a clear
    assert figures.statuses == {431: figures.requests}
    per_request = figures.sent_bytes / figures.requests  # 1.2 MB of headers and a 200 kB body
    assert figures.journal_entries == figures.requests and figures.journal_bytes <= figures.journal_cap
    assert figures.journal_bytes / figures.journal_entries < 64 * 1024 < per_request / 10
    assert figures.largest_page <= JOURNAL_PAGE_BYTES + 64 * 1024
    assert set(figures.rss_kib) >= {"before", "after flood", "after read", "after clear"}


def test_the_byte_cap_grows_with_a_capacity_raised_to_keep_more(make_fortigate):
    assert make_fortigate().journal.max_bytes == 16 * 1024 * 1024
    assert make_fortigate(journal_capacity=5).journal.max_bytes == 16 * 1024 * 1024
    assert make_fortigate(journal_capacity=1_000_000).journal.max_bytes == 100 * 16 * 1024 * 1024
    assert make_fortigate(journal_capacity=1_000_000, journal_bytes=1 << 20).journal.max_bytes == 1 << 20
