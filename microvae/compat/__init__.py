"""Drop-in replacements for the entry points of other libraries, on microvae's kernels.

- :mod:`microvae.compat.porespy`: ``two_point_correlation`` and ``porosity`` of
  ``porespy.metrics`` (PoreSpy 3.2), same arguments, binning, estimator and ``Results`` fields.
- :mod:`microvae.compat.pymks`: ``two_point_stats`` and the ``TwoPointCorrelation``
  transformer of PyMKS 0.4, same input layout, centring and outputs, NumPy and Dask.

Each is equal to the original within 1e-10 (tests/test_compat.py compares with the real
libraries); neither library is needed to use them. Import the submodule you need, e.g.
``from microvae.compat import porespy as ps_fast``.
"""
