"""The outcome codes every scenario declares and every classifier reports.

They are the agent error families of the vendor documentation: a client that talks to a FortiGate or
FortiManager reports one of these, or ``ok``.
"""

from __future__ import annotations

OK = "ok"
CONNECTION = "202000"
AUTHENTICATION = "202001"
AUTHORIZATION = "202002"
TLS = "202003"
TIMEOUT = "202004"

CODES = (OK, CONNECTION, AUTHENTICATION, AUTHORIZATION, TLS, TIMEOUT)

TITLES = {
    OK: "ok",
    CONNECTION: "connection failure",
    AUTHENTICATION: "authentication failed",
    AUTHORIZATION: "authorization failed",
    TLS: "TLS/SSL certificate error",
    TIMEOUT: "timed out",
}

def titled(code: str) -> str:
    """'202003 (TLS/SSL certificate error)', or 'ok'."""
    return code if code == OK else f"{code} ({TITLES[code]})"


#: What to tell a user who sees the code: the vendor's troubleshooting advice in our own words.
GUIDANCE = {
    OK: [],
    CONNECTION: [
        "Check that the host name resolves and that the port is right (443 by default; 8443 and 10443 are common).",
        "Check that the device is up and that nothing in between (ACL, firewall, local-in policy) blocks the agent.",
        "Check that HTTPS management access is enabled on the interface the agent connects to.",
    ],
    AUTHENTICATION: [
        "Compare the token configured in the agent with the one on the device: a regenerated, deleted or "
        "expired token must be updated in the agent.",
        "On the device, under System > Administrators, check that the API user exists and is enabled.",
        "If the API user has trusted hosts, the agent's source address must be inside them (mind NAT).",
        "FortiManager sessions end when the token is regenerated or the session idles out: log in again.",
        "When in doubt, regenerate the token and update the agent.",
    ],
    AUTHORIZATION: [
        "The token works but its admin profile lacks the permission: FortiGate needs firewall read-write for "
        "address objects and groups; FortiManager needs rpc-permit read-write and the configured ADOM.",
        "The VDOM (FortiGate) or ADOM (FortiManager) the agent uses must be assigned to the API user.",
        "FortiManager trusted-host updates need the Super_User profile; in workspace mode lock the ADOM first.",
    ],
    TLS: [
        "For the factory self-signed certificate or an untrusted CA, enable the agent's Insecure option "
        "(skip verification: fine in a lab, risky elsewhere) or install the CA on the agent host.",
        "Check that the certificate has not expired and is already valid (clock skew).",
        "Check that the certificate's SAN matches the name the agent uses; an IP address needs an IP SAN.",
        "Install the full chain, intermediates included, on the device.",
        "An outdated TLS version, or a client certificate the device requires, fails whatever Insecure says.",
    ],
    TIMEOUT: [
        "The device answered nothing within the agent's timeout ({timeout}): it may be overloaded, drop the "
        "traffic silently, or routing may be asymmetric.",
        "Try `curl -v https://host:port` from the agent host to see where it stops.",
    ],
}


def guidance(code: str, *, timeout: float | None = None) -> list[str]:
    """What to tell the user for ``code``, with the agent's actual timeout where the text names it."""
    said = f"{timeout:g} s" if timeout is not None else "10 s unless configured otherwise"
    return [tip.replace("{timeout}", said) for tip in GUIDANCE[code]]
