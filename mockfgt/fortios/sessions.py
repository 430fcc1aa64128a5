"""Administrator accounts and their password sessions on a mock FortiGate.

Beside the REST API users (token only), a FortiGate has administrators who log in with a password:
the legacy form login ``/logincheck`` (cookies plus a CSRF token) or ``POST /api/v2/authentication``
(a cookie session, or with ``request_key`` a ``session_key`` used as a Bearer token). This module is
the state side of that: who may log in, which sessions are alive, when they idle out, whether the
post-login banner still has to be accepted. It knows nothing of HTTP; the wire side is
:mod:`mockfgt.fortios.logins`.

Failed logins count toward the same per-source lockout as bad API tokens: both go through
:meth:`FortiOSState.count_failure`.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

from ..kernel import parse_network
from .access import new_token, trusted
from .errors import AuthFailure

#: FortiOS ``admintimeout`` defaults to 5 minutes of idleness.
DEFAULT_ADMIN_TIMEOUT = 300
#: config system global admin-login-max: admin sessions open at once (FortiOS: 1 to 100, default 100).
ADMIN_LOGIN_MAX = 100


class LoginRefused(Exception):
    """Wrong name or password, or a source outside the admin's trusted hosts (the device does not say which)."""


class SessionsFull(LoginRefused):
    """The right password, but ``admin-login-max`` sessions are open already (no failure is counted)."""


class PasswordExpired(Exception):
    """The right password, older than the password policy's expire-day: the admin must change it first."""


def _bytes(text: str) -> bytes:
    # JSON may carry lone surrogates ("\ud800"); they must compare unequal, not crash.
    return text.encode("utf-8", "surrogatepass")


def parse_admin_trusthost(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """'10.0.0.0/8', '10.0.0.0 255.0.0.0' or an address. Unlike API users, admins may trust 0.0.0.0/0."""
    return parse_network(text)


@dataclass
class Admin:
    """A ``config system admin`` entry: what the REST API checks for a password session."""

    name: str
    password: str
    accprofile: str
    vdoms: list[str]
    trusthosts: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    #: When the password was last set, on the device clock's monotonic scale (None: as the device started).
    password_changed: float | None = None

    def trusts(self, address: str) -> bool:
        """The same rule as for API users: no entries means any source."""
        return trusted(self.trusthosts, address)


@dataclass
class Session:
    """One logged-in administrator.

    ``by_key`` sessions came from ``request_key``: the key travels as a Bearer token and writes need
    no CSRF token. Cookie sessions carry ``secret`` in the session cookie and need ``csrf_token``
    echoed in ``X-CSRFTOKEN`` on every write.
    """

    secret: str
    admin: Admin
    csrf_token: str
    by_key: bool
    last_used: float
    banner_pending: bool = False


class AdminSessions:
    """Administrators and their live sessions; every method runs under the device state's lock."""

    def __init__(self, state, admins: list[Admin]) -> None:
        self.state = state
        self.admins: dict[str, Admin] = {a.name: a for a in admins}
        self._sessions: dict[str, Session] = {}

    # -- logging in and out -------------------------------------------------------------------
    def login(self, username, password, peer: str, *, by_key: bool, accept_banner: bool = False) -> Session:
        """Check a name and password from ``peer``; a new session, or LoginRefused / AuthFailure(429)."""
        with self.state.lock:
            self.state.refuse_if_locked_out(peer)
            admin = self._admin_for(username, password)
            if admin is None or not admin.trusts(peer):
                self.state.count_failure(peer)
                raise LoginRefused(f"login refused for {username!r} from {peer}")
            self.state.forget_failures(peer)
            if self._password_expired(admin):
                raise PasswordExpired(f"the password of {username!r} has expired")
            if self._prune() >= self.state.settings.get("admin_login_max", ADMIN_LOGIN_MAX):
                raise SessionsFull(f"admin-login-max sessions are open; {username!r} is refused")
            session = Session(
                secret=new_token() if by_key else secrets.token_urlsafe(32),
                admin=admin,
                csrf_token=secrets.token_hex(16).upper(),
                by_key=by_key,
                last_used=self.state.clock.monotonic(),
                banner_pending=bool(self.state.settings.get("post_login_banner")) and not accept_banner,
            )
            self._sessions[session.secret] = session
            return session

    def _password_expired(self, admin: Admin) -> bool:
        """``config system password-policy``: ``expire-day`` days after the password was set, the login
        must change it. Read on the device clock, so a test moves 90 days on instead of waiting."""
        days = self.state.settings.get("password_expire_days")
        if days is None:
            return False
        changed = admin.password_changed if admin.password_changed is not None else self.state.started
        return self.state.clock.monotonic() - changed >= days * 86400

    def _admin_for(self, username, password) -> Admin | None:
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        admin = self.admins.get(username)
        if admin is None or not hmac.compare_digest(_bytes(admin.password), _bytes(password)):
            return None
        return admin

    def logout(self, session: Session) -> None:
        with self.state.lock:
            self._sessions.pop(session.secret, None)

    def renew(self, session: Session, accept_banner: bool = False) -> None:
        """``PUT /api/v2/authentication``: restart the idle clock (and optionally accept the banner)."""
        with self.state.lock:
            session.last_used = self.state.clock.monotonic()
            if accept_banner:
                session.banner_pending = False

    def accept_banner(self, session: Session) -> None:
        with self.state.lock:
            session.banner_pending = False

    # -- finding the session of a request -----------------------------------------------------
    def find(self, secret: str | None, *, by_key: bool) -> Session | None:
        """The live session with this key or cookie value; one idle past the admin timeout is dropped."""
        if not secret:
            return None
        with self.state.lock:
            session = self._sessions.get(secret)
            if session is None or session.by_key != by_key:
                return None
            if self.state.clock.monotonic() - session.last_used > self._timeout():
                del self._sessions[secret]
                return None
            return session

    def authenticate(self, bearer: str | None, cookie_secret: str | None, peer: str):
        """Who a REST call runs as: ``(principal, session)``; the session is None for API tokens.

        A Bearer value is a session key or an API key; without one, the session cookie decides.
        A Bearer value that is no live session key goes to the API-token check, which counts the
        failure toward the lockout as for any bad key. A dead session cookie (expired, logged out)
        is refused without counting: it is no login attempt.
        """
        with self.state.lock:
            self.state.refuse_if_locked_out(peer)
            session = self.find(bearer, by_key=True) if bearer else self.find(cookie_secret, by_key=False)
            if session is None and cookie_secret and not bearer:
                raise AuthFailure(401, "session expired or logged out")
            if session is None:
                return self.state.authenticate(bearer, peer), None
            if session.banner_pending:
                raise AuthFailure(401, "the post-login banner has not been accepted")
            session.last_used = self.state.clock.monotonic()
            self.state.forget_failures(peer)  # a session-authenticated call is a success (ref H.14)
            return session.admin, session

    def _prune(self) -> int:
        """Forget the sessions that idled out; how many are left. Keeps the table as small as the
        device's admin-login-max, whatever a client sends."""
        now, timeout = self.state.clock.monotonic(), self._timeout()
        for secret in [k for k, s in self._sessions.items() if now - s.last_used > timeout]:
            del self._sessions[secret]
        return len(self._sessions)

    def _timeout(self) -> float:
        return self.state.settings.get("admin_timeout", DEFAULT_ADMIN_TIMEOUT)

    @staticmethod
    def csrf_matches(session: Session, header: str | None) -> bool:
        """The header may carry the token bare or with the quotes the cookie has."""
        if header is None:
            return False
        return hmac.compare_digest(_bytes(header.strip().strip('"')), _bytes(session.csrf_token))

    # -- what scenarios and remedies change ---------------------------------------------------
    def set_password(self, name: str, password: str) -> None:
        with self.state.lock:
            if name not in self.admins:
                raise KeyError(name)
            self.admins[name].password = password
            self.admins[name].password_changed = self.state.clock.monotonic()

    def expire_passwords(self) -> None:
        """Date every admin password back past any expire-day, and idle every session out."""
        with self.state.lock:
            for admin in self.admins.values():
                admin.password_changed = -float("inf")
            self.expire_all()

    def expire_all(self) -> None:
        """Age every session past the admin timeout, as if the agent had been idle that long."""
        with self.state.lock:
            for session in self._sessions.values():
                session.last_used = -float("inf")

    def end_all(self) -> None:
        """Forget every session (a reboot): their keys and cookies are refused from now on."""
        with self.state.lock:
            self._sessions.clear()

    def expired_session_key(self, name: str) -> str:
        """A session key from an earlier login of ``name`` that has idled out since (for stale agents)."""
        with self.state.lock:
            session = Session(secret=new_token(), admin=self.admins[name], csrf_token=secrets.token_hex(16).upper(),
                              by_key=True, last_used=-float("inf"))
            self._sessions[session.secret] = session
            return session.secret

    def live_count(self) -> int:
        """Sessions still usable now (tests check that agents log out)."""
        with self.state.lock:
            now, timeout = self.state.clock.monotonic(), self._timeout()
            return sum(1 for s in self._sessions.values() if now - s.last_used <= timeout)
