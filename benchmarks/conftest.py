"""Shared benchmark plumbing: throughputs recorded by each benchmark, printed as a ratio table.

Peer comparisons (and their speed targets) are measured in the same pytest run, so the
ratios compare like with like on whatever machine runs them.
"""
import json
from pathlib import Path

import pytest

_THROUGHPUT = {}


@pytest.fixture(scope="session")
def throughput():
    """Record ``throughput[name] = items per second`` and read earlier entries back."""
    return _THROUGHPUT


def measure(benchmark, fn, items, rounds=3):
    """Run ``fn`` under pytest-benchmark and return items per second (from the mean time)."""
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    rate = items / benchmark.stats.stats.mean
    benchmark.extra_info["items_per_s"] = rate
    return rate


def pytest_terminal_summary(terminalreporter):
    if not _THROUGHPUT:
        return
    terminalreporter.section("throughput (items/s) recorded by the benchmarks")
    for name, rate in _THROUGHPUT.items():
        terminalreporter.write_line(f"{name:60s} {rate:14.1f}")
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(_THROUGHPUT, indent=2))
