"""The agent under test, described once: :class:`Agent`.

A scenario's ``[client]`` table says how the agent is configured; a device resolves it into an Agent
(``device.client``: real URL, CA bundle, key or password). The same object feeds the manifest
(:meth:`Agent.manifest`), the reference flows (:mod:`mockfgt.flows`), ``mockfgt diagnose`` (which adds
only its own options) and the conformance matrix; for a real device, build one by hand.

How the agent authenticates (``auth``):

- ``token``: an API key, ``token``, sent in the header or the query (``token_in``);
- ``password``: it logs in as admin ``user`` with ``password`` first;
- ``session``: it keeps using ``session``, a session from an earlier login (a FortiManager session id,
  a FortiOS session key), and logs in no more. ``user`` and ``password`` may still say whom it logged
  in as. (A scenario's ``[client] session = "expired"`` is how a FortiOS agent comes to hold one.)

The fields after ``timeout`` are the kinds' own (see each kind's ``client_fields``): a FortiGate
agent's VDOM and login habits, a FortiManager agent's ADOM, workspace lock and trusted-hosts admin.
Client side only: nothing here knows the mock.
"""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import kinds
from .kinds import DEFAULT_KIND

PROBE_PREFIX = "mockfgt-probe-"
DEFAULT_TIMEOUT = 10.0  # what the agent waits (vendor documentation)


@dataclass(frozen=True)
class Agent:
    """How the agent under test is configured. ``verify`` is a CA bundle path, ``False`` (Insecure) or
    ``True`` (the system store); use :meth:`request_kwargs` with requests, :meth:`ssl_context` with httpx
    or urllib."""

    url: str = ""
    kind: str = DEFAULT_KIND
    verify: str | bool = True
    cert: tuple[str, str] | None = None  # client certificate chain and key (PEM files)
    auth: str = "token"  # token | password | session
    token: str | None = None  # the API key (auth = token)
    token_in: str = "header"  # or "query": ?access_token=
    user: str | None = None  # the API user or admin the agent is configured as
    password: str | None = None
    session: str | None = None  # kept from an earlier login (auth = session)
    write: bool = True  # the agent's job includes writes
    timeout: float = DEFAULT_TIMEOUT
    # -- the kinds' own fields ------------------------------------------------------------------------
    vdom: str | None = None  # FortiGate: the VDOM it works in (?vdom=)
    login: str = "authentication"  # FortiGate: or "logincheck" (the form login only)
    csrf: bool = True  # FortiGate cookie sessions: echo the CSRF token on writes
    accept_banner: bool = False  # FortiGate: accept the post-login disclaimer
    adom: str | None = None  # FortiManager: the ADOM it works in (default root)
    workspace_lock: bool = True  # FortiManager in workspace mode: lock, commit, unlock around writes
    trusthost_user: str | None = None  # FortiManager trusted-hosts mode: this admin's trusted hosts
    #: Fields of a kind that has fields of its own beyond these (a third-party kind's [client] fields).
    options: dict = field(default_factory=dict)
    #: The name of the address a writing agent creates and deletes.
    probe_name: str = field(default_factory=lambda: PROBE_PREFIX + uuid.uuid4().hex[:8], compare=False, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def logs_in(self) -> bool:
        """The agent logs in with its password before its first call."""
        return self.auth == "password"

    needs_login = logs_in

    @property
    def api_key(self) -> str | None:
        """The API key the agent sends, if it authenticates with one."""
        return self.token if self.auth == "token" else None

    @property
    def insecure(self) -> bool:
        return self.verify is False

    @property
    def ca(self) -> str | None:
        """The CA bundle the agent trusts (None: the system store, or nothing with Insecure)."""
        return self.verify if isinstance(self.verify, str) else None

    def calls(self) -> list:
        """The agent's calls, in order (its kind's client half says which: :mod:`mockfgt.flows`)."""
        return kinds.get(self.kind).calls(self)

    def headers(self) -> dict[str, str]:
        if self.auth == "session":  # a FortiOS session key is a Bearer; a FortiManager id goes in the body
            header = self.session and kinds.get(self.kind).session_in_header
            return {"Authorization": f"Bearer {self.session}"} if header else {}
        if self.api_key and self.token_in == "header":
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def params(self) -> dict[str, str]:
        params = {}
        if self.api_key and self.token_in == "query":
            params["access_token"] = self.api_key
        if self.vdom:
            params["vdom"] = self.vdom
        return params

    def request_kwargs(self) -> dict:
        """Keyword arguments for ``requests`` (pass them per request: they beat REQUESTS_CA_BUNDLE)."""
        return {"headers": self.headers(), "params": self.params(), "verify": self.verify, "cert": self.cert}

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly what the agent trusts here (for httpx and urllib)."""
        if self.verify is False:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        elif self.verify is True:
            ctx = ssl.create_default_context()
        else:
            ctx = ssl.create_default_context(cafile=self.verify)
        if self.cert:
            ctx.load_cert_chain(*self.cert)
        return ctx

    def curl_trust(self) -> list[str]:
        """curl's options for what the agent trusts and presents: --insecure or --cacert, --cert/--key."""
        args = []
        if self.verify is False:
            args.append("--insecure")
        elif isinstance(self.verify, str):
            args += ["--cacert", self.verify]
        if self.cert:
            args += ["--cert", self.cert[0], "--key", self.cert[1]]
        return args

    def document(self, *, insecure: bool = False, timeout: float | None = None) -> dict:
        """The agent's whole configuration as JSON values, named as in a scenario's ``[client]``
        table but resolved: the URL, the key itself, the CA file, the kept session. This is the
        manifest's ``agent`` and the settings file ``mockfgt check`` gives an agent.

        ``auth`` is ``token`` (send ``token``, in the header or, with ``token_in = "query"``, as
        ``access_token``), ``password`` (log in as ``user``) or ``session`` (send ``session``, a kept
        FortiManager session id or FortiOS session key). ``insecure`` (also forced by the argument)
        means no certificate verification; otherwise trust ``ca``, or the system store when it is
        null. FortiOS options: ``vdom``, ``login`` (``authentication``: ``POST /api/v2/authentication``,
        falling back to ``/logincheck`` on 401/404; ``logincheck``: the form only), ``csrf``,
        ``accept_banner``; FortiManager: ``adom``, ``workspace_lock``, ``trusthost_user``. ``write``:
        the agent also creates and deletes an address. ``timeout``: seconds per request.
        """
        insecure = insecure or self.insecure
        return {
            "kind": self.kind, "url": self.url, "host": self.host, "port": self.port,
            "insecure": insecure, "ca": None if insecure else self.ca,
            "cert": self.cert[0] if self.cert else None, "key": self.cert[1] if self.cert else None,
            "timeout": self.timeout if timeout is None else timeout,
            "auth": self.auth, "token": self.api_key, "token_in": self.token_in,
            "user": self.user if self.auth == "password" else None,
            "password": self.password if self.auth == "password" else None,
            "session": self.session if self.auth == "session" else None,
            "login": self.login, "csrf": self.csrf, "accept_banner": self.accept_banner, "vdom": self.vdom,
            "adom": self.adom, "workspace_lock": self.workspace_lock, "trusthost_user": self.trusthost_user,
            "write": self.write, **({"options": dict(self.options)} if self.options else {}),
        }

    @classmethod
    def from_document(cls, document: dict) -> Agent:
        """The agent a :meth:`document` describes (a manifest's ``agent``, ``mockfgt check``'s settings)."""
        known = {f for f in cls.__dataclass_fields__ if f not in ("verify", "cert", "options", "probe_name")}
        fields = {k: v for k, v in document.items() if k in known}
        ca, cert, key = document.get("ca"), document.get("cert"), document.get("key")
        return cls(**fields, verify=False if document.get("insecure") else ca or True,
                   cert=(cert, key or cert) if cert else None, options=dict(document.get("options") or {}))

    def manifest(self) -> dict:
        """The agent as the manifest's ``client`` shows it: the keys it has had since the first release.

        A FortiOS agent holding a kept session key shows as ``auth = "password"`` with ``session_key``;
        a FortiManager agent holding a session id shows it as its ``token``.
        """
        kept_key = self.auth == "session" and self.password is not None
        kept_id = self.auth == "session" and not kept_key
        return {
            "url": self.url, "token": self.session if kept_id else self.token, "token_in": self.token_in,
            "verify": self.verify, "cert": list(self.cert) if self.cert else None, "vdom": self.vdom,
            "write": self.write, "auth": "password" if kept_key else self.auth, "user": self.user,
            "password": self.password, "login": self.login, "csrf": self.csrf, "accept_banner": self.accept_banner,
            "session_key": self.session if kept_key else None, "adom": self.adom,
            "workspace_lock": self.workspace_lock, "trusthost_user": self.trusthost_user,
        }
