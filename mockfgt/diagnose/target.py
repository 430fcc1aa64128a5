"""The agent diagnose probes as: checking its settings, and the command line that says them."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from .. import kinds
from ..agent import Agent

STEPS = ("resolve", "tcp", "tls", "authentication", "authorization")
WRITE_PREFIX = "mockfgt-diagnose-"



def _port_or_none(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None

def checked(agent: Agent) -> Agent:
    """The agent to diagnose with, its settings checked; ValueError says what is wrong (exit status 2)."""
    parts = urlsplit(agent.url)
    if parts.username is not None or parts.query or parts.fragment:
        # A credential in the URL would be printed in the report and the JSON: refuse it unseen.
        bare = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if _port_or_none(parts) else ''}"
        raise ValueError(f"give the device URL as {bare}, without a user, password, query or fragment; "
                         "pass credentials with --token, or --user and --password")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{agent.url!r} is not a device URL; expected https://HOST[:PORT]")
    if agent.kind not in kinds.names():
        raise ValueError(f"kind {agent.kind!r} is not one of {', '.join(kinds.names())}")
    try:
        _ = parts.port  # urllib parses the port lazily: reading it is the check
    except ValueError:
        raise ValueError(f"{agent.url!r} has an invalid port") from None
    cert, key = agent.cert or (None, None)
    for option, path in (("--ca", agent.ca), ("--cert", cert), ("--key", key)):
        if path and not os.path.isfile(path):
            raise ValueError(f"{option} {path}: no such file")
    if agent.timeout <= 0:
        raise ValueError("--timeout must be more than 0 seconds")
    if agent.login not in ("authentication", "logincheck"):
        raise ValueError(f"--login {agent.login!r} is not one of authentication, logincheck")
    if agent.password is not None and not agent.user:
        raise ValueError("--password needs --user")
    return agent


def cli_complete(agent: Agent) -> bool:
    """Whether :func:`argv` says everything (an agent that omits CSRF or the lock cannot be said)."""
    return agent.csrf and agent.workspace_lock and not agent.options


def argv(agent: Agent) -> list[str]:
    """The ``mockfgt diagnose`` arguments that describe this agent (its credential included)."""
    args = [agent.url, "--kind", agent.kind, "--timeout", f"{agent.timeout:g}"]
    cert, key = agent.cert or (None, None)
    options = {"--token": agent.api_key, "--ca": agent.ca, "--cert": cert, "--key": key,
               "--vdom": agent.vdom, "--adom": agent.adom,
               "--user": agent.user if agent.auth != "token" else None,  # an API key's user is not a login
               "--password": agent.password,
               "--session": agent.session if agent.auth == "session" else None,
               "--trusthost-user": agent.trusthost_user}
    # OPTION=VALUE: a value starting with '-' (a random password may) is not taken for an option.
    args += [f"{option}={value}" for option, value in options.items() if value]
    if agent.token_in != "header":
        args += ["--token-in", agent.token_in]
    if agent.login != "authentication":
        args += ["--login", agent.login]
    flags = (("--insecure", agent.insecure), ("--accept-banner", agent.accept_banner),
             ("--write-check", agent.write))
    return args + [flag for flag, on in flags if on]
