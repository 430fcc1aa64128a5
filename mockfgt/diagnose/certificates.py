"""The certificate side of the TLS step: the contexts the agent would use, the chain the device
sent, and what a certificate says (names, validity, issuer, chain completeness)."""

from __future__ import annotations

import datetime as dt
import functools
import ssl
import warnings

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..agent import Agent


def _inspection_context(t: Agent) -> ssl.SSLContext:
    """A context that accepts any certificate, so a certificate can be looked at before it is judged."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if t.cert:
        context.load_cert_chain(*t.cert)
    return context


def _verifying_context(t: Agent) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=t.ca) if t.ca else ssl.create_default_context()
    context.hostname_checks_common_name = False  # judge as strict clients do (requests/urllib3 2, Go): SANs only
    if t.cert:
        context.load_cert_chain(*t.cert)
    return context


def _agent_context(t: Agent) -> ssl.SSLContext:
    return _inspection_context(t) if t.insecure else _verifying_context(t)


def _peer_chain(tls: ssl.SSLSocket) -> list[x509.Certificate]:
    """The certificates the device sent, leaf first (3.13+ has the public method; 3.10+ the private one)."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(tls._sslobj, "get_unverified_chain", None)  # type: ignore[attr-defined]
    if getter is not None:
        chain = getter() or []
        ders = [c if isinstance(c, bytes) else c.public_bytes(2) for c in chain]  # 2 = _ssl.ENCODING_DER
    else:
        ders = [tls.getpeercert(binary_form=True)]
    return [x509.load_der_x509_certificate(d) for d in ders if d]


def _trusted_certificates(ca: str | None) -> list[x509.Certificate]:
    """The CAs the agent trusts: the given bundle, or the system store's bundle file."""
    return list(_load_bundle(ca or ssl.get_default_verify_paths().cafile or ""))


@functools.lru_cache(maxsize=8)
def _load_bundle(path: str) -> tuple[x509.Certificate, ...]:
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            # System stores carry a few old roots cryptography frowns upon; they still count as trusted.
            warnings.simplefilter("ignore")
            return tuple(x509.load_pem_x509_certificates(f.read()))
    except (OSError, ValueError):
        return ()


def _certificate_details(cert: x509.Certificate) -> dict[str, str]:
    dns, ips = _sans(cert)
    return {
        "subject": cert.subject.rfc4514_string() or "(empty)",
        "SANs": ", ".join([*(f"DNS:{n}" for n in dns), *(f"IP:{i}" for i in ips)]) or "none",
        "valid": _validity(cert),
        "issuer": cert.issuer.rfc4514_string() + (" (self-signed)" if _self_signed(cert) else ""),
    }


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]


def _validity(cert: x509.Certificate) -> str:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    now = dt.datetime.now(dt.UTC)
    span = f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
    if now > end:
        return f"{span} (expired {_days(now - end)} ago)"
    if now < start:
        return f"{span} (not valid for another {_days(start - now)})"
    return f"{span} ({_days(end - now)} left)"


def _days(delta: dt.timedelta) -> str:
    days = delta.days
    return f"{days} days" if days != 1 else "1 day" if delta.total_seconds() >= 86400 else "less than a day"


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _name(name: x509.Name) -> str:
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={cn[0].value!s}" if cn else name.rfc4514_string() or "(empty name)"


def _chain_verdict(chain: list[x509.Certificate], trusted: list[x509.Certificate]) -> str:
    """Whether the device sends what a client needs to build a path to a root it may trust."""
    sent = f"{len(chain)} certificate{'s' if len(chain) != 1 else ''} sent"
    leaf, top = chain[0], chain[-1]
    if _self_signed(leaf):
        return f"{sent}; self-signed: there is no chain, a client must trust this very certificate"
    for lower, upper in zip(chain, chain[1:]):
        if lower.issuer != upper.subject:
            return f"{sent}; out of order: {_name(lower.subject)} is not issued by {_name(upper.subject)}"
    if _self_signed(top):
        return f"{sent}; complete, up to the root {_name(top.subject)}"
    if any(top.issuer == c.subject for c in trusted):
        return f"{sent}; complete: {_name(top.issuer)} is a trusted CA"
    return (f"{sent}; incomplete or untrusted: the issuer {_name(top.issuer)} was not sent and is not a trusted CA "
            "(a missing intermediate and an untrusted CA look the same to a client)")
