"""The names scenario files may use for certificates, cipher suites, TLS versions and connection faults.

Plain data, so reading and checking scenarios loads neither the TLS machinery (trustme,
cryptography) nor the listener (Werkzeug): :mod:`mockfgt.tls` and :mod:`mockfgt.listener` implement
what these names mean.
"""

from __future__ import annotations

#: Certificate shapes a scenario's ``tls.certificate`` may name.
CERTIFICATE_SHAPES = {
    "valid": "leaf from the harness CA, SANs localhost, 127.0.0.1, ::1 and the device host name",
    "full-chain": "leaf from an intermediate of the harness CA; the device sends the intermediate",
    "missing-intermediate": "leaf from an intermediate of the harness CA; the device omits the intermediate",
    "expired": "leaf from the harness CA that expired 30 days ago",
    "not-yet-valid": "leaf from the harness CA valid only from tomorrow",
    "other-host": "leaf from the harness CA for fw.customer.example only",
    "no-ip-san": "leaf from the harness CA with DNS SANs only (localhost, device host name)",
    "no-san": "leaf from the harness CA with a common name and no SAN at all",
    "private-ca": "leaf from a customer's internal CA that clients do not trust by default",
    "self-signed-factory": "the device's factory certificate: self-signed, O=Fortinet, CN=<serial>, no SAN",
    "valid-rsa": "as valid, with a 2048-bit RSA key (RSA key exchange needs one)",
    "weak-key": "as valid, with a 1024-bit RSA key",
    "sha1-signed": "as valid, signed by the harness CA with SHA-1",
    "cn-only": "leaf from the harness CA naming localhost in its Common Name only, no SAN",
}

#: Shapes whose key is RSA, with its size in bits (every other shape has an ECDSA P-256 key).
RSA_KEY_BITS = {"valid-rsa": 2048, "weak-key": 1024}

#: Cipher suites a scenario's ``tls.ciphers`` may name (TLS 1.2 and below; TLS 1.3 has its own).
CIPHERS = {
    "default": "the suites of a current FortiOS with strong-crypto enable: ECDHE key exchange, AEAD first",
    "legacy-rsa-cbc": "RSA key exchange with CBC only (AES128-SHA, AES256-SHA, AES128-SHA256, AES256-SHA256): "
                      "an older FortiOS with strong-crypto disable and a narrowed cipher list",
}

#: TLS protocol versions a scenario's ``tls.versions`` may list, in order (ssl.TLSVersion member names
#: but for the dot: see :data:`mockfgt.tls.TLS_VERSIONS`).
TLS_VERSION_NAMES = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

#: Connection faults a scenario's ``connection.fault`` may name; the listener enacts them.
CONNECTION_FAULTS = {
    "none": "answer normally",
    "refuse": "nothing listens on the port: connections are refused",
    "reset": "accept TCP, then reset it (RST) before any byte",
    "stall-handshake": "accept TCP, never send a ServerHello: hold the connection until the client leaves",
    "stall-response": "complete TLS and read the request, never answer: hold it until the client leaves",
    "plaintext": "speak plain HTTP on the HTTPS port",
}
