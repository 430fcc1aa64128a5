"""The harness clock: each device's own time, real by default, moved forward by a test.

Everything time-based in a device reads its clock instead of ``time``: FortiOS admin sessions idling
out, lockouts running out, FortiManager sessions idling out, and how long a phase lasts. A test then
skips two hours instead of waiting for them::

    fgt.clock.advance(hours=2)          # the device lives two hours later; nothing waited

The clock only moves forward (real time plus an offset that grows), so a device never sees time run
backwards. Whoever must hear of a jump (the device's phases) subscribes with :meth:`Clock.subscribe`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

#: How far one advance may move a clock: ten years. Further is a typo, and datetime has limits.
MAX_ADVANCE = 10 * 366 * 86400.0


class Clock:
    """Real time plus an offset that only grows. Thread-safe."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []

    @property
    def offset(self) -> float:
        """Seconds this clock is ahead of real time."""
        return self._offset

    def time(self) -> float:
        """Seconds since the epoch, as the device sees them (for time stamps)."""
        return time.time() + self._offset

    def monotonic(self) -> float:
        """A monotonic reading, as the device sees it (for durations: idle time, lockouts, phases)."""
        return time.monotonic() + self._offset

    def now(self) -> datetime:
        """The device's wall-clock time, in UTC."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> float:
        """Move the clock forward; returns the new offset. ValueError for a step backwards or not finite."""
        step = seconds + 60 * minutes + 3600 * hours + 86400 * days
        if not math.isfinite(step) or step < 0:
            raise ValueError(f"a device clock moves forward only: {step:g} s is not a step forward")
        if step > MAX_ADVANCE:
            raise ValueError(f"{step:g} s is more than one advance may take (at most {MAX_ADVANCE:g} s, ten years)")
        with self._lock:
            self._offset += step
            subscribers = list(self._subscribers)
        for notify in subscribers:  # outside the lock: a subscriber may read the clock
            notify()
        return self._offset

    def subscribe(self, notify: Callable[[], None]) -> None:
        """Call ``notify()`` after every advance."""
        with self._lock:
            self._subscribers.append(notify)

    def unsubscribe(self, notify: Callable[[], None]) -> None:
        with self._lock:
            if notify in self._subscribers:
                self._subscribers.remove(notify)

    def __repr__(self) -> str:
        return f"<Clock +{self._offset:g} s>"


#: The clock of states built outside a device (a scenario's dry run): real time, never advanced.
REAL = Clock()
