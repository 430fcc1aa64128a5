"""Many clients writing to one device at once: nothing lost, nothing doubled, revisions in one line.

FortiOS: each client creates addresses, adds them to its own group, removes them again and deletes
some; every write answers its revision and the one before it, so the writes of all clients must
form one unbroken chain (old -> new), with each client's own writes in order along it.

FortiManager: each client logs in with its own session and writes in batches under the ADOM's
workspace lock (lock, writes, commit, unlock), retrying the lock while another session holds it.

Afterwards the device's objects must be exactly what the clients' successful writes add up to,
and its journal must hold every write.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from deadlines import seconds

ADDRESSES = "/api/v2/cmdb/firewall/address"
GROUPS = "/api/v2/cmdb/firewall/addrgrp"
TIMEOUT = seconds(30)


@dataclass
class WriteFigures:
    clients: int
    writes: int = 0  # write requests sent
    failed: list[str] = field(default_factory=list)  # writes the device did not accept
    lost: list[str] = field(default_factory=list)  # objects a client made that the device does not have
    unexpected: list[str] = field(default_factory=list)  # objects the device has that no client left there
    duplicated: list[str] = field(default_factory=list)
    revision_problems: list[str] = field(default_factory=list)
    journal_missing: int = 0  # writes answered but not in the journal
    lock_retries: int = 0
    seconds: float = 0.0

    @property
    def lost_writes(self) -> int:
        return len(self.failed) + len(self.lost) + len(self.unexpected) + len(self.duplicated) + self.journal_missing


def _session(device) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = device.ca_bundle
    session.headers["Authorization"] = f"Bearer {device.token}"
    return session


# -- FortiOS ------------------------------------------------------------------------------------------
@dataclass
class _FortiOSClient:
    number: int
    writes: int
    addresses: set[str] = field(default_factory=set)
    members: list[str] = field(default_factory=list)
    group_made: bool = False
    revisions: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    sent: Counter = field(default_factory=Counter)

    @property
    def group(self) -> str:
        return f"grp-{self.number}"

    def plan(self):
        """The client's writes, one at a time: (method, path, body, what it changes when accepted)."""
        k = 0
        while True:
            first, second = f"c{self.number}-{k}-a", f"c{self.number}-{k}-b"
            yield "POST", ADDRESSES, {"name": first, "subnet": f"10.{self.number % 250}.{k % 250}.1/32"}, \
                lambda first=first: self.addresses.add(first)
            yield "POST", ADDRESSES, {"name": second, "subnet": f"10.{self.number % 250}.{k % 250}.2/32"}, \
                lambda second=second: self.addresses.add(second)
            if not self.group_made:
                yield "POST", GROUPS, {"name": self.group, "member": [{"name": first}, {"name": second}]}, \
                    lambda first=first, second=second: (setattr(self, "group_made", True),
                                                        self.members.extend([first, second]))
            else:
                new = self.members + [first, second]
                yield "PUT", f"{GROUPS}/{self.group}", {"member": [{"name": n} for n in new]}, \
                    lambda new=new: self.members.__setitem__(slice(None), new)
            kept = [n for n in self.members if n != first] or [second]
            yield "PUT", f"{GROUPS}/{self.group}", {"member": [{"name": n} for n in kept]}, \
                lambda kept=kept: self.members.__setitem__(slice(None), kept)
            yield "DELETE", f"{ADDRESSES}/{first}", None, lambda first=first: self.addresses.discard(first)
            k += 1

    def run(self, device, start: threading.Barrier) -> None:
        session = _session(device)
        start.wait()
        plan = self.plan()
        for _ in range(self.writes):
            method, path, body, accepted = next(plan)
            self.sent[(method, path)] += 1
            try:
                answer = session.request(method, device.url + path, json=body, timeout=TIMEOUT)
                envelope = answer.json()
            except (requests.RequestException, ValueError) as exc:
                self.failed.append(f"{method} {path}: {exc}")
                continue
            if answer.status_code != 200:
                self.failed.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
                continue
            accepted()
            self.revisions.append((envelope["old_revision"], envelope["revision"]))
        session.close()


def fortios_writers(device, clients: int, writes: int) -> WriteFigures:
    """``clients`` threads each sending ``writes`` writes to a FortiGate (7.x: writes carry old_revision)."""
    figures = WriteFigures(clients)
    initial = device.state.revision
    factory = {row["name"] for row in device.state.list_rows("root", "firewall/address")}  # there before any writer
    journaled_before = Counter((e["method"], e["path"]) for e in device.journal.requests() if e["status"] == 200)
    workers = [_FortiOSClient(n, writes) for n in range(clients)]
    started = time.perf_counter()
    _run_all(workers, device)
    figures.seconds = round(time.perf_counter() - started, 2)
    figures.writes = sum(sum(w.sent.values()) for w in workers)
    figures.failed = [f for w in workers for f in w.failed]
    _compare_fortios(device, workers, figures, factory)
    figures.revision_problems = _revision_chain_problems(initial, device.state.revision, workers)
    journaled = Counter((e["method"], e["path"]) for e in device.journal.requests() if e["status"] == 200)
    journaled -= journaled_before
    answered = Counter()
    for w in workers:
        answered.update(w.sent)
    answered_ok = sum(answered.values()) - sum(len(w.failed) for w in workers)
    figures.journal_missing = max(0, answered_ok - sum(journaled[k] for k in answered))
    return figures


def _compare_fortios(device, workers: list[_FortiOSClient], figures: WriteFigures, factory: set[str]) -> None:
    session = _session(device)
    addresses = [r["name"] for r in session.get(device.url + ADDRESSES, timeout=TIMEOUT).json()["results"]]
    groups = {r["name"]: [m["name"] for m in r["member"]]
              for r in session.get(device.url + GROUPS, timeout=TIMEOUT).json()["results"]}
    session.close()
    figures.duplicated = [n for n, count in Counter(addresses).items() if count > 1]
    expected = {n for w in workers for n in w.addresses}
    figures.lost = sorted(expected - set(addresses))
    figures.unexpected = sorted(set(addresses) - expected - factory)
    for w in workers:
        if w.group_made and groups.get(w.group) != w.members:
            figures.lost.append(f"{w.group}: device has {groups.get(w.group)}, client left {w.members}")


def _revision_chain_problems(initial: str, final: str, workers: list[_FortiOSClient]) -> list[str]:
    """Every write's (old, new) pair must link into one chain from ``initial`` to ``final``."""
    pairs = [pair for w in workers for pair in w.revisions]
    following = dict(pairs)
    problems = []
    if len(following) != len(pairs):
        problems.append(f"{len(pairs) - len(following)} writes answered an old_revision another write also had")
    news = [new for _, new in pairs]
    if len(set(news)) != len(news):
        problems.append(f"{len(news) - len(set(news))} writes answered a revision another write also had")
    order, current = {}, initial
    while current in following and len(order) <= len(pairs):
        current = following[current]
        order[current] = len(order)
    if len(order) != len(pairs) or current != final:
        problems.append(f"the chain from the initial revision reaches {len(order)} of {len(pairs)} writes")
    for w in workers:
        positions = [order.get(new, -1) for _, new in w.revisions]
        if positions != sorted(positions) or len(set(positions)) != len(positions):
            problems.append(f"client {w.number}: its revisions are out of order along the chain")
    return problems


# -- FortiManager -------------------------------------------------------------------------------------
OBJECTS = "/pm/config/adom/root/obj/firewall"
LOCKED = -20055


@dataclass
class _FortiManagerClient:
    number: int
    writes: int
    batch: int
    password: str
    addresses: set[str] = field(default_factory=set)
    members: list[str] = field(default_factory=list)
    group_made: bool = False
    failed: list[str] = field(default_factory=list)
    sent: int = 0
    rpc_calls: int = 0
    lock_retries: int = 0

    @property
    def group(self) -> str:
        return f"grp-{self.number}"

    def call(self, session, device, method: str, url: str, data=None) -> int:
        self.rpc_calls += 1
        item = {"url": url, **({"data": data} if data is not None else {})}
        body = {"id": self.rpc_calls, "method": method, "params": [item], "session": self.session_id}
        try:
            answer = session.post(device.url + "/jsonrpc", json=body, timeout=TIMEOUT).json()
            return answer["result"][0]["status"]["code"]
        except (requests.RequestException, ValueError, KeyError, IndexError) as exc:
            self.failed.append(f"{method} {url}: {exc}")
            return -999

    def write(self, session, device, method, url, data, accepted) -> None:
        self.sent += 1
        code = self.call(session, device, method, url, data)
        if code == 0:
            accepted()
        else:
            self.failed.append(f"{method} {url}: code {code}")

    def plan(self):
        k = 0
        while True:
            name = f"m{self.number}-{k}"
            yield "add", f"{OBJECTS}/address", {"name": name, "subnet": f"10.{self.number % 250}.{k % 250}.0/24"}, \
                lambda name=name: self.addresses.add(name)
            if not self.group_made:
                yield "add", f"{OBJECTS}/addrgrp", {"name": self.group, "member": [name]}, \
                    lambda name=name: (setattr(self, "group_made", True), self.members.append(name))
            else:
                yield "add", f"{OBJECTS}/addrgrp/{self.group}/member", [name], \
                    lambda name=name: self.members.append(name)
            if k % 2:
                previous = f"m{self.number}-{k - 1}"
                yield "delete", f"{OBJECTS}/addrgrp/{self.group}/member", [previous], \
                    lambda previous=previous: self.members.remove(previous)
                yield "delete", f"{OBJECTS}/address/{previous}", None, \
                    lambda previous=previous: self.addresses.discard(previous)
            k += 1

    def run(self, device, start) -> None:
        session = requests.Session()
        session.trust_env, session.verify = False, device.ca_bundle
        login = {"id": 0, "method": "exec", "params": [{"url": "/sys/login/user",
                                                        "data": {"user": "admin", "passwd": self.password}}]}
        self.session_id = session.post(device.url + "/jsonrpc", json=login, timeout=TIMEOUT).json()["session"]
        start.wait()
        plan, left = self.plan(), self.writes
        while left > 0:
            self.lock(session, device)
            for _ in range(min(self.batch, left)):
                method, url, data, accepted = next(plan)
                self.write(session, device, method, url, data, accepted)
                left -= 1
            for step in ("commit", "unlock"):
                code = self.call(session, device, "exec", f"/dvmdb/adom/root/workspace/{step}")
                if code != 0:
                    self.failed.append(f"{step}: code {code}")
        session.close()

    def lock(self, session, device) -> None:
        """Take the ADOM lock, backing off while another session holds it (as a polite client does)."""
        pause = 0.005
        while (code := self.call(session, device, "exec", "/dvmdb/adom/root/workspace/lock")) == LOCKED:
            self.lock_retries += 1
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 0.25)
        if code != 0:
            self.failed.append(f"lock: code {code}")


def fortimanager_writers(device, clients: int, writes: int, batch: int = 20) -> WriteFigures:
    """``clients`` sessions each making ``writes`` object writes in workspace mode, ``batch`` per lock."""
    figures = WriteFigures(clients)
    password = device.state.admins["admin"].password
    workers = [_FortiManagerClient(n, writes, batch, password) for n in range(clients)]
    journaled_before = len(device.journal.requests(method="POST", path="/jsonrpc"))
    started = time.perf_counter()
    _run_all(workers, device)
    figures.seconds = round(time.perf_counter() - started, 2)
    figures.writes = sum(w.sent for w in workers)
    figures.failed = [f for w in workers for f in w.failed]
    figures.lock_retries = sum(w.lock_retries for w in workers)
    committed = device.state.adoms["root"].committed
    names = list(committed["firewall/address"])
    expected = {n for w in workers for n in w.addresses}
    figures.lost = sorted(expected - set(names))
    figures.unexpected = sorted(n for n in set(names) - expected if n.startswith("m"))
    for w in workers:
        group = committed["firewall/addrgrp"].get(w.group)
        if w.group_made and (group is None or group["member"] != w.members):
            figures.lost.append(f"{w.group}: device has {group and group['member']}, client left {w.members}")
    rpc_calls = sum(w.rpc_calls + 1 for w in workers)  # + the login
    journaled = len(device.journal.requests(method="POST", path="/jsonrpc")) - journaled_before
    figures.journal_missing = max(0, rpc_calls - journaled)
    return figures


def _run_all(workers: list, device) -> None:
    """Run every worker on its own thread; a barrier releases them together."""
    start = threading.Barrier(len(workers))
    threads = [threading.Thread(target=w.run, args=(device, start), name=f"writer-{w.number}") for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
