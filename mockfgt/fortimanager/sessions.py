"""Who is asking: API keys and the sessions of ``exec /sys/login/user``, with their idle expiry.

A session has an id (the string the login answers) and a number (the device's internal session
number: what ``workspace/lockinfo`` reports as ``lock_sid`` and what answers to requests made with
the session carry as ``session``). Numbers come from the same counter as the fixed numbers of API
keys, so they never collide. Ending a session calls ``on_end`` with its number, which releases the
ADOM locks it held. No method takes a lock: :class:`~mockfgt.fortimanager.models.FortiManagerState`
calls them under its own.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..clock import REAL, Clock
from .access import Principal
from .admins import Admin, new_session_id
from .errors import LOGIN_FAILED, NO_PERMISSION, FMGError


@dataclass
class Session:
    sid: str
    number: int
    admin: str
    last_used: float
    via: str = "jsonrpc"  # or "gui": which idle timeout ends it


class Sessions:
    """The live login sessions, the last one each admin lost, and key and session authentication."""

    def __init__(self, admins: dict[str, Admin], settings: dict, numbers: Iterator[int],
                 on_end: Callable[[int], None]) -> None:
        self.admins, self.settings, self.numbers, self.on_end = admins, settings, numbers, on_end
        self.live: dict[str, Session] = {}
        self.clock: Clock = REAL  # idle expiry reads it; the device sets its own (mockfgt.clock)
        self.ended: dict[str, str] = {}  # admin -> the id of its last session that ended

    def authenticate_key(self, token: str, peer: str) -> Principal:
        self.expire_idle()  # sessions idle out whoever asks: a GUI admin's lock goes for a key agent too
        found = None
        for admin in self.admins.values():  # compare with every key: no early exit
            if admin.token and hmac.compare_digest(admin.token.encode(), token.encode()):
                found = admin
        if found is None or found.user_type != "api" or not found.trusts(peer):
            raise FMGError(NO_PERMISSION)
        return Principal(found, found.number)

    def authenticate(self, sid, peer: str) -> Principal:
        """A live session, touched; a missing, expired or logged-out one is -11 like any other refusal."""
        self.expire_idle()
        session = self.live.get(sid) if isinstance(sid, str) else None
        admin = self.admins.get(session.admin) if session else None
        if session is None or admin is None or not admin.trusts(peer):
            raise FMGError(NO_PERMISSION)
        session.last_used = self.clock.monotonic()
        return Principal(admin, session.number, session.sid)

    def login(self, user, passwd, peer: str | None) -> str:
        """-22 for a wrong name, password or source; -11 without API access."""
        admin = self.admins.get(user) if isinstance(user, str) else None
        password_ok = (admin is not None and admin.user_type == "local" and isinstance(passwd, str)
                       and admin.password is not None  # a local admin's is set (the schema)
                       and hmac.compare_digest(admin.password.encode(), passwd.encode()))
        if admin is None or not password_ok or (peer is not None and not admin.trusts(peer)):
            raise FMGError(LOGIN_FAILED)
        if admin.rpc_permit == "none":
            raise FMGError(NO_PERMISSION)
        self.expire_idle()
        if self.count(admin.name) >= admin.login_max:
            raise FMGError(self.settings["login_max_code"])
        return self.open(admin)

    def count(self, admin: str) -> int:
        """How many live sessions ``admin`` holds (expired ones are gone once ``expire_idle`` ran)."""
        return sum(1 for s in self.live.values() if s.admin == admin)

    def open(self, admin: Admin, via: str = "jsonrpc") -> str:
        """A new session for ``admin``; its id. Not capped: the scenario operations open leaked sessions."""
        session = Session(new_session_id(), next(self.numbers), admin.name, self.clock.monotonic(), via)
        self.live[session.sid] = session
        return session.sid

    def number(self, sid: str) -> int:
        return self.live[sid].number

    def idle_timeout(self, session: Session) -> float:
        return self.settings["idle_timeout_gui" if session.via == "gui" else "idle_timeout_api"]

    def expire_idle(self) -> None:
        now = self.clock.monotonic()
        for sid in [s.sid for s in self.live.values() if now - s.last_used >= self.idle_timeout(s)]:
            self.end(sid)

    def end(self, sid: str) -> None:
        """A session ends: its locks go (``on_end``), and with them the work it never committed."""
        session = self.live.pop(sid, None)
        if session is None:
            return
        self.ended[session.admin] = sid
        self.on_end(session.number)

    def end_all(self) -> None:
        for sid in list(self.live):
            self.end(sid)

    def end_for(self, admin: str) -> None:
        for sid in [s.sid for s in self.live.values() if s.admin == admin]:
            self.end(sid)

    def newest(self, admin: str) -> str | None:
        """The id of ``admin``'s newest live session."""
        self.expire_idle()
        mine = [s for s in self.live.values() if s.admin == admin]
        return mine[-1].sid if mine else None


class KeyCalls:
    """The key requests being answered now, for the parallel-key conflict of FortiManager 7.4.x.

    Its own lock, not the device state's: a held request must not hold up the rest of the device.
    """

    def __init__(self, settings: dict) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = {}

    @contextmanager
    def call(self, key: str):
        """Around one HTTP request made with ``key``: yields whether the device refuses it (-11) because
        another request with the same key is in flight. An admitted request is held ``keyed_call_hold_ms``."""
        with self._lock:
            refused = bool(self.settings["parallel_key_conflict"]) and self.in_flight.get(key, 0) > 0
            if not refused:
                self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            if not refused and self.settings["keyed_call_hold_ms"]:
                time.sleep(self.settings["keyed_call_hold_ms"] / 1000)  # the device's own slowness, not its clock
            yield refused
        finally:
            if not refused:
                with self._lock:
                    self.in_flight[key] -= 1
                    if not self.in_flight[key]:
                        del self.in_flight[key]

    def busy(self, key: str) -> int:
        with self._lock:
            return self.in_flight.get(key, 0)
