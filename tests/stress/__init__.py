"""Hostile input, misbehaving clients, injected faults and concurrency, at any size.

Each module runs one kind of abuse against real devices over real sockets and returns its figures
(requests tried, faults injected, what went wrong). The tests in ``tests/`` run them small and assert
the invariants; ``make stress`` (``python -m stress`` with ``tests`` on the path) runs them large and
prints the figures.
"""
