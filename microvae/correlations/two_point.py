"""Two-point correlation function S2 of the pore phase, batched, by real FFTs."""
from functools import lru_cache

import numpy as np
import scipy.fft
from threadpoolctl import threadpool_limits

from .._validate import as_binary_batch

__all__ = ["s2", "radial_distances", "fftshift_map", "default_r_max"]

# Above this many entries the spectral binning matrix (spectrum size x bins) costs more memory
# than it saves time; large volumes take the inverse-FFT + bincount route instead.
_MAX_BINNING_ENTRIES = 2 ** 25
_CHUNK_BYTES = 64 * 2 ** 20


def default_r_max(spatial_shape):
    """Default largest radius, in pixels: half the smallest side."""
    return min(spatial_shape) // 2


def radial_distances(r_max, voxel_size=1.0):
    """Centres of the 1-pixel radial bins ``0..r_max`` in physical units (``voxel_size`` per pixel)."""
    return np.arange(int(r_max) + 1) * float(voxel_size)


def fftshift_map(maps):
    """Move ``r = 0`` from index ``[..., 0, 0]`` to the centre of each map, for display.

    Shifts the last two axes of a 2D batch ``(N, H, W)``; pass 3D maps ``(N, D, H, W)``
    to shift the last three.
    """
    maps = np.asarray(maps)
    axes = tuple(range(1, maps.ndim)) if maps.ndim >= 3 else tuple(range(maps.ndim))
    return np.fft.fftshift(maps, axes=axes)


def _signed_offsets(m):
    """Signed displacements of a length-``m`` FFT axis: ``0..⌈m/2⌉-1`` then ``-⌊m/2⌋..-1``."""
    return np.fft.fftfreq(m, 1.0 / m).astype(np.int64)


def _grid(shape, periodic, r_needed):
    """FFT grid per axis: the image itself (periodic) or zero-padded by ``r_needed`` (non-periodic)."""
    if periodic:
        return tuple(shape)
    return tuple(scipy.fft.next_fast_len(n + r_needed, real=True) for n in shape)


def _overlap(shape, grid, periodic):
    """Number of point pairs entering each displacement of the FFT grid (dtype float64)."""
    if periodic:
        return np.full(grid, float(np.prod(shape)))
    counts = [np.maximum(n - np.abs(_signed_offsets(g)), 0).astype(np.float64) for n, g in zip(shape, grid)]
    out = counts[0]
    for c in counts[1:]:
        out = np.multiply.outer(out, c)
    return out


def _radius_map(grid):
    """Euclidean length of the signed displacement of every FFT-grid element."""
    sq = 0.0
    for k, g in enumerate(grid):
        d = _signed_offsets(g).astype(np.float64)
        sq = np.add.outer(sq, d * d) if k else d * d
    return np.sqrt(sq)


@lru_cache(maxsize=16)
def _bins(shape, grid, periodic, r_max):
    """Flat grid indices with ``round(|r|) <= r_max``, their bin, and the per-pair weight
    ``1 / (bin count * overlap)`` that turns raw correlation sums into the radial S2."""
    radius = _radius_map(grid)
    bin_of = np.floor(radius + 0.5).astype(np.int64).ravel()
    idx = np.flatnonzero(bin_of <= r_max)
    bins = bin_of[idx]
    counts = np.bincount(bins, minlength=r_max + 1).astype(np.float64)
    weight = 1.0 / (counts[bins] * _overlap(shape, grid, periodic).ravel()[idx])
    return idx, bins, weight


@lru_cache(maxsize=8)
def _spectral_binning(shape, grid, periodic, r_max):
    """Matrix K with ``S2_radial = |rfftn(I)|^2 @ K``: the radial average folded into the
    inverse transform. Valid because each weighted bin mask is symmetric under r -> -r,
    so its Fourier transform is real; the rfft half-spectrum carries Hermitian weights."""
    idx, bins, weight = _bins(shape, grid, periodic, r_max)
    n_total = float(np.prod(grid))
    nk = grid[-1] // 2 + 1
    herm = np.full(nk, 2.0)
    herm[0] = 1.0
    if grid[-1] % 2 == 0:
        herm[-1] = 1.0
    K = np.empty((int(np.prod(grid[:-1])) * nk, r_max + 1))
    mask = np.zeros(int(n_total))
    for b in range(r_max + 1):
        mask[:] = 0.0
        sel = bins == b
        mask[idx[sel]] = weight[sel]
        ft = scipy.fft.rfftn(mask.reshape(grid)).real * herm / n_total
        K[:, b] = ft.ravel()
    return K


def s2(images, periodic=True, radial=True, r_max=None, *, ndim=None, workers=-1):
    """Two-point correlation function of the pore phase (value 1).

    ``S2(r)`` is the probability that two points a vector ``r`` apart both lie in the pore
    phase, ``S2(r) = mean_x I(x) I(x + r)``. All images of the batch are transformed at once
    (real FFTs, float64).

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``; see ``ndim``. 1 = pore.
    periodic : bool
        ``True`` (default): periodic boundaries, ``x + r`` wraps around. ``False``:
        zero-padded transforms, each displacement normalized by its number of overlapping
        pixel pairs (the unbiased estimator for a finite window).
    radial : bool
        ``True``: average over directions in 1-pixel bins, bin ``b`` holding the vectors with
        ``round(|r|) = b``; returns shape ``(N, r_max + 1)``. ``False``: the full map, same
        spatial shape as the input, FFT order (``r = 0`` at ``[..., 0, 0]``, negative
        displacements in the upper halves; :func:`fftshift_map` centres it).
    r_max : int, optional
        Largest radius in pixels. Default and upper limit with ``periodic=True``: half the
        smallest side; up to ``side - 1`` without periodicity.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.
    workers : int
        FFT threads (``-1``: all cores).

    Returns
    -------
    ndarray of float64
        ``(N, r_max + 1)`` if ``radial`` else ``(N,) + spatial shape``. Distances of the
        radial bins: :func:`radial_distances`.

    Notes
    -----
    ``S2(0)`` equals the porosity exactly and, for a statistically homogeneous medium,
    ``S2(r) -> porosity**2`` at large ``r``.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    shape = batch.shape[1:]
    limit = default_r_max(shape) if periodic else min(shape) - 1
    if r_max is None:
        r_max = default_r_max(shape)
    r_max = int(r_max)
    if not 0 <= r_max <= limit:
        raise ValueError(f"r_max must be in [0, {limit}] for images of shape {shape} "
                         f"({'periodic' if periodic else 'non-periodic'}), got {r_max}")
    r_needed = r_max if radial else max(n // 2 for n in shape)
    grid = _grid(shape, periodic, r_needed)
    axes = tuple(range(1, nd + 1))
    n_spec = int(np.prod(grid[:-1])) * (grid[-1] // 2 + 1)
    chunk = max(1, _CHUNK_BYTES // (16 * n_spec))

    use_matrix = radial and n_spec * (r_max + 1) <= _MAX_BINNING_ENTRIES
    if use_matrix:
        K = _spectral_binning(shape, grid, periodic, r_max)
        out = np.empty((len(batch), r_max + 1))
    elif radial:
        idx, bins, weight = _bins(shape, grid, periodic, r_max)
        out = np.empty((len(batch), r_max + 1))
    else:
        window = np.ix_(*[np.mod(_signed_offsets(n), g) for n, g in zip(shape, grid)])
        overlap = _overlap(shape, grid, periodic)[window]
        out = np.empty(batch.shape)

    for start in range(0, len(batch), chunk):
        part = batch[start:start + chunk].astype(np.float64)
        spec = scipy.fft.rfftn(part, s=grid, axes=axes, workers=workers)
        power = spec.real ** 2 + spec.imag ** 2
        if use_matrix:
            # The product is small next to the FFTs; multithreaded BLAS here only oversubscribes
            # the cores when s2 is itself called from worker threads (measured 10x slower).
            with threadpool_limits(1, user_api="blas"):
                out[start:start + chunk] = power.reshape(len(part), -1) @ K
            continue
        corr = scipy.fft.irfftn(power, s=grid, axes=axes, workers=workers)
        if radial:
            for i, c in enumerate(corr):
                out[start + i] = np.bincount(bins, weights=c.ravel()[idx] * weight, minlength=r_max + 1)
        else:
            out[start:start + chunk] = corr[(slice(None),) + window] / overlap
    return out
