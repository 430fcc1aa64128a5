"""argparse types for the CLI's numbers: finite and in range, or a usage error naming the flag.

``type=int`` takes ``--port 70000`` (a traceback when binding) and ``type=float`` takes ``inf`` and
``nan`` (a wait that never ends); these refuse them up front, as argparse refuses ``--port eight``.
"""

from __future__ import annotations

import argparse
import math

MAX_SECONDS = 86400.0  # a day: longer than any wait the CLI should make


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0..65535)")
    return value


def seconds(text: str) -> float:
    """A duration: a finite number of seconds above 0, a day at most."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} seconds is out of range (above 0, at most {MAX_SECONDS:g})")
    return value


def count(text: str) -> int:
    """A number of things to do at once: 1 to 256."""
    value = _integer(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{text} is out of range (1..256)")
    return value


def pid(text: str) -> int:
    value = _integer(text)
    if not 0 < value < 2**31:
        raise argparse.ArgumentTypeError(f"{text} is not a process id")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
