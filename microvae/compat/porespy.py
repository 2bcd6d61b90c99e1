"""PoreSpy-compatible two-point correlation: ``porespy.metrics.two_point_correlation`` and
``porosity`` (PoreSpy 3.2) on microvae's batched S2 kernel.

Swap ``ps.metrics.two_point_correlation(im)`` for ``two_point_correlation(im)``: same
arguments, same bins, the same non-periodic estimator (each displacement normalized by its
number of pixel pairs, displacements inside the image only), the same ``Results`` fields, equal
to PoreSpy within 1e-10. The difference: the padding is only as large as the largest bin needs
and the bin averages are folded into the spectrum (:func:`microvae.correlations.two_point.binned_s2`),
and :func:`two_point_correlation_batch` transforms many images at once.
"""
import time

import numpy as np

from .._validate import as_binary_batch
from ..correlations.two_point import binned_s2

__all__ = ["two_point_correlation", "two_point_correlation_batch", "porosity", "Results"]


class Results:
    """PoreSpy's result object: attribute and item access to the same fields, iteration over
    the values in the order they were set, and the same printed summary."""

    def __init__(self):
        self._func = "two_point_correlation"
        self._time = time.asctime()

    def __iter__(self):
        return (v for k, v in self.__dict__.items() if not k.startswith("_"))

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        self.__dict__[key] = value

    def __str__(self):
        header = "―" * 78
        lines = [header, f"Results of {self._func} generated at {self._time}", header]
        for key, value in self.__dict__.items():
            if not key.startswith("_"):
                shown = f"Array of size {np.shape(value)}" if isinstance(value, np.ndarray) else value
                lines.append(f"{key:<25s} {shown}")
        return "\n".join(lines + [header])


def porosity(im, mask=None):
    """Pore fraction as ``porespy.metrics.porosity``: the number of 1s over the number of 0s
    and 1s; other values (e.g. 2 outside a cylindrical core) are ignored, as is everything
    where ``mask`` is False.

    Parameters
    ----------
    im : array_like
        Image, 1 (or True) = pore, 0 = solid.
    mask : array_like of bool, optional
        Same shape as ``im``; True marks the domain.

    Returns
    -------
    float
    """
    im = np.asarray(im)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != im.shape:
            raise ValueError(f"mask must have the shape of im {im.shape}, got {mask.shape}")
        im = im.astype(np.int64) * mask
    pore = np.count_nonzero(im == 1)
    solid = np.count_nonzero(im == 0)
    if pore + solid == 0:
        raise ValueError("im holds no 0 (solid) or 1 (pore) values")
    return pore / (pore + solid)


def _edges(bins, shape):
    """PoreSpy's bin edges (pixels): ``bins`` bins of whole pixels up to half the smallest side,
    or the given edges, which may reach the corner of the displacement window."""
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be a positive number of bins or an array of edges, got {bins}")
        r_max = int(min(shape) // 2)
        size = max(1, int(np.ceil(r_max / bins)))
        return np.arange(0, r_max + size, size).astype(np.float64)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be an int or a 1D array of at least two increasing, finite edges")
    corner = np.sqrt(np.sum((np.asarray(shape) - 1) ** 2))
    if edges.max() > corner:
        raise ValueError(f"bins reach {edges.max()} pixels, beyond the largest displacement in an image of "
                         f"shape {tuple(shape)} ({corner:.4g} pixels, centre to corner)")
    return edges


def _results(values, pf, edges, voxel_size):
    """The fields of PoreSpy's result, in its order, from the bin averages of S2."""
    widths = np.diff(edges)
    centers = (edges[1:] + edges[:-1]) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = values / pf
    out = Results()
    out.distance = centers * voxel_size
    out.bin_centers = centers * voxel_size
    out.bin_edges = edges * voxel_size
    out.bin_widths = widths * voxel_size
    out.probability = normalized
    out.probability_scaled = normalized * pf
    out.pdf = normalized * pf
    out.relfreq = normalized * widths
    return out


def two_point_correlation(im, voxel_size=1, bins=100):
    """Two-point correlation function of the pore phase, as ``porespy.metrics.two_point_correlation``.

    Non-periodic estimator: ``S2(r)`` is averaged over the pixel pairs the image holds at each
    displacement ``r`` (``|r_i| < n_i``), then over the displacements of each radial bin
    ``bin_edges[b] <= |r| < bin_edges[b + 1]`` (empty bins give 0).

    Parameters
    ----------
    im : array_like
        Binary 2D or 3D image, 1 (True) = pore.
    voxel_size : float
        Pixel length; scales the distances (after binning, as PoreSpy does).
    bins : int or array_like
        Number of bins (whole pixels, up to half the smallest side) or the bin edges in pixels
        (at most the centre-to-corner distance of the displacement window).

    Returns
    -------
    Results
        ``distance`` (= ``bin_centers``), ``bin_centers``, ``bin_edges``, ``bin_widths``
        (lengths times ``voxel_size``); ``probability`` = S2/φ (1 at r = 0);
        ``probability_scaled`` = ``pdf`` = S2; ``relfreq`` = ``probability`` × bin width in
        pixels.
    """
    im = np.asarray(im)
    if im.ndim not in (2, 3):
        raise ValueError(f"im must be one 2D or 3D image, got shape {im.shape}")
    return two_point_correlation_batch(im, voxel_size, bins, ndim=im.ndim, _single=True)


def two_point_correlation_batch(images, voxel_size=1, bins=100, *, ndim=None, _single=False):
    """:func:`two_point_correlation` of many same-shaped images at once.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, D, H, W)`` volumes (a single ``(H, W)`` image is a batch
        of one; pass ``ndim=3`` for a single volume); binary, 1 = pore.
    voxel_size, bins :
        As for :func:`two_point_correlation`.

    Returns
    -------
    Results
        The fields of :func:`two_point_correlation`; ``probability``, ``probability_scaled``,
        ``pdf`` and ``relfreq`` have one row per image, shape ``(N, bins)``.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    shape = batch.shape[1:]
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    edges = _edges(bins, shape)
    r_needed = tuple(min(n - 1, int(np.floor(edges[-1]))) for n in shape)
    values = binned_s2(batch, nd, False, edges, r_needed)
    pf = batch.reshape(len(batch), -1).mean(axis=1)
    if _single:
        values, pf = values[0], pf[0]
    else:
        pf = pf[:, None]
    return _results(values, pf, edges, voxel_size)
