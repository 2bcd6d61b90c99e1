"""Drop-in replacements for the entry points of other libraries, on microvae's kernels.

- :mod:`microvae.compat.porespy`: ``two_point_correlation``, ``porosity`` and
  ``chord_length_distribution`` of ``porespy.metrics`` and ``apply_chords`` of
  ``porespy.filters`` (PoreSpy 3.2), same arguments, binning, estimator and ``Results`` fields.
  PoreSpy's ``lineal_path_distribution`` is left out: it histograms a distance transform, a
  different quantity from microvae's lineal-path function.
- :mod:`microvae.compat.pymks`: ``two_point_stats``, ``correlations_multiple`` and the
  ``TwoPointCorrelation`` transformer of PyMKS 0.4, same input layout, centring and outputs,
  NumPy and Dask.

Each is equal to the original within 1e-10 (tests/test_compat.py compares with the real
libraries; the exceptions are stated in the functions' docstrings); neither library is needed
to use them. Import the submodule you need, e.g.
``from microvae.compat import porespy as ps_fast``.
"""
