"""Correlation functions of the pore phase (1 = pore): S2 by batched FFT, S3 by Monte Carlo
and by exact per-vector FFT maps. Slow brute-force versions for checking live in
:mod:`microvae.correlations.reference`."""
from .three_point import S3Sample, s3, s3_map
from .two_point import default_r_max, fftshift_map, radial_distances, s2

__all__ = ["s2", "s3", "s3_map", "S3Sample", "radial_distances", "fftshift_map", "default_r_max"]
