"""Three-point correlation function S3 of the pore phase: Monte Carlo on an (r, s, theta)
grid (compiled, parallel) and exact maps ``S3(r1, .)`` for given vectors by FFT."""
from typing import NamedTuple

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike

from .._validate import Seed, as_binary_batch, as_generator, check_int
from ..threads import fft_workers
from ._s3_sampling import sample_s3

__all__ = ["s3", "s3_map", "S3Sample", "MAX_SAMPLES"]

#: The most triangles :func:`s3` draws per image and cell. At this many the binomial standard
#: error is below 1.6e-5, finer than the rounding of the triangle's vertices to pixels, and a
#: cell takes about two minutes on one core (10**12 would take over a day).
MAX_SAMPLES = 10**9


class S3Sample(NamedTuple):
    """Monte Carlo estimate of S3 with its standard error and the number of triangles drawn."""

    estimate: np.ndarray
    stderr: np.ndarray
    trials: np.ndarray


def _grid_values(values: ArrayLike, name: str, positive: bool = True) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr < 0)):
        raise ValueError(f"{name} must be finite{' and >= 0' if positive else ''}")
    return np.ascontiguousarray(arr)


def s3(images: ArrayLike, r: ArrayLike, s: ArrayLike, theta: ArrayLike, *, n_samples: int = 10_000,
       periodic: bool = True, seed: Seed = None, ndim: int | None = None) -> S3Sample:
    """Three-point correlation ``S3(r, s, theta)`` by Monte Carlo over positions and orientations.

    For each image and grid cell, ``n_samples`` triangles are drawn: a uniformly random pixel
    ``x``, a uniformly random orientation (in the image plane for 2D, uniform over 3D
    rotations for volumes), the second vertex at distance ``r`` along it and the third at
    distance ``s`` at angle ``theta``; each offset is rounded to the nearest pixel. The
    estimate is the fraction of triangles with all three vertices in the pore phase. For an
    isotropic medium this is the function of the triangle's sides ``r, s`` and angle
    ``theta`` that enters the three-point parameters.

    Parameters
    ----------
    images : array_like
        Binary batch, 1 = pore; see :func:`microvae.correlations.s2` for shapes and ``ndim``.
    r, s : array_like of float
        Side lengths in pixels (>= 0).
    theta : array_like of float
        Angles at the first vertex, radians.
    n_samples : int
        Triangles per cell, at most :data:`MAX_SAMPLES`.
    periodic : bool
        Wrap vertices around the image (default). ``False`` rejects triangles that leave the
        image; cells where fewer than ``n_samples`` fit in ``100 * n_samples`` draws report
        the smaller ``trials`` (NaN where none fit).
    seed : int or numpy Generator, optional
        Same seed, same result, whatever the number of threads.

    Returns
    -------
    S3Sample
        ``estimate``, ``stderr`` (binomial standard error) and ``trials``, each of shape
        ``(N, len(r), len(s), len(theta))``.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    r = _grid_values(r, "r")
    s = _grid_values(s, "s")
    theta = _grid_values(theta, "theta", positive=False)
    # Every side of every triangle must fit: beyond half the smallest side a periodic image
    # wraps (r and L - r are the same offset), and past the side no triangle fits inside.
    spatial = batch.shape[1:]
    limit = min(spatial) // 2 if periodic else min(spatial) - 1
    third = np.sqrt(np.maximum(r[:, None, None] ** 2 + s[None, :, None] ** 2
                               - 2 * r[:, None, None] * s[None, :, None] * np.cos(theta)[None, None, :], 0))
    longest = max(r.max(), s.max(), third.max())
    if longest > limit:
        raise ValueError(f"triangle sides up to {longest:.3g} px do not fit images of shape {spatial} "
                         f"({'periodic: at most half the smallest side' if periodic else 'at most the side - 1'}"
                         f", {limit} px)")
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    if n_samples > MAX_SAMPLES:
        raise ValueError(f"n_samples={n_samples} exceeds MAX_SAMPLES = {MAX_SAMPLES:.0e} triangles per cell "
                         "(standard error 1.6e-5 at most there); draw fewer")
    base_seed = int(as_generator(seed).integers(0, 2 ** 63))
    vol = batch if nd == 3 else batch[:, None]
    hits, trials = sample_s3(vol, r, s, theta, n_samples, bool(periodic), nd == 3, np.uint64(base_seed),
                             100 * n_samples)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = hits / trials
        stderr = np.sqrt(p * (1 - p) / (trials - 1))
    return S3Sample(p, stderr, trials)


def s3_map(images: ArrayLike, r1: ArrayLike, *, periodic: bool = True, ndim: int | None = None,
           workers: int | None = None) -> np.ndarray:
    """Exact ``S3(r1, r2) = mean_x I(x) I(x + r1) I(x + r2)`` for given ``r1``, all ``r2``.

    For each vector ``r1`` the whole map over ``r2`` is one FFT cross-correlation of
    ``J(x) = I(x) I(x + r1)`` with ``I``.

    Parameters
    ----------
    images : array_like
        Binary batch (1 = pore), 2D or 3D; see :func:`microvae.correlations.s2`.
    r1 : array_like of int, shape ``(M, d)`` or ``(d,)``
        Displacement vectors in pixels, ordered like the image axes (``(dy, dx)`` in 2D).
    periodic : bool
        Periodic boundaries (default) or the zero-padded estimator normalized by the number of
        positions where all three points fall inside the image.

    Returns
    -------
    ndarray of float64, shape ``(N, M) + spatial``
        Map over ``r2`` in FFT order (``r2 = 0`` at ``[..., 0, 0]``), as ``s2(radial=False)``.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    shape = batch.shape[1:]
    vecs = np.asarray(r1)
    if vecs.ndim == 1:
        vecs = vecs[None]
    if vecs.ndim != 2 or vecs.shape[1] != nd or vecs.shape[0] == 0:
        raise ValueError(f"r1 must have shape (M, {nd}) for {nd}D images, got {np.shape(r1)}")
    if not np.issubdtype(vecs.dtype, np.integer):
        if not np.all(np.isfinite(vecs)) or np.any(vecs != np.round(vecs)):
            raise ValueError("r1 must hold integer pixel displacements")
        vecs = vecs.astype(np.int64)
    if np.any(np.abs(vecs) >= np.asarray(shape)):
        raise ValueError(f"r1 components must be smaller than the image sides {shape}")
    axes, workers = tuple(range(1, nd + 1)), fft_workers(workers)
    if periodic:
        grid = shape
        counts = np.full(shape, float(np.prod(shape)))
    else:
        reach = np.abs(vecs).max(axis=0)
        grid = tuple(scipy.fft.next_fast_len(n + max(n // 2, int(a)), real=True) for n, a in zip(shape, reach))
    window = np.ix_(*[np.mod(np.fft.fftfreq(n, 1.0 / n).astype(np.int64), g) for n, g in zip(shape, grid)])
    out = np.empty((len(batch), len(vecs)) + shape)
    for start in range(0, len(batch), 16):
        part = batch[start:start + 16].astype(np.float64)
        padded = np.zeros((len(part),) + grid)
        padded[(slice(None),) + tuple(slice(0, n) for n in shape)] = part
        spec_i = scipy.fft.rfftn(padded, axes=axes, workers=workers)
        for m, vec in enumerate(vecs):
            shifted = np.roll(padded, shift=tuple(-int(v) for v in vec), axis=axes)
            spec_j = scipy.fft.rfftn(padded * shifted, axes=axes, workers=workers)
            corr = scipy.fft.irfftn(np.conj(spec_j) * spec_i, s=grid, axes=axes, workers=workers)
            if not periodic:
                counts = _triple_overlap(shape, vec)
            out[start:start + len(part), m] = corr[(slice(None),) + window] / counts
    return out


def _triple_overlap(shape, r1):
    """Number of x with x, x + r1 and x + r2 inside the image, for every r2 in FFT order."""
    per_axis = []
    for n, a in zip(shape, r1):
        b = np.fft.fftfreq(n, 1.0 / n).astype(np.int64)
        span = np.maximum(np.maximum(0, a), b) - np.minimum(np.minimum(0, a), b)
        per_axis.append(np.maximum(n - span, 0).astype(np.float64))
    out = per_axis[0]
    for c in per_axis[1:]:
        out = np.multiply.outer(out, c)
    return out
