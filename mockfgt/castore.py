"""The certs folder as shared machine state: CAs made once, loaded by every later run, never rewritten.

Several runs (two ``mockfgt serve``, CI jobs, pytest sessions) may share one folder. Whatever a client
is told to trust (the harness CA, the intermediate, the private CA) is therefore made once, under an
exclusive ``flock`` on ``<folder>/.lock``, and every later run loads it; only ``mockfgt ca --renew``
replaces it. Every file is written to a temp file in its folder and renamed into place, so a reader
never sees half a file, and keys are mode 0600 from their first byte.

The folder may be readable by other local users, who could plant a symlink or a CA of their own in it:
the folder and every file read from it must belong to us and be no symlink (:class:`CAError` if not).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT, INTERMEDIATE, PRIVATE = "harness-ca", "intermediate-ca", "private-ca"
LOCK_NAME = ".lock"
#: A start warns (and never renews) when the harness CA expires sooner than this.
EXPIRY_WARNING = dt.timedelta(days=30)
CLIENT_FILES = ("client-cert.pem", "client-key.pem")


class CAError(ValueError):
    """The certs folder or a CA in it cannot be used; the message names the file and the way out."""


def renew_hint(folder: Path) -> str:
    return f"make a new one with `mockfgt ca --renew --certs-dir {folder}`"


# -- the folder and its files ---------------------------------------------------------------------
def own_dir(path: Path) -> Path:
    """``path`` as a folder of ours (made 0700 if absent); refuses symlinks and other users' folders."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = _make_dir(path)
    except OSError as exc:
        raise CAError(f"cannot use the certs folder {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise CAError(f"refusing the certs folder {path}: it is a symbolic link (another user may have "
                      "planted it); give a real folder with --certs-dir")
    if not stat.S_ISDIR(info.st_mode):
        raise CAError(f"the certs folder {path} is not a folder")
    _check_owner(path, info)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        # Others could swap files in it (a clone under umask 0 or 002 makes it so): it is ours, so
        # take their write bit away; files they may have put there fail read_own's owner check.
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))
    return path.resolve()


def _make_dir(path: Path) -> os.stat_result:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)  # the umask may have taken bits, never added any; be explicit
        except FileExistsError:  # another run made it first: the caller checks theirs
            pass
        return os.lstat(path)
    except OSError as exc:
        raise CAError(f"cannot make the certs folder {path}: {exc.strerror}") from None


def _check_owner(path: Path, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise CAError(f"refusing {path}: it belongs to user id {info.st_uid}, not to you ({os.geteuid()}); "
                      "another local user could have planted it. Use a folder of your own (--certs-dir)")


def read_own(path: Path) -> bytes | None:
    """The bytes of ``path`` (None if absent), refusing a symlink or a file of another user."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise CAError(f"refusing {path}: it is a symbolic link; remove it and {renew_hint(path.parent)}") from None
        raise CAError(f"cannot read {path}: {exc.strerror}; {renew_hint(path.parent)}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _check_owner(path, info)
        if not stat.S_ISREG(info.st_mode):
            raise CAError(f"{path} is not a regular file; {renew_hint(path.parent)}")
        return f.read()


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` whole or not at all: a temp file beside it, then a rename over the old one.

    A process that already loaded the old file keeps what it loaded; a rename replaces a symlink
    at ``path`` rather than following it. mkstemp creates the file 0600 whatever the umask.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise CAError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: one run at a time checks for, makes or renews its CAs."""
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CAError(f"cannot open the lock file {path}: {exc.strerror}") from None
    try:
        _check_owner(path, os.fstat(fd))
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# -- CAs ------------------------------------------------------------------------------------------
def load_or_make(folder: Path, stem: str, make: Callable[[], trustme.CA],
                 issuer: trustme.CA | None = None) -> tuple[trustme.CA, bool]:
    """The CA ``<stem>.pem`` / ``<stem>.key`` of ``folder``, made by ``make`` if there is none yet.

    Returns (CA, whether it was made now). The caller holds :func:`locked`. A child CA (``issuer``)
    on disk that another CA signed (the root was renewed under this process) is replaced in memory only.
    """
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_pem, key_pem = read_own(cert_path), read_own(key_path)
    if cert_pem is None or key_pem is None:  # never made, or made by a mockfgt that kept no key
        if cert_pem is not None:
            print(f"mockfgt: {cert_path} has no key {key_path.name} (an older mockfgt kept it in memory); "
                  "making a new one", file=sys.stderr, flush=True)
        ca = make()
        write_atomic(key_path, ca.private_key_pem.bytes(), 0o600)  # the key first: a cert never lacks it
        write_atomic(cert_path, ca.cert_pem.bytes())
        return ca, True
    ca = parse_ca(cert_path, cert_pem, key_pem)
    if issuer is not None:
        if not _issued_by(ca, issuer):
            return make(), False
        ca.parent_cert = issuer  # from_pem forgets the parent; leaves need it to send the chain
    return ca, False


def parse_ca(cert_path: Path, cert_pem: bytes, key_pem: bytes) -> trustme.CA:
    """A CA from its PEM files, or a :class:`CAError` naming the file that is broken."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise CAError(f"the CA certificate {cert_path} is corrupt ({exc}); {renew_hint(cert_path.parent)}") from None
    key_path = cert_path.with_suffix(".key")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CAError(f"the CA key {key_path} is corrupt ({exc}); {renew_hint(cert_path.parent)}") from None
    if _public(key.public_key()) != _public(cert.public_key()):
        raise CAError(f"the CA key {key_path} does not belong to {cert_path}; {renew_hint(cert_path.parent)}")
    return trustme.CA.from_pem(cert_pem, key_pem)


def _public(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _issued_by(ca: trustme.CA, issuer: trustme.CA) -> bool:
    return issued_by(x509.load_pem_x509_certificate(ca.cert_pem.bytes()), issuer)


def issued_by(cert: x509.Certificate, issuer: trustme.CA) -> bool:
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(issuer.cert_pem.bytes()))
    except Exception:  # noqa: BLE001 - a wrong key type, a bad signature (InvalidSignature): not issued
        return False
    return True


def not_after(ca: trustme.CA) -> dt.datetime:
    return x509.load_pem_x509_certificate(ca.cert_pem.bytes()).not_valid_after_utc


def warn_if_ageing(ca: trustme.CA, cert_path: Path) -> None:
    """One line on stderr when the CA expires soon: renewing is the user's decision, never a start's."""
    expires = not_after(ca)
    if expires - dt.datetime.now(dt.UTC) < EXPIRY_WARNING:
        print(f"mockfgt: warning: the harness CA {cert_path} expires {expires:%Y-%m-%d %H:%M} UTC; "
              f"{renew_hint(cert_path.parent)}", file=sys.stderr, flush=True)


# -- client certificates --------------------------------------------------------------------------
def load_client_pair(directory: Path, root: trustme.CA, name: str, max_age: float) -> tuple[Path, Path] | None:
    """The client certificate another run left in ``directory``, if it is whole, ours and young."""
    cert_path, key_path = (directory / name for name in CLIENT_FILES)
    try:
        cert_pem, key_pem = read_own(cert_path), read_own(key_path)
        if cert_pem is None or key_pem is None or not 0 <= time.time() - cert_path.stat().st_mtime < max_age:
            return None
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (CAError, ValueError, TypeError, OSError):
        return None  # whatever is wrong with it, a new one replaces it
    names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    if names != [name] or _public(key.public_key()) != _public(cert.public_key()) or not issued_by(cert, root):
        return None
    return cert_path, key_path


# -- renewal --------------------------------------------------------------------------------------
def discard_material(folder: Path) -> list[Path]:
    """Remove every CA and everything minted from them in ``folder``; the caller holds :func:`locked`."""
    removed = []
    for stem in (ROOT, INTERMEDIATE, PRIVATE):
        for suffix in (".pem", ".key"):
            removed += _remove(folder / f"{stem}{suffix}")
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink() or not entry.is_dir():
            continue
        if entry.name == "server":
            removed.append(entry)
            shutil.rmtree(entry)
            continue
        for name in CLIENT_FILES:  # a device's folder: its client certificate
            removed += _remove(entry / name)
        if not any(entry.iterdir()):
            entry.rmdir()
    return removed


def _remove(path: Path) -> list[Path]:
    try:
        path.unlink()
    except FileNotFoundError:
        return []
    return [path]
