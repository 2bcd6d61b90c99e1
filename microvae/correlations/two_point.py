"""Two-point correlation function S2 of the pore phase, batched, by real FFTs."""
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike
from threadpoolctl import ThreadpoolController

from .._tensor import as_binary_tensor, is_tensor
from .._validate import as_binary_batch, check_int, check_positive
from ..threads import fft_workers

if TYPE_CHECKING:
    import torch

__all__ = ["s2", "radial_distances", "fftshift_map", "default_r_max", "pair_counts"]

# Above this many entries the spectral binning matrix (spectrum size x bins) costs more memory
# than it saves time; large volumes take the inverse-FFT + bincount route instead.
_MAX_BINNING_ENTRIES = 2 ** 25
_CHUNK_BYTES = 64 * 2 ** 20


def default_r_max(spatial_shape: tuple[int, ...]) -> int:
    """Default largest radius, in pixels: half the smallest side."""
    return min(spatial_shape) // 2


def radial_distances(r_max: int, voxel_size: float = 1.0) -> np.ndarray:
    """Centres of the 1-pixel radial bins ``0..r_max`` in physical units (``voxel_size`` per pixel)."""
    check_positive(voxel_size, "voxel_size")
    return np.arange(check_int(r_max, "r_max", minimum=0) + 1) * float(voxel_size)


def fftshift_map(maps: ArrayLike) -> np.ndarray:
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
    """FFT grid per axis: the image itself (periodic) or zero-padded far enough that the
    displacements up to ``r_needed[i]`` along axis i do not alias (non-periodic)."""
    if periodic:
        return tuple(shape)
    return tuple(scipy.fft.next_fast_len(n + r, real=True) for n, r in zip(shape, r_needed))


def pair_counts(shape: tuple[int, ...], grid: tuple[int, ...], *, periodic: bool) -> np.ndarray:
    """Number of pixel pairs of an image at each displacement of an FFT grid: the
    normalization that turns correlation sums into averages.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    grid : tuple of int
        FFT grid per axis, at least ``shape`` (zero-padded when not periodic); entries are in
        FFT order (displacement ``0..⌈g/2⌉-1`` then ``-⌊g/2⌋..-1`` along an axis of length ``g``).
    periodic : bool
        True: every pixel pairs with one at every displacement (the image is one period), so
        each entry is the number of pixels. False: ``Π_i max(n_i - |r_i|, 0)``, the pairs that
        lie inside the image.

    Returns
    -------
    ndarray of float64, shape ``grid``
    """
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


def _round_edges(r_max):
    """Edges of the 1-pixel bins of :func:`s2`: bin ``b`` holds ``round(|r|) = b``."""
    return tuple(np.arange(int(r_max) + 2) - 0.5)


@lru_cache(maxsize=16)
def _bins(shape, grid, periodic, edges):
    """Flat grid indices of the displacements in the bins ``edges[b] <= |r| < edges[b + 1]``,
    their bin, and the per-pair weight ``1 / (bin count * overlap)`` that turns raw correlation
    sums into the bin averages of S2. Non-periodic: only displacements that some pair of pixels
    of the image has (``|r_i| < n_i``)."""
    radius = _radius_map(grid).ravel()
    bin_of = np.searchsorted(np.asarray(edges), radius, side="right") - 1
    overlap = pair_counts(shape, grid, periodic=periodic).ravel()
    idx = np.flatnonzero((bin_of >= 0) & (bin_of < len(edges) - 1) & (overlap > 0))
    bins = bin_of[idx]
    counts = np.bincount(bins, minlength=len(edges) - 1).astype(np.float64)
    weight = 1.0 / (counts[bins] * overlap[idx])
    return idx, bins, weight


@lru_cache(maxsize=8)
def _spectral_binning(shape, grid, periodic, edges):
    """Matrix K with ``S2_binned = |rfftn(I)|^2 @ K``: the bin average folded into the
    inverse transform. Valid because each weighted bin mask is symmetric under r -> -r,
    so its Fourier transform is real; the rfft half-spectrum carries Hermitian weights."""
    idx, bins, weight = _bins(shape, grid, periodic, edges)
    n_bins = len(edges) - 1
    n_total = float(np.prod(grid))
    nk = grid[-1] // 2 + 1
    herm = np.full(nk, 2.0)
    herm[0] = 1.0
    if grid[-1] % 2 == 0:
        herm[-1] = 1.0
    K = np.empty((int(np.prod(grid[:-1])) * nk, n_bins))
    mask = np.zeros(int(n_total))
    for b in range(n_bins):
        mask[:] = 0.0
        sel = bins == b
        mask[idx[sel]] = weight[sel]
        ft = scipy.fft.rfftn(mask.reshape(grid)).real * herm / n_total
        K[:, b] = ft.ravel()
    K.setflags(write=False)
    return K


@lru_cache(maxsize=1)
def _blas_controller():
    """One scan of the loaded BLAS libraries (``threadpool_limits`` rescans them on every call,
    which cost as much as the whole S2 of a single 128² image)."""
    return ThreadpoolController()


def _plan(shape, grid, edges):
    """``(use_matrix, chunk)``: binning by the spectral matrix when it is small enough, and the
    number of images per chunk of about ``_CHUNK_BYTES`` of spectra."""
    n_spec = int(np.prod(grid[:-1])) * (grid[-1] // 2 + 1)
    use_matrix = edges is not None and n_spec * (len(edges) - 1) <= _MAX_BINNING_ENTRIES
    return use_matrix, max(1, _CHUNK_BYTES // (16 * n_spec))


def binned_s2(batch, nd, periodic, edges, r_needed, workers=None):
    """Bin averages of S2 of a validated batch over ``edges[b] <= |r| < edges[b + 1]``.

    ``batch``: ``(N,) + spatial`` of 0/1 values, a NumPy array or a torch tensor (then computed
    with ``torch.fft`` on its device, in the tensor's floating dtype). ``r_needed``: per axis, the
    largest displacement component any bin holds (sizes the zero padding). Returns
    ``(N, len(edges) - 1)``; empty bins hold 0.
    """
    shape = tuple(batch.shape[1:])
    edges = tuple(float(e) for e in edges)
    grid = _grid(shape, periodic, r_needed)
    use_matrix, chunk = _plan(shape, grid, edges)
    if is_tensor(batch):
        return _binned_s2_torch(batch, nd, shape, grid, periodic, edges, use_matrix, chunk)
    workers = fft_workers(workers)
    axes = tuple(range(1, nd + 1))
    n_bins = len(edges) - 1
    if use_matrix:
        K = _spectral_binning(shape, grid, periodic, edges)
    else:
        idx, bins, weight = _bins(shape, grid, periodic, edges)
    out = np.empty((len(batch), n_bins))
    for start in range(0, len(batch), chunk):
        part = np.asarray(batch[start:start + chunk], dtype=np.float64)
        spec = scipy.fft.rfftn(part, s=grid, axes=axes, workers=workers)
        power = spec.real ** 2 + spec.imag ** 2
        if use_matrix:
            # The product is small next to the FFTs; multithreaded BLAS here only oversubscribes
            # the cores when s2 is itself called from worker threads (measured 10x slower).
            with _blas_controller().limit(limits=1, user_api="blas"):
                out[start:start + chunk] = power.reshape(len(part), -1) @ K
            continue
        corr = scipy.fft.irfftn(power, s=grid, axes=axes, workers=workers)
        for i, c in enumerate(corr):
            out[start + i] = np.bincount(bins, weights=c.ravel()[idx] * weight, minlength=n_bins)
    return out


def _map_window(shape, grid):
    """Per axis, the grid indices of the displacements of a full map (FFT order of ``shape``)."""
    return [np.mod(_signed_offsets(n), g) for n, g in zip(shape, grid)]


def _s2_map(batch, nd, periodic, workers):
    shape = tuple(batch.shape[1:])
    grid = _grid(shape, periodic, (max(n // 2 for n in shape),) * nd)
    _, chunk = _plan(shape, grid, None)
    if is_tensor(batch):
        return _s2_map_torch(batch, nd, shape, grid, periodic, chunk)
    workers = fft_workers(workers)
    axes = tuple(range(1, nd + 1))
    window = np.ix_(*_map_window(shape, grid))
    overlap = pair_counts(shape, grid, periodic=periodic)[window]
    out = np.empty(batch.shape)
    for start in range(0, len(batch), chunk):
        part = batch[start:start + chunk].astype(np.float64)
        spec = scipy.fft.rfftn(part, s=grid, axes=axes, workers=workers)
        corr = scipy.fft.irfftn(spec.real ** 2 + spec.imag ** 2, s=grid, axes=axes, workers=workers)
        out[start:start + chunk] = corr[(slice(None),) + window] / overlap
    return out


# ---------------------------------------------------------------------------- torch path

@lru_cache(maxsize=16)
def _device_constant(kind, shape, grid, periodic, edges, device, dtype):
    """The cached binning constants of the NumPy path, as tensors on ``device``."""
    import torch

    if kind == "matrix":
        return torch.tensor(_spectral_binning(shape, grid, periodic, edges), dtype=dtype, device=device)
    if kind == "bins":
        idx, bins, weight = _bins(shape, grid, periodic, edges)
        return (torch.as_tensor(idx, device=device), torch.as_tensor(bins, device=device),
                torch.as_tensor(weight, dtype=dtype, device=device))
    window = _map_window(shape, grid)
    overlap = pair_counts(shape, grid, periodic=periodic)[np.ix_(*window)]
    return ([torch.as_tensor(w, device=device) for w in window],
            torch.as_tensor(overlap, dtype=dtype, device=device))


def _power(part, grid, dims):
    import torch

    spec = torch.fft.rfftn(part, s=grid, dim=dims)
    return torch.view_as_real(spec).square().sum(-1)


def _torch_chunk(chunk, device):
    # GPUs need big batches to fill; their memory is not shared with other jobs' FFT buffers.
    return chunk * 4 if device.type == "cuda" else chunk


def _binned_s2_torch(batch, nd, shape, grid, periodic, edges, use_matrix, chunk):
    import torch

    dims = tuple(range(1, nd + 1))
    key = (shape, grid, periodic, edges, batch.device, batch.dtype)
    parts = []
    for part in torch.split(batch, _torch_chunk(chunk, batch.device)):
        power = _power(part, grid, dims)
        if use_matrix:
            parts.append(power.reshape(len(part), -1) @ _device_constant("matrix", *key))
            continue
        idx, bins, weight = _device_constant("bins", *key)
        corr = torch.fft.irfftn(power, s=grid, dim=dims).reshape(len(part), -1)
        out = torch.zeros(len(part), len(edges) - 1, dtype=batch.dtype, device=batch.device)
        parts.append(out.index_add(1, bins, corr[:, idx] * weight))
    return torch.cat(parts)


def _s2_map_torch(batch, nd, shape, grid, periodic, chunk):
    import torch

    dims = tuple(range(1, nd + 1))
    window, overlap = _device_constant("map", shape, grid, periodic, None, batch.device, batch.dtype)
    parts = []
    for part in torch.split(batch, _torch_chunk(chunk, batch.device)):
        corr = torch.fft.irfftn(_power(part, grid, dims), s=grid, dim=dims)
        for axis, w in enumerate(window):
            corr = corr.index_select(axis + 1, w)
        parts.append(corr / overlap)
    return torch.cat(parts)


def s2(images: "ArrayLike | torch.Tensor", *, periodic: bool = True, radial: bool = True, r_max: int | None = None,
       ndim: int | None = None, workers: int | None = None) -> "np.ndarray | torch.Tensor":
    """Two-point correlation function of the pore phase (value 1).

    ``S2(r)`` is the probability that two points a vector ``r`` apart both lie in the pore
    phase, ``S2(r) = mean_x I(x) I(x + r)``. All images of the batch are transformed at once
    (real FFTs, float64).

    Parameters
    ----------
    images : array_like or torch.Tensor
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``; see ``ndim``. 1 = pore. A torch
        tensor (any device) is transformed with ``torch.fft`` where it lives and gives a tensor
        there: float32 tensors in float32, all others in float64.
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
        FFT threads (default: :func:`microvae.get_threads`; ``-1``: all cores).

    Returns
    -------
    ndarray of float64 (or torch.Tensor)
        ``(N, r_max + 1)`` if ``radial`` else ``(N,) + spatial shape``. Distances of the
        radial bins: :func:`radial_distances`.

    Notes
    -----
    ``S2(0)`` equals the porosity exactly and, for a statistically homogeneous medium,
    ``S2(r) -> porosity**2`` at large ``r``.
    """
    batch, nd = as_binary_tensor(images, ndim) if is_tensor(images) else as_binary_batch(images, ndim=ndim)
    shape = tuple(batch.shape[1:])
    limit = default_r_max(shape) if periodic else min(shape) - 1
    if r_max is None:
        r_max = default_r_max(shape)
    r_max = check_int(r_max, "r_max", minimum=0)
    if r_max > limit:
        raise ValueError(f"r_max must be in [0, {limit}] for images of shape {shape} "
                         f"({'periodic' if periodic else 'non-periodic'}), got {r_max}")
    if not radial:
        return _s2_map(batch, nd, periodic, workers)
    return binned_s2(batch, nd, periodic, _round_edges(r_max), (r_max,) * nd, workers)
