"""Reading a running harness's manifest from a shell, with nothing but mockfgt installed.

    mockfgt serve --all --manifest run/mockfgt.json &
    mockfgt wait run/mockfgt.json --pid $! --timeout 30    # ready, or exit 1 with the reason
    url=$(mockfgt manifest run/mockfgt.json get fgt-healthy url)
    ca=$(mockfgt manifest run/mockfgt.json get ca_bundle)

``serve`` removes the file when it starts and when it stops, writes it atomically once every device
listens, and records its ``pid`` and a ``run_id``. ``wait`` accepts only a manifest whose process is
alive (and, with ``--pid``, is the one named), so a file left by a killed run is never taken for the
new one, and a server that died ends the wait at once instead of at the timeout.
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import argtypes

POLL_SECONDS = 0.05
FORMAT = 1  # the manifest format this mockfgt writes and reads (mockfgt/manifest.schema.json)


class ManifestError(Exception):
    """A manifest that cannot be used; ``exit_code`` 1 for a run that failed, 2 for a usage error."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def read(path: str | os.PathLike) -> dict:
    """The manifest at ``path``; ManifestError if it is missing or not a manifest."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest (is `mockfgt serve --manifest {path}` running?)") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {exc}") from None
    if not isinstance(document, dict) or "devices" not in document:
        raise ManifestError(f"{path}: not a mockfgt manifest")
    written = document.get("format", 0)  # format 0: before the field existed
    if not isinstance(written, int) or written > FORMAT:
        raise ManifestError(f"{path}: manifest format {written!r} is newer than this mockfgt reads ({FORMAT}); "
                            "upgrade mockfgt")
    return document


def schema() -> dict:
    """The manifest's JSON Schema (format 1), shipped with the package: every field, described."""
    from importlib.resources import files

    return json.loads(files(__package__).joinpath("manifest.schema.json").read_text(encoding="utf-8"))


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (macOS): kill's answer stands
        return True


def wait(path: str | os.PathLike, *, timeout: float, pid: int | None = None) -> dict:
    """The manifest of the live run at ``path`` (of process ``pid`` if given), once it is written."""
    deadline = time.monotonic() + timeout
    while True:
        if pid is not None and not alive(pid):
            raise ManifestError(f"process {pid} ended before writing {path}; see its output for why")
        try:
            document = read(path)
        except ManifestError:
            document = None
        if document is not None and _written_by_live_run(document, pid):
            return document
        if time.monotonic() >= deadline:
            raise ManifestError(f"{path}: no manifest from a running mockfgt after {timeout:g} s")
        time.sleep(POLL_SECONDS)


def _written_by_live_run(document: dict, pid: int | None) -> bool:
    """The manifest's process runs (and is ``pid`` if given); pid 0 or none would mean our own group."""
    writer = document.get("pid")
    return isinstance(writer, int) and writer > 0 and (pid is None or writer == pid) and alive(writer)


def get(document: dict, key: str, device: str | None = None):
    """A top-level value (``ca_bundle``, ``control_url``), or a device's (dotted: ``client.token``)."""
    value = document
    if device is not None:
        names = [d.get("name") for d in document["devices"]]
        if device not in names:
            raise ManifestError(f"no device {device!r}; devices: {', '.join(names) or 'none'}")
        value = document["devices"][names.index(device)]
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            fields = ", ".join(value) if isinstance(value, dict) else "none"
            raise ManifestError(f"no field {key!r}; fields here: {fields}")
        value = value[part]
    return value


def add_parsers(sub) -> None:
    waiter = sub.add_parser("wait", help="wait until a running `mockfgt serve` has written its manifest")
    waiter.add_argument("file")
    waiter.add_argument("--timeout", type=argtypes.seconds, default=30.0, help="seconds to wait at most (default 30)")
    waiter.add_argument("--pid", type=argtypes.pid, help="the serve process ($! in a shell): stop waiting if it dies")
    waiter.set_defaults(run=cmd_wait)
    reader = sub.add_parser("manifest", help="read one value from a manifest, for shell variables (no jq needed)")
    reader.add_argument("file")
    verbs = reader.add_subparsers(dest="verb", required=True)
    getter = verbs.add_parser("get", help="get [DEVICE] KEY: a top-level value, or a device's (KEY may be dotted)")
    getter.add_argument("names", nargs="+", metavar="[DEVICE] KEY")
    reader.set_defaults(run=cmd_manifest)


def cmd_wait(args) -> int:
    try:
        document = wait(args.file, timeout=args.timeout, pid=args.pid)
    except ManifestError as exc:
        print(f"mockfgt wait: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"mockfgt: {len(document['devices'])} devices ready (pid {document.get('pid')})")
    return 0


def cmd_manifest(args) -> int:
    if len(args.names) > 2:
        print("mockfgt manifest: get takes KEY or DEVICE KEY", file=sys.stderr)
        return 2
    *device, key = args.names
    try:
        value = get(read(args.file), key, device[0] if device else None)
    except ManifestError as exc:
        print(f"mockfgt manifest: {exc}", file=sys.stderr)
        return exc.exit_code
    print(value if isinstance(value, str) else json.dumps(value))
    return 0
