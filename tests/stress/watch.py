"""What the abuse must not cause: unhandled exceptions, leaked threads, leaked descriptors.

An unhandled exception never reaches the wire as a traceback (the apps and the listener all have a
last resort), so it is detected where it is reported: every ERROR record of the ``mockfgt`` logger
hierarchy. The Flask apps log ``unhandled error for ...`` through ``app.logger`` (``mockfgt.fortios``,
``mockfgt.fortimanager``, ``mockfgt.control``); the listener logs ``unhandled error`` and
``connection from ... failed``.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import dataclass

from deadlines import seconds


class ErrorLog(logging.Handler):
    """Collects ERROR records of the ``mockfgt`` loggers while installed (use it as a context manager)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def __enter__(self) -> ErrorLog:
        logging.getLogger("mockfgt").addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("mockfgt").removeHandler(self)

    def __len__(self) -> int:
        with self._lock_records:
            return len(self.records)

    def since(self, mark: int) -> list[logging.LogRecord]:
        with self._lock_records:
            return self.records[mark:]

    def describe(self, records: list[logging.LogRecord] | None = None) -> str:
        """Each record with its traceback, for an assertion message."""
        formatter = logging.Formatter("%(name)s: %(message)s")
        chosen = self.records if records is None else records
        return "\n".join(formatter.format(r) for r in chosen) or "(none)"


@dataclass(frozen=True)
class Resources:
    threads: int
    descriptors: int

    @classmethod
    def now(cls) -> Resources:
        """The counts now, after collecting garbage: a client socket held by an exception's traceback
        lives in a reference cycle until the collector runs, and is not the device's to answer for."""
        gc.collect()
        return cls(threading.active_count(), len(os.listdir("/proc/self/fd")))

    def __str__(self) -> str:
        return f"{self.threads} threads, {self.descriptors} descriptors"


def settle(baseline: Resources, timeout: float = seconds(10)) -> Resources:
    """Wait (up to ``timeout``) for threads and descriptors to fall back to ``baseline``; the counts then.

    Connection threads finish a moment after their client has read the last byte, so the counts
    are read again until they are back or the time is up. The caller asserts on what it gets.
    """
    deadline = time.monotonic() + timeout
    current = Resources.now()
    while time.monotonic() < deadline and (current.threads > baseline.threads
                                           or current.descriptors > baseline.descriptors):
        time.sleep(0.05)
        current = Resources.now()
    return current


def median_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[len(ordered) // 2] * 1000, 2) if ordered else 0.0
