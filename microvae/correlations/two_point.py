"""Two-point correlation function S2 of the pore phase, batched, by real FFTs."""
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, overload

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, DTypeLike
from threadpoolctl import ThreadpoolController

from .._tensor import as_binary_tensor, is_tensor
from .._validate import as_binary_batch, check_float_dtype, check_int, check_positive
from ..threads import fft_workers, kernel_threads
from ._slabs import volume_s2

if TYPE_CHECKING:
    import torch

__all__ = ["s2", "radial_distances", "fftshift_map", "default_r_max", "pair_counts"]

# Above this many entries a spectral binning matrix (spectrum size or orbits x bins) costs more
# memory than it saves time; larger images take the inverse-FFT + bincount route instead.
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


def round_edges(r_max):
    """Edges of the 1-pixel bins of :func:`s2`: bin ``b`` holds ``round(|r|) = b``."""
    return tuple(np.arange(int(r_max) + 2) - 0.5)


@lru_cache(maxsize=16)
def _bins(shape, grid, periodic, edges, directional=None):
    """The linear functionals of S2 that :func:`binned_s2` returns, as the flat grid indices of
    their displacements, the output column of each, and the per-pair weight ``1 / (count *
    overlap)`` that turns raw correlation sums into averages.

    Columns ``0..len(edges) - 2``: the radial bins ``edges[b] <= |r| < edges[b + 1]``. With
    ``directional = R`` (not None), then per axis ``i`` the displacements ``r e_i`` for ``r = 0..R``
    (``+r`` and ``-r`` averaged, which keeps every column's mask symmetric). Non-periodic: only
    displacements that some pair of pixels of the image has (``|r_i| < n_i``).
    """
    radius = _radius_map(grid).ravel()
    bin_of = np.searchsorted(np.asarray(edges), radius, side="right") - 1
    overlap = pair_counts(shape, grid, periodic=periodic).ravel()
    idx = np.flatnonzero((bin_of >= 0) & (bin_of < len(edges) - 1) & (overlap > 0))
    bins = bin_of[idx]
    if directional is not None:
        n_radial = len(edges) - 1
        extra_idx, extra_bins = [], []
        for axis, g in enumerate(grid):
            for r in range(directional + 1):
                for index in sorted({r % g, -r % g}):
                    vector = [0] * len(grid)
                    vector[axis] = index
                    extra_idx.append(np.ravel_multi_index(vector, grid))
                    extra_bins.append(n_radial + axis * (directional + 1) + r)
        idx = np.concatenate([idx, extra_idx])
        bins = np.concatenate([bins, extra_bins])
    counts = np.bincount(bins).astype(np.float64)
    weight = 1.0 / (counts[bins] * overlap[idx])
    return idx, bins, weight


def _n_columns(nd, edges, directional):
    return len(edges) - 1 + (nd * (directional + 1) if directional is not None else 0)


def _hermitian_weights(n):
    """Weights of the rfft half spectrum along an axis of length ``n``: 2 for the entries that
    stand for a ± pair, 1 for zero and Nyquist."""
    herm = np.full(n // 2 + 1, 2.0)
    herm[0] = 1.0
    if n % 2 == 0:
        herm[-1] = 1.0
    return herm


def _column_spectra(shape, grid, periodic, edges, directional):
    """Yield ``(column, rfftn of its weighted displacement mask / grid size)``: a column's
    value is ``Σ_q |I(q)|² K(q)`` over the full spectrum. Each mask is symmetric under
    ``r -> -r``, so its transform is real."""
    idx, bins, weight = _bins(shape, grid, periodic, edges, directional)
    n_total = float(np.prod(grid))
    mask = np.zeros(int(n_total))
    for b in range(_n_columns(len(grid), edges, directional)):
        mask[:] = 0.0
        sel = bins == b
        mask[idx[sel]] = weight[sel]
        yield b, scipy.fft.rfftn(mask.reshape(grid)).real / n_total


@lru_cache(maxsize=8)
def _spectral_binning(shape, grid, periodic, edges, directional=None):
    """Matrix K with ``S2_binned = |rfftn(I)|^2 @ K`` over the half spectrum (Hermitian weights
    included): the bin averages folded into the inverse transform (torch path, batches of small
    volumes)."""
    herm = _hermitian_weights(grid[-1])
    K = np.empty((int(np.prod(grid[:-1])) * len(herm), _n_columns(len(grid), edges, directional)))
    for b, ft in _column_spectra(shape, grid, periodic, edges, directional):
        K[:, b] = (ft * herm).ravel()
    K.setflags(write=False)
    return K


def _spectrum_orbits(shape, grid, directional):
    """Orbit of each element of a 2D half spectrum under the symmetries every column's mask
    shares: sign flips of each axis and, for square images on square grids without directional
    columns, the exchange of the axes. Returns ``(orbit per element, one element per orbit)``."""
    ly, lx = grid
    a = np.broadcast_to(np.abs(_signed_offsets(ly))[:, None], (ly, lx // 2 + 1))
    b = np.broadcast_to(np.arange(lx // 2 + 1)[None, :], (ly, lx // 2 + 1))
    if shape[0] == shape[1] and ly == lx and directional is None:
        a, b = np.minimum(a, b), np.maximum(a, b)
    _, first, orbit = np.unique((a * (lx + 1) + b).ravel(), return_index=True, return_inverse=True)
    return orbit.astype(np.int32), first


@lru_cache(maxsize=16)
def orbit_binning(shape, grid, periodic, edges, directional, dtype):
    """Constants of the compiled 2D kernel (:func:`microvae._spectral.s2_binned`): the orbit of
    each half-spectrum element, the Hermitian weight per column of the spectrum and the binning
    matrix over the orbits, ``(n_orbits, n_columns)``. The column spectra are constant on
    orbits, so folding the power onto them first makes the product 4x smaller (square images)."""
    orbit, first = _spectrum_orbits(shape, grid, directional)
    K = np.empty((len(first), _n_columns(2, edges, directional)))
    for b, ft in _column_spectra(shape, grid, periodic, edges, directional):
        K[:, b] = ft.ravel()[first]
    fold = _hermitian_weights(grid[-1]).astype(dtype)
    return orbit, fold, np.ascontiguousarray(K, dtype=dtype)


@lru_cache(maxsize=1)
def _blas_controller():
    """One scan of the loaded BLAS libraries (``threadpool_limits`` rescans them on every call,
    which cost as much as the whole S2 of a single 128² image)."""
    return ThreadpoolController()


def kernel_fits(nd, grid, edges, directional):
    """The compiled kernel takes 2D batches whose orbit binning matrix stays below
    ``_MAX_BINNING_ENTRIES`` entries; larger images take the inverse transform."""
    if nd != 2:
        return False
    n_orbits = (grid[0] // 2 + 1) * (grid[1] // 2 + 1)
    return n_orbits * _n_columns(2, edges, directional) <= _MAX_BINNING_ENTRIES


def _plan(shape, grid, edges, directional=None):
    """``(use_matrix, chunk)``: binning by the half-spectrum matrix when it is small enough, and
    the number of images per chunk of about ``_CHUNK_BYTES`` of spectra (torch path, batches of
    small volumes)."""
    n_spec = int(np.prod(grid[:-1])) * (grid[-1] // 2 + 1)
    use_matrix = edges is not None and n_spec * _n_columns(len(grid), edges, directional) <= _MAX_BINNING_ENTRIES
    return use_matrix, max(1, _CHUNK_BYTES // (16 * n_spec))


def binned_s2(batch, nd, periodic, edges, r_needed, workers=None, *, directional=None, dtype=np.float64):
    """Bin averages of S2 of a validated batch over ``edges[b] <= |r| < edges[b + 1]``.

    ``batch``: ``(N,) + spatial`` of 0/1 values, a NumPy array (uint8) or a torch tensor (then
    computed with ``torch.fft`` on its device, in the tensor's floating dtype). ``r_needed``: per
    axis, the largest displacement component any column holds (sizes the zero padding).
    ``directional = R`` (not None) appends S2 along each axis for ``r = 0..R`` (:func:`_bins`).
    ``dtype``: precision of the NumPy path. Returns ``(N, columns)``; empty bins hold 0.

    NumPy input: 2D batches go through the compiled kernel (:mod:`microvae._spectral`: V images
    per SIMD vector, one group's transforms in cache); volumes whose half-spectrum binning matrix
    is too large, non-periodic or above ``_CHUNK_BYTES`` of spectrum, one at a time through
    :func:`~microvae.correlations._slabs.volume_s2` in bounded memory.
    """
    shape = tuple(batch.shape[1:])
    edges = tuple(float(e) for e in edges)
    grid = _grid(shape, periodic, r_needed)
    if is_tensor(batch):
        use_matrix, chunk = _plan(shape, grid, edges, directional)
        return _binned_s2_torch(batch, nd, shape, grid, periodic, edges, directional, use_matrix, chunk)
    workers = fft_workers(workers)
    dtype = np.dtype(dtype)
    if kernel_fits(nd, grid, edges, directional):
        from .. import _spectral

        orbit, fold, K = orbit_binning(shape, grid, periodic, edges, directional, dtype.name)
        return _spectral.s2_binned(batch, grid, orbit, fold, K, kernel_threads(workers))
    use_matrix, chunk = _plan(shape, grid, edges, directional)
    spectrum_bytes = 16 * int(np.prod(grid[:-1])) * (grid[-1] // 2 + 1)
    # Slabs invert only the planes |r_z| <= r_max: that pays for their per-block work on padded
    # grids (1.5x faster at 128³) but not on periodic ones (0.7x), which take them for memory only.
    if nd == 3 and not use_matrix and (not periodic or spectrum_bytes > _CHUNK_BYTES):
        counts = [pair_counts((n,), (g,), periodic=periodic) for n, g in zip(shape, grid)]
        rows = []
        for volume in batch:
            result = volume_s2(volume, periodic, np.asarray(edges), r_needed, grid, counts,
                               directional=directional is not None, dtype=dtype, workers=workers)
            rows.append(np.concatenate([result[0]] + result[1]) if directional is not None else result)
        return np.array(rows, dtype=dtype)
    # Batches of small volumes: one batched transform and the half-spectrum binning matrix;
    # periodic volumes of moderate size and 2D images too large for the kernel's matrix: the
    # inverse transform and a bincount.
    axes = tuple(range(1, nd + 1))
    n_cols = _n_columns(nd, edges, directional)
    if use_matrix:
        K = _spectral_binning(shape, grid, periodic, edges, directional).astype(dtype, copy=False)
    else:
        idx, bins, weight = _bins(shape, grid, periodic, edges, directional)
    out = np.empty((len(batch), n_cols), dtype=dtype)
    for start in range(0, len(batch), chunk):
        spec = scipy.fft.rfftn(batch[start:start + chunk].astype(dtype), s=grid, axes=axes, workers=workers)
        power = spec.real ** 2 + spec.imag ** 2
        if use_matrix:
            # The product is small next to the FFTs; multithreaded BLAS here only oversubscribes
            # the cores when s2 is itself called from worker threads (measured 10x slower).
            with _blas_controller().limit(limits=1, user_api="blas"):
                out[start:start + chunk] = power.reshape(len(power), -1) @ K
            continue
        corr = scipy.fft.irfftn(power, s=grid, axes=axes, workers=workers)
        for i, c in enumerate(corr):
            out[start + i] = np.bincount(bins, weights=c.ravel()[idx] * weight, minlength=n_cols)
    return out


def _map_window(shape, grid):
    """Per axis, the grid indices of the displacements of a full map (FFT order of ``shape``)."""
    return [np.mod(_signed_offsets(n), g) for n, g in zip(shape, grid)]


def _s2_map(batch, nd, periodic, workers, dtype=np.float64):
    shape = tuple(batch.shape[1:])
    grid = _grid(shape, periodic, (max(n // 2 for n in shape),) * nd)
    _, chunk = _plan(shape, grid, None)
    if is_tensor(batch):
        return _s2_map_torch(batch, nd, shape, grid, periodic, chunk)
    workers = fft_workers(workers)
    axes = tuple(range(1, nd + 1))
    window = np.ix_(*_map_window(shape, grid))
    overlap = pair_counts(shape, grid, periodic=periodic)[window]
    out = np.empty(batch.shape, dtype=dtype)
    for start in range(0, len(batch), chunk):
        part = batch[start:start + chunk].astype(dtype)
        spec = scipy.fft.rfftn(part, s=grid, axes=axes, workers=workers)
        corr = scipy.fft.irfftn(spec.real ** 2 + spec.imag ** 2, s=grid, axes=axes, workers=workers)
        out[start:start + chunk] = corr[(slice(None),) + window] / overlap
    return out


# ---------------------------------------------------------------------------- torch path

@lru_cache(maxsize=16)
def _device_constant(kind, shape, grid, periodic, edges, directional, device, dtype):
    """The cached binning constants of the NumPy path, as tensors on ``device``."""
    import torch

    if kind == "matrix":
        return torch.tensor(_spectral_binning(shape, grid, periodic, edges, directional), dtype=dtype, device=device)
    if kind == "bins":
        idx, bins, weight = _bins(shape, grid, periodic, edges, directional)
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


def _binned_s2_torch(batch, nd, shape, grid, periodic, edges, directional, use_matrix, chunk):
    import torch

    dims = tuple(range(1, nd + 1))
    key = (shape, grid, periodic, edges, directional, batch.device, batch.dtype)
    parts = []
    for part in torch.split(batch, _torch_chunk(chunk, batch.device)):
        power = _power(part, grid, dims)
        if use_matrix:
            parts.append(power.reshape(len(part), -1) @ _device_constant("matrix", *key))
            continue
        idx, bins, weight = _device_constant("bins", *key)
        corr = torch.fft.irfftn(power, s=grid, dim=dims).reshape(len(part), -1)
        out = torch.zeros(len(part), _n_columns(nd, edges, directional), dtype=batch.dtype, device=batch.device)
        parts.append(out.index_add(1, bins, corr[:, idx] * weight))
    return torch.cat(parts)


def _s2_map_torch(batch, nd, shape, grid, periodic, chunk):
    import torch

    dims = tuple(range(1, nd + 1))
    window, overlap = _device_constant("map", shape, grid, periodic, None, None, batch.device, batch.dtype)
    parts = []
    for part in torch.split(batch, _torch_chunk(chunk, batch.device)):
        corr = torch.fft.irfftn(_power(part, grid, dims), s=grid, dim=dims)
        for axis, w in enumerate(window):
            corr = corr.index_select(axis + 1, w)
        parts.append(corr / overlap)
    return torch.cat(parts)


# A tensor in gives a tensor out, anything else an ndarray.
@overload
def s2(images: "torch.Tensor", *, periodic: bool = True, radial: bool = True, r_max: int | None = None,
       directional: bool = False, dtype: DTypeLike | None = None, ndim: int | None = None,
       workers: int | None = None) -> "torch.Tensor": ...
@overload
def s2(images: ArrayLike, *, periodic: bool = True, radial: bool = True, r_max: int | None = None,
       directional: bool = False, dtype: DTypeLike | None = None, ndim: int | None = None,
       workers: int | None = None) -> np.ndarray: ...
def s2(images: "ArrayLike | torch.Tensor", *, periodic: bool = True, radial: bool = True, r_max: int | None = None,
       directional: bool = False, dtype: DTypeLike | None = None, ndim: int | None = None,
       workers: int | None = None) -> "np.ndarray | torch.Tensor":
    """Two-point correlation function of the pore phase (value 1).

    ``S2(r)`` is the probability that two points a vector ``r`` apart both lie in the pore
    phase, ``S2(r) = mean_x I(x) I(x + r)``, computed from one real FFT of each image: the
    power spectrum's bin averages are taken in the spectrum (no inverse transform) for 2D
    batches, which the compiled kernel (:mod:`microvae._spectral`) transforms several images per
    SIMD vector; volumes are transformed slab by slab in bounded memory (method, float32 error
    and memory model: docs/properties.md, section 7).

    Parameters
    ----------
    images : array_like or torch.Tensor
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``; see ``ndim``. 1 = pore. A torch
        tensor (any device) is transformed with ``torch.fft`` where it lives and gives a tensor
        there: float32 tensors in float32, all others in float64 (unless ``dtype`` says).
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
        smallest side; up to ``side - 1`` without periodicity. Non-periodic transforms are
        padded only to ``side + r_max`` (next fast length), so a smaller ``r_max`` costs less.
    directional : bool
        Instead of the radial average, S2 along each axis, ``S2(r e_i)`` for ``r = 0..r_max``,
        from the same transforms; returns ``(N, ndim, r_max + 1)`` (axis order of the input).
    dtype : {None, "float64", "float32"}
        Precision of the transforms and of the result. Default float64 (float32 tensors:
        float32). float32 is about 1.5x faster on the CPU kernel and errs by up to ~2e-6 against
        float64 at 128² (docs/properties.md, section 7).
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.
    workers : int
        Threads (default: :func:`microvae.get_threads`; ``-1``: all cores).

    Returns
    -------
    ndarray (or torch.Tensor), float64 unless ``dtype``
        ``(N, r_max + 1)`` if ``radial``, ``(N, ndim, r_max + 1)`` if ``directional``, else
        ``(N,) + spatial shape``. Distances of the radial bins: :func:`radial_distances`.

    Notes
    -----
    ``S2(0)`` equals the porosity exactly and, for a statistically homogeneous medium,
    ``S2(r) -> porosity**2`` at large ``r``.
    """
    dtype = check_float_dtype(dtype)
    if is_tensor(images):
        batch, nd = as_binary_tensor(images, ndim)
        if dtype is not None:
            batch = batch.to(getattr(sys.modules["torch"], dtype.name))
    else:
        batch, nd = as_binary_batch(images, ndim=ndim)
    dtype = np.dtype(np.float64) if dtype is None else dtype
    shape = tuple(batch.shape[1:])
    limit = default_r_max(shape) if periodic else min(shape) - 1
    if r_max is None:
        r_max = default_r_max(shape)
    r_max = check_int(r_max, "r_max", minimum=0)
    if r_max > limit:
        raise ValueError(f"r_max must be in [0, {limit}] for images of shape {shape} "
                         f"({'periodic' if periodic else 'non-periodic'}), got {r_max}")
    if directional:
        out = binned_s2(batch, nd, periodic, round_edges(r_max), (r_max,) * nd, workers, directional=r_max,
                        dtype=dtype)
        return out[:, r_max + 1:].reshape(len(batch), nd, r_max + 1)
    if not radial:
        return _s2_map(batch, nd, periodic, workers, dtype)
    return binned_s2(batch, nd, periodic, round_edges(r_max), (r_max,) * nd, workers, dtype=dtype)
