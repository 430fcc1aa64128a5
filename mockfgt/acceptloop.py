"""One accept loop per process, shared by every listener, and a bounded pool of worker threads.

A device costs a socket, not a thread. One selector thread (started by the first listener, stopped
with the last) watches every listening port, every idle keep-alive connection and every stalled
connection, and runs the timers: per-connection deadlines, the retry after a shortage of descriptors,
late answers. Work that blocks (a TLS handshake, reading a request, running the app, writing the
answer) goes to the worker pool.

Why the pool's bound cannot starve a healthy device: a connection holds a worker only while it has
something to do. An idle keep-alive connection goes back to the selector between requests; a
connection that has not sent a byte yet waits in the selector; a stall (``stall-handshake``,
``stall-response``) is parked in the selector for as long as it lasts, however many there are. What
can hold a worker is a client that trickles bytes or stops reading our answer, and only until its
deadline (the device's ``request_timeout``), or a refused handshake's lingering close (2 s). The bound
(:data:`MAX_WORKERS`) is generous against those; beyond it, work waits in order for the next free
worker. Workers are started on demand and end after :data:`WORKER_IDLE` seconds without work, so an
idle process keeps only the loop's thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("mockfgt")

#: The most worker threads a process runs at once (``MOCKFGT_WORKERS`` overrides it).
MAX_WORKERS = int(os.environ.get("MOCKFGT_WORKERS", "") or 128)
#: A worker that found no work for this long ends.
WORKER_IDLE = 1.0


class Timer:
    """A call the loop makes at ``when`` (``time.monotonic()``), unless cancelled first."""

    __slots__ = ("when", "fn", "args", "cancelled")

    def __init__(self, when: float, fn: Callable, args: tuple) -> None:
        self.when, self.fn, self.args, self.cancelled = when, fn, args, False

    def cancel(self) -> None:
        self.cancelled = True


class Pool:
    """Worker threads, started on demand up to ``size``; jobs wait in order when all are busy."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: deque[tuple[Callable, tuple]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = 0  # workers waiting for a job
        self._threads = 0
        self._closed = False

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` on a worker. RuntimeError if no thread can run it (none can be started)."""
        with self._cond:
            self._jobs.append((fn, args))
            if self._idle >= len(self._jobs):
                self._cond.notify()
                return
            if self._threads >= self._size:
                return  # the next worker that finishes takes it
            self._threads += 1
        try:
            threading.Thread(target=self._work, name="mockfgt-worker", daemon=True).start()
        except RuntimeError:  # "can't start new thread"
            with self._cond:
                self._threads -= 1
                if self._threads == 0:  # nobody would ever take it
                    self._jobs.remove((fn, args))
                    raise

    def close(self) -> None:
        """Let every worker end once the jobs already queued are done."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                while not self._jobs and not self._closed:
                    if not self._cond.wait(WORKER_IDLE) and not self._jobs:
                        break
                self._idle -= 1
                if not self._jobs:  # idle too long, or closed
                    self._threads -= 1
                    return
                fn, args = self._jobs.popleft()
            try:
                fn(*args)
            except Exception:  # a job handles its own errors; this keeps the worker alive
                log.exception("a mockfgt worker job failed")


class Loop:
    """The selector thread. Every method may be called from any thread.

    ``watch`` from another thread needs no wake: epoll takes a new descriptor into a wait already
    under way, and the selector's map is only read, never iterated, while it waits. So starting a
    listener costs no round trip through the loop (1,000 devices would pay 1,000 thread switches).
    Listeners still move connections in and out of the selector on the loop's thread only, so that
    one thread decides where a connection is.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._selector_lock = threading.Lock()  # register/unregister from several threads
        self._lock = threading.Lock()
        self._calls: deque[tuple[Callable, tuple]] = deque()
        self._woken = False  # a wake byte is on its way: no need for another
        self._timers: list[tuple[float, int, Timer]] = []
        self._cancelled_seen = 0
        self._order = itertools.count()
        self._sleep_until: float | None = None  # when the loop wakes by itself (None: not before an event)
        self._closed = False
        self.pool = Pool(MAX_WORKERS)
        self._thread = threading.Thread(target=self._run, name="mockfgt-loop", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    # -- from any thread ------------------------------------------------------------------------
    def call_soon(self, fn: Callable, *args) -> bool:
        """Run ``fn(*args)`` on the loop's thread; False (and nothing runs) if the loop has stopped."""
        with self._lock:
            if self._closed:
                return False
            self._calls.append((fn, args))
            if self._woken:
                return True
            self._woken = True
        self._wake()
        return True

    def schedule(self, when: float, fn: Callable, *args) -> Timer:
        """Run ``fn(*args)`` on the loop's thread at ``when`` unless the returned timer is cancelled."""
        timer = Timer(when, fn, args)
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._order), timer))
            earlier = self._sleep_until is None or when < self._sleep_until
            if earlier:
                self._sleep_until = when
        if earlier:
            self._wake()
        return timer

    def submit(self, fn: Callable, *args) -> None:
        self.pool.submit(fn, *args)

    def close(self) -> None:
        """Stop the thread (after the calls already queued) and let the workers end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self.pool.close()

    def watch(self, sock: socket.socket, fn: Callable, *args) -> None:
        """Call ``fn(*args)`` (on the loop's thread) whenever ``sock`` is readable, until unwatched.

        A callback may still run once just after ``unwatch`` (its event was already taken)."""
        with self._selector_lock:
            self._selector.register(sock, selectors.EVENT_READ, (fn, args))

    def unwatch(self, sock: socket.socket) -> None:
        with self._selector_lock:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):  # not watched, or already closed
                pass

    # -- on the loop's thread -------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # the pipe is full (the loop is awake anyway) or closed
            pass

    def _run(self) -> None:
        try:
            while True:
                self._run_calls()
                timeout = self._run_timers()
                if self._closed:
                    self._run_calls()
                    return
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._wake_r:
                        self._drain_wakes()
                        continue
                    fn, args = key.data
                    self._guarded(fn, args)
        finally:
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _drain_wakes(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:  # nothing more to read
            pass

    def _run_calls(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, deque()
            self._woken = False
        for fn, args in calls:
            self._guarded(fn, args)

    def _run_timers(self) -> float | None:
        """Run the timers that are due; return how long the loop may sleep (None: until an event)."""
        while True:
            now = time.monotonic()
            with self._lock:
                due = []
                while self._timers and (self._timers[0][2].cancelled or self._timers[0][0] <= now):
                    _, _, timer = heapq.heappop(self._timers)
                    if not timer.cancelled:
                        due.append(timer)
                self._compact()
                if not due:
                    self._sleep_until = self._timers[0][0] if self._timers else None
                    return None if self._sleep_until is None else max(self._sleep_until - now, 0.0)
            for timer in due:
                if not timer.cancelled:
                    self._guarded(timer.fn, timer.args)

    def _compact(self) -> None:
        """Drop cancelled timers once they are most of the heap (deadlines are cancelled far more often
        than they fire: two per request)."""
        if len(self._timers) > 1024:
            live = [entry for entry in self._timers if not entry[2].cancelled]
            if len(live) < len(self._timers) // 2:
                heapq.heapify(live)
                self._timers = live

    @staticmethod
    def _guarded(fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # the loop serves every device of the process: one failure must not end it
            log.exception("mockfgt accept loop: %s failed", getattr(fn, "__qualname__", fn))


_shared: Loop | None = None
_users = 0
_shared_lock = threading.Lock()


def acquire() -> Loop:
    """The process's loop, started if no listener uses it yet; pair with :func:`release`."""
    global _shared, _users
    with _shared_lock:
        if _shared is None:
            _shared = Loop()
        _users += 1
        return _shared


def release() -> None:
    """One listener less; the last one stops the loop (a later listener starts a new one)."""
    global _shared, _users
    with _shared_lock:
        _users -= 1
        if _users > 0 or _shared is None:
            return
        loop, _shared = _shared, None
    loop.close()


def running() -> Loop | None:
    """The process's loop if one runs (for tests and benchmarks)."""
    return _shared
