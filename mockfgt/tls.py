"""Certificate material and TLS contexts for mock devices.

The CAs (harness, intermediate, private) are made once per certs folder and loaded by every later run
(see :mod:`mockfgt.castore`), so runs sharing a folder trust one another's certificates. Server and
client certificates are minted at run time with validity relative to now, so nothing ever goes stale.
trustme makes the ordinary shapes; the ones it cannot make (a self-signed factory certificate with
CN=<serial>, a leaf with no SAN, an RSA key of a chosen size, a SHA-1 signature) are built with
``cryptography``, which trustme depends on anyway.

The public pieces are :class:`HarnessCA` (the one CA the tests trust; devices get their TLS from
:meth:`HarnessCA.server_tls`), :data:`CERTIFICATE_SHAPES` (the names scenario files use), :data:`CIPHERS`,
and :func:`server_tls` / :func:`server_context` (fresh material and a context, unshared: the bench uses them).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import cast

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from . import castore
from .castore import CAError  # noqa: F401 - part of this module's API: what a bad certs folder raises
from .vocabulary import (  # noqa: F401 - CERTIFICATE_SHAPES and CIPHERS: this module's API too
    CERTIFICATE_SHAPES,
    CIPHERS,
    RSA_KEY_BITS,
    TLS_VERSION_NAMES,
)

#: Shapes OpenSSL refuses to serve at its default security level (a key or a signature too weak):
#: the device's own context lowers its level for them, as the device serves them without complaint.
WEAK_SHAPES = ("weak-key", "sha1-signed")

_CIPHER_LISTS = {"legacy-rsa-cbc": "AES128-SHA:AES256-SHA:AES128-SHA256:AES256-SHA256"}

#: TLS protocol versions a scenario's ``tls.versions`` may list, in order.
TLS_VERSIONS = {name: getattr(ssl.TLSVersion, name.replace(".", "_")) for name in TLS_VERSION_NAMES}

OTHER_HOST = "fw.customer.example"
_DAY = dt.timedelta(days=1)
#: Seconds minted server material is reused before it is minted again. Every window a shape promises
#: is relative to the moment of minting ("expired 30 days ago", "valid from tomorrow") and holds for
#: far longer than this, so a reused certificate is never wrong; re-minting keeps "now" recent.
MATERIAL_MAX_AGE = 3600.0


def write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only (mode 0600 from the first byte), whole or not at all."""
    castore.write_atomic(path, data, 0o600)


def _new_root() -> trustme.CA:
    return trustme.CA(organization_name="mockfgt", organization_unit_name="harness CA")


def _new_private_ca() -> trustme.CA:
    return trustme.CA(organization_name="Customer Ltd", organization_unit_name="Internal CA")


class HarnessCA:
    """The root CA every mock device's normal certificate chains to.

    Clients under test trust it by pointing at :attr:`cert_path` (or :attr:`cert_pem`); it is never
    added to the system trust store. One harness CA can serve any number of devices, and every run
    given the same ``certs_dir`` loads the same CA (made by the first, never rewritten by a start;
    :meth:`renew` replaces it). A folder or CA that cannot be used raises :class:`CAError`.
    """

    def __init__(self, certs_dir: str | os.PathLike) -> None:
        self.certs_dir = castore.own_dir(Path(certs_dir))
        self.cert_path = self.certs_dir / f"{castore.ROOT}.pem"
        self.key_path = self.certs_dir / f"{castore.ROOT}.key"
        with castore.locked(self.certs_dir):
            self._ca, self.made = castore.load_or_make(self.certs_dir, castore.ROOT, _new_root)
        if not self.made:
            castore.warn_if_ageing(self._ca, self.cert_path)
        self.cert_pem: bytes = self._ca.cert_pem.bytes()
        self.not_after: dt.datetime = castore.not_after(self._ca)
        self._intermediate: trustme.CA | None = None
        self._private_ca: trustme.CA | None = None
        self._lock = threading.Lock()
        # Minted material, reused by every device that asks for the same thing (see server_tls).
        self._material_lock = threading.Lock()
        self._certificates: dict[tuple, tuple[float, Path, Path, bytes, bytes]] = {}
        self._contexts: dict[tuple, tuple[float, ServerTLS]] = {}
        self._client_certs: dict[tuple, tuple[float, Path, Path]] = {}

    @classmethod
    def renew(cls, certs_dir: str | os.PathLike) -> tuple[HarnessCA, list[Path]]:
        """Replace the folder's CAs with new ones, discarding everything minted from the old ones.

        Returns the new CA and the paths removed. Runs still serving keep the old CA in memory.
        """
        folder = castore.own_dir(Path(certs_dir))
        with castore.locked(folder):
            removed = castore.discard_material(folder)
        return cls(folder), removed

    @property
    def intermediate(self) -> trustme.CA:
        """The harness CA's intermediate, shared through the folder like the root."""
        with self._lock:
            if self._intermediate is None:
                self._intermediate = self._shared_ca(castore.INTERMEDIATE, self._ca.create_child_ca, self._ca)
            return self._intermediate

    @property
    def private_ca(self) -> trustme.CA:
        """A stand-in for a customer's internal CA: not trusted by clients unless they ask for it."""
        with self._lock:
            if self._private_ca is None:
                self._private_ca = self._shared_ca(castore.PRIVATE, _new_private_ca)
            return self._private_ca

    def _shared_ca(self, stem: str, make, issuer: trustme.CA | None = None) -> trustme.CA:
        with castore.locked(self.certs_dir):
            return castore.load_or_make(self.certs_dir, stem, make, issuer)[0]

    @property
    def private_ca_path(self) -> Path:
        self.private_ca  # noqa: B018 - make sure the file exists
        return self.certs_dir / f"{castore.PRIVATE}.pem"

    def issue_client_cert(self, directory: Path, name: str = "agent") -> tuple[Path, Path]:
        """A client certificate for mutual TLS in ``directory``; returns (certificate path, key path).

        Asking again for the same directory and name returns the same files (re-minted after
        ``MATERIAL_MAX_AGE``): the manifest and the client settings ask often. A whole, young pair
        another run left there is reused rather than replaced under that run's clients.
        """
        key = (Path(directory), name)
        with self._material_lock:
            cached = self._client_certs.get(key)
            if cached is not None and _fresh(cached[0]):
                return cached[1], cached[2]
            folder = castore.own_dir(Path(directory))
            with castore.locked(self.certs_dir):
                pair = castore.load_client_pair(folder, self._ca, name, MATERIAL_MAX_AGE)
                if pair is None:
                    leaf = self._ca.issue_cert(f"{name}.mockfgt.test", common_name=name)
                    chain = b"".join(p.bytes() for p in leaf.cert_chain_pems)
                    pair = write_material(folder, "client", chain, leaf.private_key_pem.bytes())
            self._client_certs[key] = (time.time(), *pair)
            return pair

    def server_tls(self, *, shape: str, versions: list[str], client_certificate: bool, hostname: str,
                   serial: str, kind: str, ciphers: str = "default", valid_days: int | None = None) -> ServerTLS:
        """A device's server TLS: minted once per identity and settings, then shared by every device.

        Devices presenting the same certificate (same shape, host name, serial and kind) share one
        certificate on disk, and with the same versions and client-certificate setting one SSL
        context, which holds no per-device state. A start or a scenario swap then costs a lookup
        instead of a key, a signature, two file writes and a context (about 5 ms). Material older
        than ``MATERIAL_MAX_AGE`` is minted again, so validity stays relative to now.
        """
        identity = (shape, hostname, serial, kind, valid_days)
        settings = (identity, tuple(versions), client_certificate, ciphers)
        with self._material_lock:
            minted, chain_path, key_path, chain, key = self._certificate(identity)
            cached = self._contexts.get(settings)
            if cached is not None and cached[0] == minted:
                return cached[1]
            ctx = _context_from_pem(chain_path.parent, chain, key, versions=versions, ciphers=ciphers,
                                    weak=shape in WEAK_SHAPES,
                                    client_ca=self.cert_pem if client_certificate else None)
            material = ServerTLS(ctx, chain_path, key_path, chain)
            self._contexts[settings] = (minted, material)
            return material

    def _certificate(self, identity: tuple) -> tuple[float, Path, Path, bytes, bytes]:
        """The certificate of ``identity`` (minted now if it never was or has aged): paths and PEMs.

        Another run may mint the same identity into the same folder; each file is replaced whole,
        and contexts load this process's PEMs, never the shared files, so neither run breaks.
        """
        cached = self._certificates.get(identity)
        if cached is not None and _fresh(cached[0]):
            return cached
        shape, hostname, serial, kind, valid_days = identity
        chain, key = self.issue(shape, hostname=hostname, serial=serial, kind=kind, valid_days=valid_days)
        digest = hashlib.sha256(repr(identity).encode()).hexdigest()[:12]
        castore.own_dir(self.certs_dir / "server")
        chain_path, key_path = write_material(self.certs_dir / "server" / f"{shape}-{digest}", "server", chain, key)
        entry = (time.time(), chain_path, key_path, chain, key)
        self._certificates[identity] = entry
        return entry

    def issue(self, shape: str, *, hostname: str, serial: str, kind: str, valid_days: int | None = None,
              window: Window | None = None) -> tuple[bytes, bytes]:
        """Mint a server certificate of the given shape: returns (chain PEM the server sends, key PEM).

        Its validity is the shape's, counted from now (``valid_days``: valid from a day ago for that many
        days, where the shape is valid in time), unless ``window`` (not before, not after) places it.
        """
        now = dt.datetime.now(dt.UTC)
        window = window or validity(shape, now, valid_days)
        sans = ("localhost", "127.0.0.1", "::1", hostname)
        if shape == "self-signed-factory":
            return _factory_self_signed(serial, kind, window or (now - _DAY, now + 3650 * _DAY))
        crafted = window or (now - _DAY, now + 365 * _DAY)
        if shape == "no-san":
            return _crafted_leaf(self._ca, crafted, common_name=hostname)
        if shape == "cn-only":
            return _crafted_leaf(self._ca, crafted, common_name="localhost")
        if shape in RSA_KEY_BITS:
            key = _rsa_key(RSA_KEY_BITS[shape])
            return _crafted_leaf(self._ca, crafted, common_name=sans[0], sans=sans, key=key)
        if shape == "sha1-signed":
            return _crafted_leaf(self._ca, crafted, common_name=sans[0], sans=sans, sha1=True)
        names: tuple[str, ...] = sans
        not_before, not_after = window or (None, None)  # None: trustme's own validity window
        issuer, send_chain = self._ca, True
        if shape in ("full-chain", "missing-intermediate"):
            issuer, send_chain = self.intermediate, shape == "full-chain"
        elif shape == "other-host":
            names = (OTHER_HOST,)
        elif shape == "no-ip-san":
            names = ("localhost", hostname)
        elif shape == "private-ca":
            issuer = self.private_ca
        elif shape not in ("valid", "expired", "not-yet-valid"):
            raise ValueError(f"unknown certificate shape {shape!r}")
        leaf = issuer.issue_cert(*names, common_name=names[0], organization_name="mockfgt",
                                 not_before=not_before, not_after=not_after)
        pems = leaf.cert_chain_pems if send_chain else leaf.cert_chain_pems[:1]
        return b"".join(p.bytes() for p in pems), leaf.private_key_pem.bytes()


#: A certificate's validity: (not before, not after), aware UTC date-times.
Window = tuple[dt.datetime, dt.datetime]


def validity(shape: str, now: dt.datetime, valid_days: int | None = None) -> Window | None:
    """Where a shape's validity lies when minted at ``now``; None: the issuer's own default (trustme's
    valid-for-centuries, a factory certificate's ten years, a crafted leaf's year)."""
    if shape == "expired":
        return now - 60 * _DAY, now - 30 * _DAY
    if shape == "not-yet-valid":
        return now + _DAY, now + 365 * _DAY
    if valid_days is not None:
        return now - _DAY, now + valid_days * _DAY
    return None


class _KeyAhead(threading.Thread):
    """An RSA key being made in a thread of its own; :meth:`key` waits for it."""

    def __init__(self, bits: int) -> None:
        super().__init__(name="mockfgt-rsa-key", daemon=True)
        self.bits = bits
        self._key: rsa.RSAPrivateKey | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=self.bits)
        except BaseException as exc:  # raised in the device that waits for the key
            self._error = exc

    def key(self) -> rsa.RSAPrivateKey:
        self.join()
        if self._key is None:
            raise self._error or RuntimeError("no RSA key was made")
        return self._key


#: RSA keys made ahead by :func:`prepare_rsa_keys`, by size: each is handed out once.
_keys_ahead: dict[int, list[_KeyAhead]] = {}
_keys_ahead_lock = threading.Lock()


def prepare_rsa_keys(shapes) -> None:
    """Start making the RSA keys these certificate shapes will need, one thread per key.

    OpenSSL lets go of the GIL while it searches for primes, so on a machine with a core to spare a
    key that takes 50 ms is ready by the time the device that needs it is built (``mockfgt serve``
    asks for its scenarios' keys before it builds them).
    """
    for shape in shapes:
        if shape in RSA_KEY_BITS:
            ahead = _KeyAhead(RSA_KEY_BITS[shape])
            with _keys_ahead_lock:
                _keys_ahead.setdefault(ahead.bits, []).append(ahead)
            ahead.start()


def _rsa_key(bits: int) -> rsa.RSAPrivateKey:
    """A new RSA key of ``bits``: one made ahead if there is one, else made now."""
    with _keys_ahead_lock:
        waiting = _keys_ahead.get(bits)
        ahead = waiting.pop(0) if waiting else None
    if ahead is not None:
        return ahead.key()
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _fresh(minted: float) -> bool:
    return 0 <= time.time() - minted < MATERIAL_MAX_AGE


def write_material(directory: Path, prefix: str, chain: bytes, key: bytes) -> tuple[Path, Path]:
    """Write ``<prefix>-chain.pem`` / ``<prefix>-key.pem`` (or ``-cert`` for clients) under ``directory``.

    Each file is replaced whole (the key first), so a reader never sees half of one.
    """
    directory = castore.own_dir(directory)
    name = "cert" if prefix == "client" else "chain"
    chain_path, key_path = directory / f"{prefix}-{name}.pem", directory / f"{prefix}-key.pem"
    write_private(key_path, key)
    castore.write_atomic(chain_path, chain)
    return chain_path, key_path


def _context_from_pem(folder: Path, chain: bytes, key: bytes, **settings) -> ssl.SSLContext:
    """A server context of exactly these PEMs. ssl only reads files: where Linux offers anonymous
    memory files the PEMs go there (no disk write, nothing another process can see), else through a
    private temp file in ``folder``."""
    if hasattr(os, "memfd_create"):
        try:
            fd = os.memfd_create("mockfgt-context", os.MFD_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                with os.fdopen(fd, "wb", closefd=False) as f:
                    f.write(key + chain)
                return server_context(Path(f"/proc/self/fd/{fd}"), None, **settings)
            except FileNotFoundError:  # no /proc: the temp file below
                pass
            finally:
                os.close(fd)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".context-")  # 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key + chain)
        return server_context(Path(tmp), None, **settings)
    finally:
        os.unlink(tmp)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _factory_self_signed(serial: str, kind: str, window: Window) -> tuple[bytes, bytes]:
    """The stock certificate Fortinet devices ship: self-signed, CN=<serial>, no SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Sunnyvale"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fortinet"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind),  # the product: FortiGate, FortiManager
        x509.NameAttribute(NameOID.COMMON_NAME, serial),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "support@fortinet.com"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _crafted_leaf(ca: trustme.CA, window: Window, *, common_name: str, sans: tuple[str, ...] = (),
                  key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
                  sha1: bool = False) -> tuple[bytes, bytes]:
    """A leaf signed by ``ca`` in a shape trustme does not make: returns (certificate PEM, key PEM).

    With no ``sans`` it names its host only in the Common Name, which modern clients ignore; ``key``
    defaults to ECDSA P-256; the signature's hash is SHA-256, or SHA-1 with ``sha1``.
    """
    issuer_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    # A CA's key, so one that signs certificates (load_pem_private_key is typed for any key).
    issuer_key = cast(CertificateIssuerPrivateKeyTypes,
                      serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None))
    key = key or ec.generate_private_key(ec.SECP256R1())
    # A leaf with SANs reads like trustme's (O=mockfgt); one without has its Common Name alone.
    organization = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mockfgt")] if sans else []
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([*organization, x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in sans]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    if sha1:
        cert = _signed_with_sha1(cert, issuer_key)
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


# Signature AlgorithmIdentifiers (DER): ecdsa-with-SHA1 (1.2.840.10045.4.1, no parameters) and
# sha1WithRSAEncryption (1.2.840.113549.1.1.5, NULL parameters).
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")
_RSA_SHA1 = bytes.fromhex("300d06092a864886f70d0101050500")


def _signed_with_sha1(cert: x509.Certificate, issuer_key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    """``cert`` signed again by ``issuer_key`` with SHA-1, which cryptography's builder no longer offers.

    The to-be-signed part names its signature algorithm too, so that field is swapped before signing;
    the rest of the certificate is kept byte for byte.
    """
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        algorithm = _ECDSA_SHA1
    elif isinstance(issuer_key, rsa.RSAPrivateKey):
        algorithm = _RSA_SHA1
    else:
        raise ValueError(f"cannot sign with SHA-1 using a {type(issuer_key).__name__}")
    fields = _der_items(cert.tbs_certificate_bytes)
    fields[2] = algorithm  # version, serial number, signature algorithm, issuer...
    tbs = _der(0x30, b"".join(fields))
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        signature = issuer_key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    else:
        signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    return x509.load_der_x509_certificate(_der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature)))


def _der(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _der_items(sequence: bytes) -> list[bytes]:
    """The elements of a DER SEQUENCE, each whole (tag, length and content); single-byte tags only."""
    if sequence[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    items, at = [], _der_header(sequence, 0)[0]
    while at < len(sequence):
        start, size = _der_header(sequence, at)
        items.append(sequence[at:start + size])
        at = start + size
    return items


def _der_header(data: bytes, at: int) -> tuple[int, int]:
    """Where the content of the element at ``at`` starts, and its length."""
    first = data[at + 1]
    if first < 0x80:
        return at + 2, first
    count = first & 0x7F
    return at + 2 + count, int.from_bytes(data[at + 2:at + 2 + count], "big")


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class ServerTLS:
    """What a device's TLS layer needs: a ready context and where its material lies on disk; what a
    pinning client sees of it (:attr:`fingerprint`, :attr:`pin`) and its validity."""

    context: ssl.SSLContext
    chain_path: Path
    key_path: Path
    chain_pem: bytes = b""

    @cached_property
    def leaf(self) -> x509.Certificate:
        """The certificate the device presents (the chain's first)."""
        return x509.load_pem_x509_certificate(self.chain_pem or self.chain_path.read_bytes())

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the leaf's DER, lower-case hex (``openssl x509 -fingerprint -sha256`` without colons)."""
        return hashlib.sha256(self.leaf.public_bytes(serialization.Encoding.DER)).hexdigest()

    @cached_property
    def pin(self) -> str:
        """The leaf's public-key pin as curl's ``--pinnedpubkey`` takes it: ``sha256//`` + base64 of the
        SHA-256 of its SubjectPublicKeyInfo (HPKP's pin-sha256)."""
        spki = self.leaf.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()

    @cached_property
    def window(self) -> Window:
        """The leaf's validity (not before, not after), in real time."""
        return self.leaf.not_valid_before_utc, self.leaf.not_valid_after_utc


SNI_ATTRIBUTE = "mockfgt_sni"  # where the server name a client asked for is kept on its SSLSocket


def _remember_sni(tls_socket, server_name, _context) -> None:
    setattr(tls_socket, SNI_ATTRIBUTE, server_name)


def server_context(
    chain_path: Path,
    key_path: Path | None,
    *,
    versions: list[str],
    client_ca: bytes | None = None,
    ciphers: str = "default",
    weak: bool = False,
) -> ssl.SSLContext:
    """A server-side context that speaks exactly ``versions`` with ``ciphers`` (a name of :data:`CIPHERS`)
    and optionally requires a client cert; ``weak``: the certificate is one OpenSSL would refuse to serve."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    wanted = [TLS_VERSIONS[v] for v in versions]
    if ciphers != "default" or weak or min(wanted) < ssl.TLSVersion.TLSv1_2:
        # Legacy scenarios (protocols, suites, weak certificates): only this server lowers OpenSSL's
        # security level, never a client, which meets the device with its own defaults.
        ctx.set_ciphers(f"{_CIPHER_LISTS.get(ciphers, 'DEFAULT')}:@SECLEVEL=0")
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
    ciphers: str = "default",
    valid_days: int | None = None,
    window: Window | None = None,
) -> ServerTLS:
    """Mint fresh material of ``shape``, write it under ``directory`` and build its context (``window``:
    its validity, placed; else the shape's from now).

    Devices use :meth:`HarnessCA.server_tls`, which mints once and shares; this always mints.
    """
    chain, key = ca.issue(shape, hostname=hostname, serial=serial, kind=kind, valid_days=valid_days, window=window)
    chain_path, key_path = write_material(directory, "server", chain, key)
    ctx = _context_from_pem(chain_path.parent, chain, key, versions=versions, ciphers=ciphers,
                            weak=shape in WEAK_SHAPES, client_ca=ca.cert_pem if client_certificate else None)
    return ServerTLS(ctx, chain_path, key_path, chain)
