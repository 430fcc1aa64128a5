"""mockfgt: a mock FortiGate / FortiManager over real HTTPS that reproduces customers' faults.

The public surface fits on one page:

- :class:`FortiGate` (and :class:`Device` for any kind): start one in-process, read ``url``,
  ``token``, ``ca_bundle``; ``use("expired-cert")`` swaps the scenario in place; ``remedy()``
  applies the documented fix.
- :func:`load_scenario` and :func:`catalogue`: the scenario files.
- :func:`classify`: what a correct client reports for an exception or a response.
- :class:`Harness`: many devices, a JSON manifest and a control API (what ``mockfgt serve`` runs).
- The pytest plugin (installed with the package): ``fortigate``, ``make_fortigate`` and the
  catalogue parametrisation.
"""

__version__ = "0.1.0"

from .classify import classify, classify_jsonrpc
from .codes import AUTHENTICATION, AUTHORIZATION, CONNECTION, OK, TIMEOUT, TLS
from .device import ClientSettings, Device, FortiGate, FortiManager
from .harness import Harness
from .scenario import Scenario, ScenarioError, catalogue
from .scenario import load as load_scenario

__all__ = [
    "AUTHENTICATION", "AUTHORIZATION", "CONNECTION", "OK", "TIMEOUT", "TLS",
    "ClientSettings", "Device", "FortiGate", "FortiManager", "Harness", "Scenario", "ScenarioError",
    "catalogue", "classify", "classify_jsonrpc", "load_scenario",
]
