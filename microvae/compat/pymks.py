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

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

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

_UNSET: Any = object()  # an array argument not given yet (two_point_stats is curried)


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


def _as_mask(mask, shape):
    """``mask`` with a leading sample axis (of length 1 for one mask shared by every sample),
    checked as PyMKS checks it: values outside [0, 1] raise ``RuntimeError``."""
    if not _is_dask(mask):
        mask = _as_field(mask, "mask")
    try:
        broadcast = np.broadcast_shapes(tuple(mask.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        broadcast = False
    if not broadcast or len(mask.shape) < len(shape) - 1:
        raise ValueError(f"mask must have the shape of the arrays {tuple(shape)} or of one sample "
                         f"{tuple(shape[1:])}, got {tuple(mask.shape)}")
    lo, hi = mask.min(), mask.max()
    if _is_dask(mask):
        lo, hi = lo.compute(), hi.compute()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("mask holds NaN or infinite values")
    if hi > 1.0 or lo < 0.0:
        raise RuntimeError("Mask must be in range [0,1]")  # PyMKS's type and words, for drop-in use
    return mask.reshape((1,) * (len(shape) - len(mask.shape)) + tuple(mask.shape))


def two_point_stats(arr1: ArrayLike | da.Array = _UNSET, arr2: ArrayLike | da.Array = _UNSET,
                    periodic_boundary: bool = True, cutoff: int | None = None,
                    mask: ArrayLike | da.Array | None = None) -> np.ndarray | da.Array | Callable:
    """Two-point statistics ``f[r | l, l'] = (1/S) Σ_s m[s, l] m[s + r, l']`` of ``arr1[i]``
    with ``arr2[i]`` for each sample, as ``pymks.two_point_stats``.

    Curried like PyMKS's: called without ``arr1`` and ``arr2`` (or without ``arr2``), it returns
    the function of the missing arrays with the given options bound, so
    ``two_point_stats(periodic_boundary=False)(x, y)`` equals
    ``two_point_stats(x, y, periodic_boundary=False)``.

    Parameters
    ----------
    arr1, arr2 : array_like or dask.array.Array
        ``(n_samples, n_x)``, ``(n_samples, n_x, n_y)`` or ``(n_samples, n_x, n_y, n_z)``, same
        shape; real fields (discrete states or continuous values).
    periodic_boundary : bool
        Periodic images (default) or zero-padded ones, each displacement divided by its
        number of pixel pairs.
    cutoff : int, optional
        Displacements ``-cutoff..cutoff`` per axis are kept (default and upper limit:
        ``(min side - 1) // 2``).
    mask : array_like, optional
        Confidence per pixel in [0, 1] (a boolean mask marks where the image is known), of the
        shape of ``arr1`` (a mask per sample) or of one sample (the same mask for every sample);
        both fields are multiplied by it and the result is divided by its auto-correlation.
        PyMKS 0.4.1 accepts a mask of one sample's shape too, but then correlates it along
        its last axis only (periodic) or fails (non-periodic); here it is the per-sample
        mask repeated for every sample.

    Returns
    -------
    ndarray or dask.array.Array
        ``(n_samples,) + (2 cutoff + 1,) * dim``, zero displacement at the centre. A Dask array
        only if both ``arr1`` and ``arr2`` are Dask arrays (chunked along samples as PyMKS
        chunks them); float32 if both inputs are float32, else float64.

    Raises
    ------
    RuntimeError
        A mask value outside [0, 1] (the exception PyMKS raises).
    ValueError
        Arrays of different or unsupported shapes, a mask of another shape, NaN or infinite values,
        a negative ``cutoff``.
    """
    if arr1 is _UNSET or arr2 is _UNSET:
        bound: dict[str, Any] = {"periodic_boundary": periodic_boundary, "cutoff": cutoff, "mask": mask}
        if arr2 is not _UNSET:
            bound["arr2"] = arr2
        return functools.partial(two_point_stats, *(() if arr1 is _UNSET else (arr1,)), **bound)
    lazy = _is_dask(arr1) and _is_dask(arr2)
    same = arr1 is arr2  # an auto-correlation needs one transform
    # NumPy or (lazy) Dask arrays from here on: both have the few operations used below.
    a1: Any = arr1
    a2: Any = arr2
    mask_arr: Any = mask
    if not lazy:
        a1 = _as_field(a1.compute() if _is_dask(a1) else a1, "arr1")
        a2 = _as_field(a2.compute() if _is_dask(a2) else a2, "arr2")
    if a1.shape != a2.shape:
        raise ValueError(f"arr1 and arr2 must have the same shape, got {a1.shape} and {a2.shape}")
    if len(a1.shape) not in (2, 3, 4):
        raise ValueError(f"arrays must be (n_samples, n_x[, n_y[, n_z]]), got shape {a1.shape}")
    if mask_arr is not None:
        mask_arr = _as_mask(mask_arr, a1.shape)
    c = _cutoff(a1.shape[1:], cutoff)
    dtype = _result_dtype(a1, a2)
    shared = mask_arr is not None and mask_arr.shape[0] == 1 != a1.shape[0]
    if not lazy or shared:
        # One mask for all samples is one sample's size: a NumPy array, whatever it came as.
        mask_arr = None if mask_arr is None else np.asarray(mask_arr.compute() if _is_dask(mask_arr) else mask_arr)
    if not lazy:
        fields, pair = ([a1], (0, 0)) if same else ([a1, a2], (0, 1))
        return _stats_block(fields, [pair], periodic_boundary, c, mask_arr, dtype)[..., 0]
    import dask.array as da

    inputs = [a1, a2] + ([] if mask_arr is None or shared else [da.asarray(mask_arr)])
    chunks = _common_chunks(*(a.chunks[0] for a in inputs))
    inputs = [a.rechunk((chunks,) + tuple((n,) for n in a.shape[1:])) for a in inputs]
    out_chunks = (chunks,) + ((2 * c + 1,),) * (len(a1.shape) - 1)

    def block(a, b, m=mask_arr if shared else None):
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
    # NumPy or (lazy) Dask array from here on.
    x: Any = data
    if not lazy:
        x = _as_field(x, "data")
    if len(x.shape) not in (3, 4, 5):
        raise ValueError(f"data must be (n_samples, n_x[, n_y[, n_z]], n_states), got shape {x.shape}")
    n_states = x.shape[-1]
    pairs = [tuple(int(v) for v in p) for p in correlations] if correlations else [(0, k) for k in range(n_states)]
    for pair in pairs:
        if len(pair) != 2 or not all(0 <= v < n_states for v in pair):
            raise ValueError(f"correlation {pair} must be a pair of states in [0, {n_states - 1}]")
    spatial = x.shape[1:-1]
    c = _cutoff(spatial, cutoff)
    dtype = _result_dtype(x)

    def block(d):
        return _stats_block([d[..., k] for k in range(n_states)], pairs, periodic_boundary, c, None, dtype)
    if not lazy:
        return block(x)
    x = x.rechunk((x.chunks[0],) + tuple((n,) for n in x.shape[1:]))
    out_chunks = (x.chunks[0],) + ((2 * c + 1,),) * len(spatial) + ((len(pairs),),)
    return x.map_blocks(block, dtype=dtype, chunks=out_chunks)


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
