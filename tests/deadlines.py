"""How long a test waits for something that must happen: one factor, from the environment.

A deadline in a test bounds a wait (a client's timeout, a poll for a process, a device's
``request_timeout`` that a whole request must beat); it never measures speed, and a passing test
never reaches it. On a busy CI machine (load 6 to 12 on 2 cores) the devices, their clients and
other jobs share the CPU, so every deadline is written as ``seconds(n)``, ``n`` being enough on an
idle machine, and ``MOCKFGT_TEST_TIME_FACTOR`` (default 3) multiplies them all.

Durations that are the behaviour under test stay as written: a client with a 1 s timeout against a
stalled device, a device ``request_timeout`` a test expects to fire, a sleep past an idle timeout.
"""

from __future__ import annotations

import math
import os

VARIABLE = "MOCKFGT_TEST_TIME_FACTOR"


def _factor() -> float:
    text = os.environ.get(VARIABLE, "3")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):  # a typo must not silently shrink every deadline to 0
        raise ValueError(f"{VARIABLE}={text!r}: expected a positive number, such as 3 or 10")
    return value


TIME_FACTOR = _factor()


def seconds(n: float) -> float:
    """``n`` seconds, enough on an idle machine, scaled by ``MOCKFGT_TEST_TIME_FACTOR``."""
    return n * TIME_FACTOR
