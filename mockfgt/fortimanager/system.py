"""Who the device is and how it is set: ``/sys/status`` and ``/cli/global/system/global``."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Identity:
    hostname: str
    serial: str
    version: tuple[int, int, int]
    build: int
    release_date: str

    @property
    def version_string(self) -> str:
        return "v{}.{}.{}".format(*self.version)

    def status(self, settings: dict) -> dict:
        """``/sys/status``: human-readable keys, ``Version`` like ``v7.4.3-build2487 240124 (GA)``."""
        major, minor, patch = self.version
        return {
            "Admin Domain Configuration": "Enabled" if settings["adom_status"] else "Disabled",
            "BIOS version": "04000002",
            "Branch Point": str(self.build),
            "Build": self.build,
            "Current Time": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()),
            "Daylight Time Saving": "Yes",
            "FIPS Mode": "Disabled",
            "HA Mode": "Stand Alone",
            "Hostname": self.hostname,
            "License Status": "Valid",
            "Major": major,
            "Max Number of Admin Domains": 10,
            "Max Number of Device Groups": 10000,
            "Minor": minor,
            "Offline Mode": "Disabled",
            "Patch": patch,
            "Platform Full Name": "FortiManager-VM64-KVM",
            "Platform Type": "FMG-VM64-KVM",
            "Release Version Information": " (GA)",
            "Serial Number": self.serial,
            "TZ": "UTC",
            "Time Zone": "(GMT) Greenwich Mean Time.",
            "Version": f"{self.version_string}-build{self.build:04d} {self.release_date} (GA)",
            "x86-64 Applications": "Yes",
        }

    def system_global(self, settings: dict) -> dict:
        """``/cli/global/system/global``: clients read ``workspace-mode`` and ``adom-status`` after login."""
        return {
            "hostname": self.hostname,
            "workspace-mode": settings["workspace_mode"],
            "adom-status": "enable" if settings["adom_status"] else "disable",
            "adom-mode": "normal",
            "admintimeout": max(1, int(settings["idle_timeout_api"] // 60)),
            "timezone": "00",
        }
