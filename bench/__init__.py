"""Benchmarks of mockfgt: `make bench` (python -m bench). See docs/performance.md."""
