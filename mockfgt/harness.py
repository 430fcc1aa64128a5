"""Many devices in one process, a manifest that describes them, and a control API to steer them.

This is what ``mockfgt serve`` runs, and what agents written in any language use: start it, read the
manifest (JSON: every device's URL, tokens, CA bundle, expectations and control URL), drive the
devices, steer them over the control API (plain HTTP on loopback, so a device whose TLS is broken on
purpose stays steerable, and only with the run's ``control_token``), read their journals, stop it.

>>> with Harness(certs_dir="certs") as harness:
...     harness.add("fgt-healthy"); harness.add("expired-cert")
...     harness.start(manifest="mockfgt.json")
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import urllib.parse
import uuid
from pathlib import Path

from . import __version__, manifest as manifest_format
from .device import Device
from .hosts import is_loopback, url_host
from .listener import ConnectionPlan, Listener
from .scenario import Scenario, catalogue, load
from .schema import shown
from .tls import HarnessCA


class Harness:
    """A set of devices sharing one harness CA, plus the control API and the manifest."""

    def __init__(
        self,
        *,
        certs_dir: str | Path | None = None,
        ca: HarnessCA | None = None,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        control_host: str = "127.0.0.1",
        control_port: int | None = 0,
        allow_remote_control: bool = False,
        scenario_dirs: list[Path] | None = None,
        build_apps: bool = True,
    ) -> None:
        if control_port is not None and not allow_remote_control and not is_loopback(control_host):
            raise ValueError(f"the control API would listen on {control_host}, which is not loopback; "
                             "anyone who reaches it can change the devices. Pass allow_remote_control "
                             "(--allow-remote-control) if that is really wanted")
        self.ca = ca or HarnessCA(certs_dir or tempfile.mkdtemp(prefix="mockfgt-"))
        self.host = host
        self.base_port = base_port
        self.scenario_dirs = [Path(p) for p in scenario_dirs or []]
        #: Whether adding a device builds its kind's app at once (no request pays for it); ``mockfgt
        #: serve`` says no, writes its manifest first, then calls :meth:`warm_up` (docs/performance.md).
        self.build_apps = build_apps
        self.devices: dict[str, Device] = {}
        self.manifest_path: Path | None = None
        self.run_id = uuid.uuid4().hex  # tells this run's manifest from any other's at the same path
        self._lock = threading.RLock()
        self._serving = False  # started and not stopped: the manifest exists
        self._control: Listener | None = None
        #: The control API's secret for this run: every call must send ``Authorization: Bearer`` it.
        #: Loopback is shared with every local user and every web page the user opens; the token,
        #: readable only through the 0600 manifest and the ready banner, is what keeps them out.
        self.control_token: str | None = secrets.token_hex(32) if control_port is not None else None  # no '-' to read as an option
        if control_port is not None:
            from .control import create_control_app

            self._control = Listener(create_control_app(self), ConnectionPlan(None, "plaintext"),
                                     host=control_host, port=control_port, server_version=f"mockfgt/{__version__}")

    # -- devices ------------------------------------------------------------------------------
    def add(self, scenario: str | Path | Scenario, *, name: str | None = None, port: int | None = None) -> Device:
        """Create a device for ``scenario``; named after it (``-2``, ``-3`` for repeats)."""
        loaded = scenario if isinstance(scenario, Scenario) else load(scenario, search=self.scenario_dirs)
        with self._lock:
            name = name or self._free_name(loaded.name)
            if name in self.devices:
                raise ValueError(f"a device named {name!r} already exists")
            if port is None:
                port = self.base_port + len(self.devices) if self.base_port else 0
            device = Device(loaded, host=self.host, port=port, name=name, ca=self.ca, build_app=self.build_apps,
                            scenario_dirs=self.scenario_dirs)
            self.devices[name] = device
        device.on_phase.append(self._phase_changed)
        return device

    def add_catalogue(self, kind: str | None = None) -> list[Device]:
        """One device per catalogue scenario (of ``kind``, or all)."""
        return [self.add(sc) for sc in catalogue(self.scenario_dirs) if kind in (None, sc.kind)]

    def device(self, name: str) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise KeyError(f"no device {shown(name)!r}; devices: {', '.join(self.devices) or 'none'}") from None

    def _free_name(self, base: str) -> str:
        name, n = base, 1
        while name in self.devices:
            n += 1
            name = f"{base}-{n}"
        return name

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, manifest: str | Path | None = None) -> Harness:
        """Start every device and the control API; then write the manifest (atomically)."""
        if manifest is not None:
            self.manifest_path = Path(manifest).resolve()
            self.manifest_path.unlink(missing_ok=True)  # a reader must never see a previous run's file
        for device in self.devices.values():
            device.start()
        if self._control is not None:
            self._control.start()
        self.write_manifest()
        self._serving = True
        return self

    def warm_up(self) -> None:
        """Build now what the first requests would build: the HTTP handler, each kind's app and the
        control app (``mockfgt serve`` calls it once the manifest is written; docs/performance.md)."""
        from .device import warm_up
        from .kinds import get

        for kind in dict.fromkeys(d.kind for d in self.devices.values()):
            warm_up(get(kind))
        build = getattr(self._control.app, "build", None) if self._control is not None else None
        if build is not None:  # the control app, made on its first request otherwise
            build()

    def _phase_changed(self, device: Device) -> None:
        """A device moved to another phase by itself: the manifest says which (only while it exists)."""
        if self._serving:
            self.write_manifest()

    def stop(self) -> None:
        """Stop everything at once and remove the manifest (its ports are gone)."""
        self._serving = False
        if self._control is not None:
            self._control.stop()
        for device in self.devices.values():  # every accept loop wakes at once, not one after another
            device.begin_stop()
        for device in self.devices.values():
            device.stop()
        if self.manifest_path is not None:
            self.manifest_path.unlink(missing_ok=True)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- manifest -----------------------------------------------------------------------------
    @property
    def control_address(self) -> tuple[str, int] | None:
        """(host, port) the control API listens on."""
        return None if self._control is None else tuple(self._control.address)

    @property
    def control_url(self) -> str | None:
        if self._control is None:
            return None
        host, port = self._control.address
        return f"http://{url_host(host)}:{port}"

    def device_control_url(self, device: Device) -> str | None:
        """The device's URL in the control API: its name as one escaped segment ('a b#1' -> a%20b%231)."""
        if self._control is None:
            return None
        return f"{self.control_url}/devices/{urllib.parse.quote(device.name, safe='')}"

    def manifest(self) -> dict:
        """The manifest (format 1: ``mockfgt/manifest.schema.json`` describes it field by field)."""
        return {
            "format": manifest_format.FORMAT,
            "mockfgt": __version__,
            "pid": os.getpid(),
            "run_id": self.run_id,
            "control_url": self.control_url,
            "control_token": self.control_token,
            "ca_bundle": str(self.ca.cert_path),
            "devices": [self.describe(d) for d in self.devices.values()],
        }

    def describe(self, device: Device) -> dict:
        """A device as the manifest and the control API show it."""
        sc = device.scenario
        entry = {
            "name": device.name,
            "kind": sc.kind,
            "scenario": sc.name,
            "summary": sc.summary,
            "url": device.url,
            "host": device.host,
            "port": device.port,
            "device": {"token": device.token, "tokens": device.tokens},  # the device's own keys
            "agent": device.client.document(),  # the agent under test, as this scenario configures it
            "exposed_by": sc.exposed_by(insecure=device.client.insecure),
            "token": device.token,  # format 0 names, kept: token/tokens = device.*, client ~ agent
            "tokens": device.tokens,
            "ca_bundle": device.ca_bundle,
            "client": device.client.manifest(),
            "expect": str(device.expect),  # for the agent as configured; in a phased scenario, the current phase's
            "expect_insecure": str(device.expect_insecure),
            **sc.also_acceptable_fields(),
            "remedy": sc.remedy["summary"],
            "control_url": self.device_control_url(device),
            "pinning": device.pinned,  # the first certificate, for agents that pin it, and their code now
        }
        if sc.phases:
            entry["phase"] = device.phase["name"]
            entry["phases"] = device.phases
        if "private-ca" in (sc.tls["certificate"], device.client.verify) or sc.client.get("ca") == "private":
            entry["private_ca_bundle"] = str(self.ca.private_ca_path)
        if sc.tls["client_certificate"] == "required":
            cert, key = device.ca.issue_client_cert(device.material_dir)
            entry["client_certificate"] = {"cert": str(cert), "key": str(key)}
        return entry

    def write_manifest(self) -> None:
        """Write the manifest next to its final name, then rename: readers see all of it or nothing."""
        if self.manifest_path is None:
            return
        with self._lock:
            data = json.dumps(self.manifest(), indent=2) + "\n"
            self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.manifest_path.parent, prefix=".mockfgt-manifest-")
            with os.fdopen(fd, "w") as handle:
                handle.write(data)
            os.replace(tmp, self.manifest_path)
