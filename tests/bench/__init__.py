"""Benchmarks: `make bench-<name>` runs `tests/bench/<name>.py` (see BENCHMARKS.md)."""
