"""PyMKS-compatible two-point statistics: ``two_point_stats``, ``correlations_multiple`` and the
scikit-learn ``TwoPointCorrelation`` transformer of PyMKS 0.4, by real FFTs.

Swap ``from pymks import two_point_stats, TwoPointCorrelation`` for ``from microvae.compat.pymks
import ...``: the same arguments and input layout (samples first, PyMKS's ``(n_samples, n_x,
n_y[, n_z], n_states)`` for the transformer), the same centring (zero displacement at index
``cutoff`` of every spatial axis, displacements ``-cutoff..cutoff``), the same normalization
(periodic: the number of pixels; non-periodic: the number of pixel pairs at each displacement;
with a mask: the mask's own auto-correlation), NumPy in / NumPy out and Dask in / Dask out (a
NumPy array for either argument gives NumPy, as in PyMKS). Equal to PyMKS 0.4.1 within 1e-10.

What differs is the cost: real transforms, zero padding only as wide as ``cutoff``, and in
:class:`TwoPointCorrelation` one forward transform per state shared by all its correlations
(PyMKS transforms both fields again for every pair).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin

from .._validate import check_finite
from ..correlations.two_point import pair_counts
from ..threads import fft_workers

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["two_point_stats", "correlations_multiple", "TwoPointCorrelation"]


def _is_dask(arr):
    return type(arr).__module__.startswith("dask.") and hasattr(arr, "chunks")


def _as_field(arr, name):
    arr = np.asarray(arr)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric or boolean array, got dtype {arr.dtype}")
    check_finite(arr, name)
    return arr


def _cutoff(spatial, cutoff):
    """PyMKS's cutoff: at most ``(min side - 1) // 2``, the largest that keeps ``-c..c`` distinct."""
    largest = int((min(spatial) - 1) // 2)
    if cutoff is None:
        return largest
    if not isinstance(cutoff, (int, np.integer)) or isinstance(cutoff, bool) or cutoff < 0:
        raise ValueError(f"cutoff must be a non-negative integer or None, got {cutoff!r}")
    return min(int(cutoff), largest)


def _plan(spatial, periodic, c):
    grid = tuple(spatial) if periodic else tuple(scipy.fft.next_fast_len(n + c, real=True) for n in spatial)
    window = np.ix_(*[np.mod(np.arange(-c, c + 1), g) for g in grid])
    return grid, window


def _correlate(spec1, spec2, grid, window, axes, workers):
    """``Σ_s a1[s] a2[s + r]`` at the displacements of ``window`` from the two real spectra."""
    corr = scipy.fft.irfftn(np.conj(spec1) * spec2, s=grid, axes=axes, workers=workers)
    return corr[(slice(None),) + window]


def _normalization(spatial, grid, window, periodic, mask, axes, workers):
    if mask is not None:
        spec = scipy.fft.rfftn(mask, s=grid, axes=axes, workers=workers)
        return _correlate(spec, spec, grid, window, axes, workers)
    if periodic:
        return float(np.prod(spatial))
    return pair_counts(spatial, grid, periodic=False)[window]


def _stats_block(fields, pairs, periodic, c, mask=None, dtype=np.float64):
    """Two-point statistics of the ``pairs`` of ``fields`` (each ``(n, *spatial)``), stacked on
    a last axis; every field is transformed once, with microvae's thread setting (:mod:`microvae.threads`)."""
    spatial = fields[0].shape[1:]
    workers = fft_workers()
    axes = tuple(range(1, len(spatial) + 1))
    grid, window = _plan(spatial, periodic, c)
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float64)
    used = sorted({i for pair in pairs for i in pair})
    specs = {}
    for i in used:
        field = np.asarray(fields[i], dtype=np.float64)
        specs[i] = scipy.fft.rfftn(field if mask is None else field * mask, s=grid, axes=axes, workers=workers)
    norm = _normalization(spatial, grid, window, periodic, mask, axes, workers)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = [_correlate(specs[i], specs[j], grid, window, axes, workers) / norm for i, j in pairs]
    return np.stack(out, axis=-1).astype(dtype, copy=False)


def _result_dtype(*arrays):
    """PyMKS's output dtype: float32 for float32 input (NumPy 2's FFTs keep it), else float64."""
    return np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64


def _common_chunks(*chunkings):
    """Sample-axis chunks whose boundaries are the union of all the given ones (Dask's rule
    for an elementwise product, which PyMKS's outputs follow)."""
    bounds = sorted({int(b) for chunks in chunkings for b in np.cumsum((0,) + tuple(chunks))})
    return tuple(np.diff(bounds).tolist())


def _check_mask(mask, shape):
    if mask.shape != tuple(shape):
        raise ValueError(f"mask must have the shape of the arrays {tuple(shape)}, got {mask.shape}")
    lo, hi = mask.min(), mask.max()
    if _is_dask(mask):
        lo, hi = lo.compute(), hi.compute()
    if hi > 1.0 or lo < 0.0:
        raise ValueError("Mask must be in range [0,1]")


def two_point_stats(arr1: ArrayLike | da.Array, arr2: ArrayLike | da.Array, periodic_boundary: bool = True,
                    cutoff: int | None = None, mask: ArrayLike | da.Array | None = None) -> np.ndarray | da.Array:
    """Two-point statistics ``f[r | l, l'] = (1/S) Σ_s m[s, l] m[s + r, l']`` of ``arr1[i]``
    with ``arr2[i]`` for each sample, as ``pymks.two_point_stats``.

    Parameters
    ----------
    arr1, arr2 : array_like or dask.array.Array
        ``(n_samples, n_x, n_y)`` or ``(n_samples, n_x, n_y, n_z)``, same shape; real fields
        (discrete states or continuous values).
    periodic_boundary : bool
        Periodic images (default) or zero-padded ones, each displacement divided by its
        number of pixel pairs.
    cutoff : int, optional
        Displacements ``-cutoff..cutoff`` per axis are kept (default and upper limit:
        ``(min side - 1) // 2``).
    mask : array_like, optional
        Confidence per pixel in [0, 1], shape of ``arr1``; both fields are multiplied by it and
        the result is divided by its auto-correlation.

    Returns
    -------
    ndarray or dask.array.Array
        ``(n_samples,) + (2 cutoff + 1,) * dim``, zero displacement at the centre. A Dask array
        only if both ``arr1`` and ``arr2`` are Dask arrays (chunked along samples as PyMKS
        chunks them); float32 if both inputs are float32, else float64.
    """
    lazy = _is_dask(arr1) and _is_dask(arr2)
    same = arr1 is arr2  # an auto-correlation needs one transform
    if not lazy:
        arr1 = _as_field(arr1.compute() if _is_dask(arr1) else arr1, "arr1")
        arr2 = _as_field(arr2.compute() if _is_dask(arr2) else arr2, "arr2")
    if arr1.shape != arr2.shape:
        raise ValueError(f"arr1 and arr2 must have the same shape, got {arr1.shape} and {arr2.shape}")
    if len(arr1.shape) not in (2, 3, 4):
        raise ValueError(f"arrays must be (n_samples, n_x[, n_y[, n_z]]), got shape {arr1.shape}")
    if mask is not None:
        _check_mask(mask, arr1.shape)
    c = _cutoff(arr1.shape[1:], cutoff)
    dtype = _result_dtype(arr1, arr2)
    if not lazy:
        mask = None if mask is None else np.asarray(mask.compute() if _is_dask(mask) else mask)
        fields, pair = ([arr1], (0, 0)) if same else ([arr1, arr2], (0, 1))
        return _stats_block(fields, [pair], periodic_boundary, c, mask, dtype)[..., 0]
    import dask.array as da

    inputs = [arr1, arr2] + ([] if mask is None else [da.asarray(mask)])
    chunks = _common_chunks(*(a.chunks[0] for a in inputs))
    inputs = [a.rechunk((chunks,) + tuple((n,) for n in a.shape[1:])) for a in inputs]
    out_chunks = (chunks,) + ((2 * c + 1,),) * (len(arr1.shape) - 1)

    def block(a, b, m=None):
        return _stats_block([a, b], [(0, 1)], periodic_boundary, c, m, dtype)[..., 0]
    return da.map_blocks(block, *inputs, dtype=dtype, chunks=out_chunks)


def correlations_multiple(data: ArrayLike | da.Array, correlations: Sequence[tuple[int, int]] | None,
                          periodic_boundary: bool = True, cutoff: int | None = None) -> np.ndarray | da.Array:
    """Several two-point statistics of the states of ``data``, as ``pymks.correlations_multiple``.

    Parameters
    ----------
    data : array_like or dask.array.Array
        ``(n_samples, n_x, n_y[, n_z], n_states)``, e.g. the output of PyMKS's
        ``PrimitiveTransformer``.
    correlations : sequence of (int, int) or None
        State pairs ``(l, l')``; empty or None: ``(0, l')`` for every state.
    periodic_boundary, cutoff :
        As for :func:`two_point_stats`.

    Returns
    -------
    ndarray or dask.array.Array
        ``(n_samples,) + (2 cutoff + 1,) * dim + (len(correlations),)``; Dask for Dask input.
    """
    lazy = _is_dask(data)
    if not lazy:
        data = _as_field(data, "data")
    if len(data.shape) not in (3, 4, 5):
        raise ValueError(f"data must be (n_samples, n_x[, n_y[, n_z]], n_states), got shape {data.shape}")
    n_states = data.shape[-1]
    pairs = [tuple(int(v) for v in p) for p in correlations] if correlations else [(0, k) for k in range(n_states)]
    for pair in pairs:
        if len(pair) != 2 or not all(0 <= v < n_states for v in pair):
            raise ValueError(f"correlation {pair} must be a pair of states in [0, {n_states - 1}]")
    spatial = data.shape[1:-1]
    c = _cutoff(spatial, cutoff)
    dtype = _result_dtype(data)

    def block(d):
        return _stats_block([d[..., k] for k in range(n_states)], pairs, periodic_boundary, c, None, dtype)
    if not lazy:
        return block(data)
    data = data.rechunk((data.chunks[0],) + tuple((n,) for n in data.shape[1:]))
    out_chunks = (data.chunks[0],) + ((2 * c + 1,),) * len(spatial) + ((len(pairs),),)
    return data.map_blocks(block, dtype=dtype, chunks=out_chunks)


class TwoPointCorrelation(BaseEstimator, TransformerMixin):
    """Two-point statistics as a scikit-learn transformer, as ``pymks.TwoPointCorrelation``:
    ``transform(data)`` is :func:`correlations_multiple` with the estimator's settings.

    Parameters
    ----------
    correlations : sequence of (int, int), optional
        State pairs; default ``(0, l)`` for every state ``l``.
    periodic_boundary : bool
        Periodic (default) or zero-padded images.
    cutoff : int, optional
        Displacements kept per axis, ``-cutoff..cutoff``.
    """

    def __init__(self, correlations: Sequence[tuple[int, int]] | None = None, periodic_boundary: bool = True,
                 cutoff: int | None = None) -> None:
        self.correlations = correlations
        self.periodic_boundary = periodic_boundary
        self.cutoff = cutoff

    def fit(self, *_: Any) -> TwoPointCorrelation:
        """Nothing to learn; returns the transformer (for pipelines)."""
        return self

    def transform(self, data: ArrayLike | da.Array) -> np.ndarray | da.Array:
        """Two-point statistics of ``data`` ``(n_samples, n_x, n_y[, n_z], n_states)``."""
        return correlations_multiple(data, self.correlations, periodic_boundary=self.periodic_boundary,
                                     cutoff=self.cutoff)
