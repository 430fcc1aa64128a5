"""Certificate material and TLS contexts for mock devices.

Every certificate is minted at run time with validity relative to now, so nothing ever goes stale.
trustme makes the ordinary shapes; the few it cannot make (a self-signed factory certificate with
CN=<serial> and no SAN at all) are built with ``cryptography``, which trustme depends on anyway.

The public pieces are :class:`HarnessCA` (the one CA the tests trust), :data:`CERTIFICATE_SHAPES`
(the names scenario files use) and :func:`server_material` / :func:`server_context`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import ssl
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
}

#: TLS protocol versions a scenario's ``tls.versions`` may list, in order.
TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

OTHER_HOST = "fw.customer.example"
_DAY = dt.timedelta(days=1)
#: Seconds minted server material is reused before it is minted again. Every window a shape promises
#: is relative to the moment of minting ("expired 30 days ago", "valid from tomorrow") and holds for
#: far longer than this, so a reused certificate is never wrong; re-minting keeps "now" recent.
MATERIAL_MAX_AGE = 3600.0


def write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only (mode 0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


class HarnessCA:
    """The root CA every mock device's normal certificate chains to.

    Clients under test trust it by pointing at :attr:`cert_path` (or :attr:`cert_pem`); it is never
    added to the system trust store. One harness CA can serve any number of devices.
    """

    def __init__(self, certs_dir: str | os.PathLike) -> None:
        self.certs_dir = Path(certs_dir).resolve()
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="mockfgt", organization_unit_name="harness CA")
        self.cert_pem: bytes = self._ca.cert_pem.bytes()
        self.cert_path = self.certs_dir / "harness-ca.pem"
        self.cert_path.write_bytes(self.cert_pem)
        self._intermediate: trustme.CA | None = None
        self._private_ca: trustme.CA | None = None
        self._lock = threading.Lock()
        # Minted material, reused by every device that asks for the same thing (see server_tls).
        self._material_lock = threading.Lock()
        self._certificates: dict[tuple, tuple[float, Path, Path]] = {}
        self._contexts: dict[tuple, tuple[float, ServerTLS]] = {}
        self._client_certs: dict[tuple, tuple[float, Path, Path]] = {}

    @property
    def intermediate(self) -> trustme.CA:
        with self._lock:
            if self._intermediate is None:
                self._intermediate = self._ca.create_child_ca()
            return self._intermediate

    @property
    def private_ca(self) -> trustme.CA:
        """A stand-in for a customer's internal CA: not trusted by clients unless they ask for it."""
        with self._lock:
            if self._private_ca is None:
                self._private_ca = trustme.CA(organization_name="Customer Ltd", organization_unit_name="Internal CA")
                (self.certs_dir / "private-ca.pem").write_bytes(self._private_ca.cert_pem.bytes())
            return self._private_ca

    @property
    def private_ca_path(self) -> Path:
        self.private_ca  # noqa: B018 - make sure the file exists
        return self.certs_dir / "private-ca.pem"

    def issue_client_cert(self, directory: Path, name: str = "agent") -> tuple[Path, Path]:
        """A client certificate for mutual TLS in ``directory``; returns (certificate path, key path).

        Asking again for the same directory and name returns the same files (re-minted after
        ``MATERIAL_MAX_AGE``): the manifest and the client settings ask often.
        """
        key = (Path(directory), name)
        with self._material_lock:
            cached = self._client_certs.get(key)
            if cached is not None and _fresh(cached[0]):
                return cached[1], cached[2]
            leaf = self._ca.issue_cert(f"{name}.mockfgt.test", common_name=name)
            chain = b"".join(p.bytes() for p in leaf.cert_chain_pems)
            cert_path, key_path = write_material(Path(directory), "client", chain, leaf.private_key_pem.bytes())
            self._client_certs[key] = (time.time(), cert_path, key_path)
            return cert_path, key_path

    def server_tls(self, *, shape: str, versions: list[str], client_certificate: bool, hostname: str,
                   serial: str, kind: str) -> ServerTLS:
        """A device's server TLS: minted once per identity and settings, then shared by every device.

        Devices presenting the same certificate (same shape, host name, serial and kind) share one
        certificate on disk, and with the same versions and client-certificate setting one SSL
        context, which holds no per-device state. A start or a scenario swap then costs a lookup
        instead of a key, a signature, two file writes and a context (about 5 ms). Material older
        than ``MATERIAL_MAX_AGE`` is minted again, so validity stays relative to now.
        """
        identity = (shape, hostname, serial, kind)
        settings = (identity, tuple(versions), client_certificate)
        with self._material_lock:
            minted, chain_path, key_path = self._certificate(identity)
            cached = self._contexts.get(settings)
            if cached is not None and cached[0] == minted:
                return cached[1]
            ctx = server_context(chain_path, key_path, versions=versions,
                                 client_ca=self.cert_pem if client_certificate else None)
            material = ServerTLS(ctx, chain_path, key_path)
            self._contexts[settings] = (minted, material)
            return material

    def _certificate(self, identity: tuple) -> tuple[float, Path, Path]:
        """The certificate of ``identity`` on disk, minted now if it never was or has aged."""
        cached = self._certificates.get(identity)
        if cached is not None and _fresh(cached[0]):
            return cached
        shape, hostname, serial, kind = identity
        chain, key = self.issue(shape, hostname=hostname, serial=serial, kind=kind)
        digest = hashlib.sha256(repr(identity).encode()).hexdigest()[:12]
        chain_path, key_path = write_material(self.certs_dir / "server" / f"{shape}-{digest}", "server", chain, key)
        entry = (time.time(), chain_path, key_path)
        self._certificates[identity] = entry
        return entry

    def issue(self, shape: str, *, hostname: str, serial: str, kind: str) -> tuple[bytes, bytes]:
        """Mint a server certificate of the given shape: returns (chain PEM the server sends, key PEM)."""
        now = dt.datetime.now(dt.timezone.utc)
        sans = ("localhost", "127.0.0.1", "::1", hostname)
        if shape == "self-signed-factory":
            return _factory_self_signed(serial, kind, now)
        if shape == "no-san":
            return _leaf_without_san(self._ca, hostname, now)
        issuer, names, window, send_chain = self._ca, sans, {}, True
        if shape in ("full-chain", "missing-intermediate"):
            issuer, send_chain = self.intermediate, shape == "full-chain"
        elif shape == "expired":
            window = {"not_before": now - 60 * _DAY, "not_after": now - 30 * _DAY}
        elif shape == "not-yet-valid":
            window = {"not_before": now + _DAY, "not_after": now + 365 * _DAY}
        elif shape == "other-host":
            names = (OTHER_HOST,)
        elif shape == "no-ip-san":
            names = ("localhost", hostname)
        elif shape == "private-ca":
            issuer = self.private_ca
        elif shape != "valid":
            raise ValueError(f"unknown certificate shape {shape!r}")
        leaf = issuer.issue_cert(*names, common_name=names[0], organization_name="mockfgt", **window)
        pems = leaf.cert_chain_pems if send_chain else leaf.cert_chain_pems[:1]
        return b"".join(p.bytes() for p in pems), leaf.private_key_pem.bytes()


def _fresh(minted: float) -> bool:
    return 0 <= time.time() - minted < MATERIAL_MAX_AGE


def write_material(directory: Path, prefix: str, chain: bytes, key: bytes) -> tuple[Path, Path]:
    """Write ``<prefix>-chain.pem`` / ``<prefix>-key.pem`` (or ``-cert`` for clients) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    name = "cert" if prefix == "client" else "chain"
    chain_path, key_path = directory / f"{prefix}-{name}.pem", directory / f"{prefix}-key.pem"
    chain_path.write_bytes(chain)
    write_private(key_path, key)
    return chain_path, key_path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _factory_self_signed(serial: str, kind: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """The stock certificate Fortinet devices ship: self-signed, CN=<serial>, no SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Sunnyvale"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fortinet"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "FortiManager" if kind == "fortimanager" else "FortiGate"),
        x509.NameAttribute(NameOID.COMMON_NAME, serial),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "support@fortinet.com"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 3650 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _leaf_without_san(ca: trustme.CA, hostname: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """A CA-signed leaf that names its host only in the CN, which modern clients ignore."""
    issuer_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    issuer_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 365 * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


@dataclass(frozen=True)
class ServerTLS:
    """What a device's TLS layer needs: a ready context and where its material lies on disk."""

    context: ssl.SSLContext
    chain_path: Path
    key_path: Path


SNI_ATTRIBUTE = "mockfgt_sni"  # where the server name a client asked for is kept on its SSLSocket


def _remember_sni(tls_socket, server_name, _context) -> None:
    setattr(tls_socket, SNI_ATTRIBUTE, server_name)


def server_context(
    chain_path: Path,
    key_path: Path,
    *,
    versions: list[str],
    client_ca: bytes | None = None,
) -> ssl.SSLContext:
    """A server-side context that speaks exactly ``versions`` and optionally requires a client cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    wanted = [TLS_VERSIONS[v] for v in versions]
    if min(wanted) < ssl.TLSVersion.TLSv1_2:
        # Legacy protocol scenarios: only this server lowers OpenSSL's security level, never a client.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # Python deprecates TLS 1.0/1.1; reproducing them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version, ctx.maximum_version = min(wanted), max(wanted)
    ctx.load_cert_chain(chain_path, key_path)
    ctx.sni_callback = _remember_sni  # for the journal: which name the agent asked for
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.decode())
    return ctx


def server_tls(
    ca: HarnessCA,
    directory: Path,
    *,
    shape: str,
    versions: list[str],
    client_certificate: bool,
    hostname: str,
    serial: str,
    kind: str,
) -> ServerTLS:
    """Mint fresh material of ``shape``, write it under ``directory`` and build its context.

    Devices use :meth:`HarnessCA.server_tls`, which mints once and shares; this always mints.
    """
    chain, key = ca.issue(shape, hostname=hostname, serial=serial, kind=kind)
    chain_path, key_path = write_material(directory, "server", chain, key)
    ctx = server_context(
        chain_path, key_path, versions=versions, client_ca=ca.cert_pem if client_certificate else None
    )
    return ServerTLS(ctx, chain_path, key_path)
