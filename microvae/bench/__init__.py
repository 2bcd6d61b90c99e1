"""Benchmark cases behind ``microvae bench``: functions returning rows of throughputs measured
in this process, peers and baselines side by side so that ratios compare like with like on
whatever machine runs them. The pytest benchmarks in ``benchmarks/`` hold the speed targets;
this is the quick look on one machine.

- :mod:`~microvae.bench.registry`: :func:`case` registers a case, :func:`run` times the
  registered ones, :func:`format_table` prints the report; it imports no case module.
- :mod:`~microvae.bench.kernels`: ``s2``, ``compat``, ``labels``, ``mrf``.
- :mod:`~microvae.bench.training`: ``losses``, ``train_step``, ``concurrent`` (torch), and the
  setup the pytest benchmarks of the losses and the training step share.

Importing this package imports both case modules, so every case is registered.
"""
from . import kernels, training  # noqa: F401  (registers their cases)
from .kernels import numpy_s2_radial
from .registry import CASES, Context, case, environment, format_table, row, run, timed

__all__ = ["Context", "case", "CASES", "row", "timed", "run", "environment", "format_table", "numpy_s2_radial"]
