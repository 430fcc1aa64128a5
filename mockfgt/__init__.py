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

import importlib

# Light modules load at once (``classify`` must: it names both a submodule and a function). The rest
# loads on first use, so the CLI can catch Ctrl+C during its imports and a pytest run that uses no
# mockfgt fixture does not pay for Werkzeug, trustme and cryptography.
from .classify import classify, classify_jsonrpc
from .codes import AUTHENTICATION, AUTHORIZATION, CONNECTION, OK, TIMEOUT, TLS

_LAZY = {
    "ClientSettings": ("device", "ClientSettings"), "Device": ("device", "Device"),
    "FortiGate": ("device", "FortiGate"), "FortiManager": ("device", "FortiManager"),
    "Harness": ("harness", "Harness"), "Scenario": ("scenario", "Scenario"),
    "ScenarioError": ("scenario", "ScenarioError"), "catalogue": ("scenario", "catalogue"),
    "load_scenario": ("scenario", "load"),
}


def __getattr__(name: str):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'mockfgt' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AUTHENTICATION", "AUTHORIZATION", "CONNECTION", "OK", "TIMEOUT", "TLS",
    "ClientSettings", "Device", "FortiGate", "FortiManager", "Harness", "Scenario", "ScenarioError",
    "catalogue", "classify", "classify_jsonrpc", "load_scenario",
]
