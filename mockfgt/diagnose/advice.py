"""What diagnose says about a failure: the wording of its advice and of the errors it met."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..agent import Agent
from ..classify import classify
from ..codes import CONNECTION
from ..flows import Call
from .certificates import _name, _sans


def _verification_advice(code: int, host: str, leaf: x509.Certificate) -> str:
    """What a verify error means for this certificate and what to do, in the vendor's terms."""
    dns, ips = _sans(leaf)
    names = ", ".join(dns + ips) or "no name at all (no SAN)"
    if code == 10:
        return f"The certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}. Renew the device's HTTPS certificate."
    if code == 9:
        return (f"The certificate is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: the clock of "
                "the device or of the agent host is wrong (check NTP), or the certificate must be reissued.")
    if code == 18:
        factory = "Fortinet" in [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        return (("This is the device's factory certificate (O=Fortinet, CN=<serial>). " if factory else
                 "The certificate is self-signed. ")
                + "Install a certificate from a CA the agent trusts, trust this very certificate (--ca), or enable "
                  "the agent's Insecure option (fine in a lab, risky elsewhere).")
    if code == 19:
        return "The chain ends at a self-signed root the agent does not trust: install that root on the agent host."
    if code in (2, 20, 21):
        return (f"The issuer {_name(leaf.issuer)} is not among the CAs the agent trusts, and the device did not "
                "send it. If it is an internal CA, install its root on the agent host (or pass it with --ca); if it "
                "is an intermediate, install the full chain on the device.")
    if code == 62 and not dns + ips and host in [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]:
        return (f"The certificate names {host} only in its Common Name, with no SAN: requests and Go ignore the Common "
                "Name (curl and Python's ssl module still accept it). Reissue it with a SAN for each name and address "
                "the agent uses.")
    if code in (62, 64):
        by = "IP address" if code == 64 else "name"
        fix = ("connect by a name it carries, or reissue it with an IP SAN" if code == 64 and dns
               else f"connect by a name it carries, or reissue it for {host}")
        return f"The agent connects by {by} {host}, but the certificate names {names}: {fix}."
    if code == 66:
        key = leaf.public_key()
        bits = f"{key.key_size}-bit " if hasattr(key, "key_size") else ""
        return (f"The certificate's {bits}key is too weak for current clients (OpenSSL at security level 2 wants "
                "2048-bit RSA). Install a new certificate with a 2048-bit or larger RSA key, or an ECDSA key.")
    if code == 68:
        digest = leaf.signature_hash_algorithm.name.upper() if leaf.signature_hash_algorithm else "a weak hash"
        return (f"The certificate is signed with {digest}, which current clients refuse. Install a new certificate "
                "signed with SHA-256 or stronger.")
    return "Check the certificate on the device; OpenSSL could not verify it."


def _client_cert_note(t: Agent) -> str:
    if t.cert:
        return ("The device did not accept the client certificate given: it must come from a CA the API user's "
                "PKI peer group trusts.")
    return ("The API user requires a client certificate (PKI peer group): configure the agent with one "
            "(here: --cert and --key). Insecure does not help.")


def _what(call: Call) -> str:
    url = call.body["params"][0]["url"] if call.body and "params" in call.body else call.path
    if not url.rstrip("/").endswith(("address", "addrgrp")):
        return url  # another read a kind checks (FortiManager's /cli/global/system/global)
    return "address groups" if url.rstrip("/").endswith("addrgrp") else "address objects"


def _credential_word(call: Call) -> str:
    return {"login": "login", "banner": "disclaimer acceptance"}.get(call.role, "credential")


def _classify(exc: BaseException) -> str:
    try:
        return classify(exc)
    except ValueError:
        return CONNECTION


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _short(reason)
    text = getattr(exc, "strerror", None) or (reason if isinstance(reason, str) else None) or str(exc)
    return text or type(exc).__name__
