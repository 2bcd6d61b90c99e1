"""Three-point parameters ζ2, η2 of the pore phase by the exact FFT harmonic method.

Method (derived in docs/physics.md §6). With a harmonic kernel ``k(r) = Y(r̂) / |r|^d`` the pair sum
of the three-point function factorizes::

    Σ_{r1, r2} k(r1) k*(r2) S3(r1, r2) = mean_x I(x) |(k ⋆ I)(x)|²,

so each angular harmonic costs one convolution. We take the kernel in Fourier space, where it
is exact and scale free: in 2D ``k = e^{imφ}/r²`` has the transform ``(2π/m)(-i)^m e^{imφ_q}``
(``∫ J_m(x) dx/x = 1/m``), in 3D ``Y_lm(r̂)/r³`` has ``4π (-i)^l c_l Y_lm(q̂)`` with
``c_2 = 1/3``, ``c_4 = 2/15``. The convolution is then a pure angular multiplier ``R`` with
``|R| = 1`` applied to the fluctuation ``δ = I - φ2``. Writing ``S3`` in terms of ``δ`` splits
the integrals into the two-point term (whose value is known exactly: Parseval gives
``mean |R δ|² = mean δ² = φ1 φ2``) and a genuinely three-point remainder:

- d = 2:  ``ζ2 = φ2 + <δ |R_2 δ|²> / (φ1 φ2)``,  ``η2 = φ2 + <δ |R_4 δ|²> / (φ1 φ2)``;
- d = 3 (volume, ``Σ_m`` over the 2l+1 real spherical harmonics, ``Σ_m |R_lm|² = 1``):
  ``ζ2 = φ2 + Σ_m <δ |R_2m δ|²> / (φ1 φ2)``,
  ``η2 = 5 ζ2/21 + 16 φ2/21 + (16/21) Σ_m <δ |R_4m δ|²> / (φ1 φ2)``;
- d = 3 from a planar section (stereology: for an isotropic material, S2 and S3 on a plane
  are the 3D functions): the 3D weight ``|sin θ| P_l(cos θ)`` is expanded in ``cos mθ``,
  ``m = 2, 4, ...`` (coefficients ``a_m ~ 1/m²``, ``a_m = 0`` for ``m < l``), giving
  ``Σ_m π a_m <δ |R_m δ|²> / m²`` with the d = 3 prefactors. The truncation at ``m = M``
  errs by at most ``π C max(φ1, φ2) Σ_{m>M} |a_m| / m²`` (``C`` = 9/2 for ζ2, 150/7 for
  η2), which falls like ``M^-3``; :func:`slice_truncation_bound` evaluates it.

This is exactly the local-integrand rewrite of docs/physics.md §2 (``B - φ2 χ(t)``), with the
two-point part done exactly rather than on the lattice. The ``S2(r) S2(s)/φ2`` subtraction
of ``B`` is the orientation average of a θ-independent term and vanishes identically against
the angular weights; it is not added back as an anisotropic lattice sum (which would break the
sum rule ``ζ1 + ζ2 = 1`` that the formulas above satisfy exactly, image by image).

Discretization: the lattice estimate is low by about ``0.18 / R`` for particles of radius R
pixels; the default resolution extrapolation over the image's own sub-lattices removes it
(≤ 5e-3 at R = 8 px). Boundaries: ``periodic=True`` treats each image as one period of a
periodic medium; ``periodic=False`` fills the unseen surroundings with the mean medium (zero
δ) and averages over pixels away from the border. Measurements: docs/properties.md.
"""
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike

from .._tensor import as_binary_tensor, is_tensor
from .._validate import as_binary_batch, check_d
from ..correlations.two_point import default_r_max, kernel_fits, orbit_binning, round_edges
from ._engines import KernelOps, NumpyOps, TorchOps, padded_grid
from ._harmonic_slabs import SlabOps
from .multipliers import harmonic_kernel, planar_multipliers, slice_harmonic_coefficients, slice_truncation_bound

if TYPE_CHECKING:
    import torch

__all__ = ["three_point_parameters", "zeta2", "eta2", "slice_harmonic_coefficients", "slice_truncation_bound",
           "harmonic_kernel", "DEFAULT_SLICE_HARMONICS"]

# Highest harmonic of the d = 3 slice expansion, and of the coarse-lattice correction of the
# resolution extrapolation. Measured on 300-image sets (Berea and grain-like 128² slices,
# overlapping disks, Gaussian fields; docs/properties.md), the largest truncation errors
# against the untruncated series (M = 96) are 1.2e-4 (ζ2) and 6.3e-4 (η2) at M = 12, and
# restricting the extrapolation's correction to m <= 8 moves η2 by at most 6e-4.
DEFAULT_SLICE_HARMONICS = 12
_COARSE_SLICE_HARMONICS = 8

_CHUNK_BYTES = 48 * 2 ** 20
# Volumes whose in-memory estimate needs more take the slab path (microvae.properties._harmonic_slabs).
_IN_MEMORY_BYTES = 2 ** 30


# ---------------------------------------------------------------------------- evaluation

def _batch_plan(shape, periodic, margin):
    grid = padded_grid(shape, periodic)
    window = tuple(slice(margin, n - margin) for n in shape)
    # δ (8 bytes per pixel), its spectrum, the product and the field (16 each).
    per_image = 56 * float(np.prod(grid))
    return grid, window, max(1, int(_CHUNK_BYTES // per_image))


@lru_cache(maxsize=8)
def _s2_plan(shape, grid, periodic):
    """Constants for S2 (bins ``round(|r|) = 0..side // 2``) from the kernel's forward transform
    on the estimator's grid: the half spectrum of the image's support, then the orbit binning
    of :func:`microvae.correlations.two_point.binned_s2`. None where that matrix is too large."""
    r_max = default_r_max(shape)
    edges = round_edges(r_max)
    if not kernel_fits(2, grid, edges, None):
        return None
    box = scipy.fft.rfft2(np.ones(shape), s=grid)
    orbit, fold, K = orbit_binning(shape, grid, periodic, edges, None, "float64")
    return np.ascontiguousarray(box.real), np.ascontiguousarray(box.imag), orbit, fold, K


def _fits_in_memory(shape, periodic):
    """Whether a volume's estimate fits ``_IN_MEMORY_BYTES`` on the in-memory path: 56 bytes per
    grid point of work arrays and 112 of cached multipliers (7 complex ones)."""
    return 168 * int(np.prod(padded_grid(tuple(shape), periodic))) <= _IN_MEMORY_BYTES


def _lattice_parameters(batch, nd, d, periodic, margin, truncations, ops, with_s2=False):
    """ζ2, η2 of a validated batch on its own pixel lattice (no resolution extrapolation).

    For d = 3 on 2D images, one ``(ζ2, η2)`` pair per harmonic truncation in
    ``truncations`` (the moments are computed once, up to the largest); otherwise a single
    pair, whatever ``truncations`` holds. ``ops``: :class:`KernelOps`, :class:`NumpyOps` or
    :class:`TorchOps`. Returns ``(pairs, s2)``: with ``with_s2`` and the kernel, the radial S2
    of :func:`microvae.correlations.s2` from the same forward transform, else None.
    """
    shape = tuple(batch.shape[1:])
    grid, window, per_chunk = _batch_plan(shape, periodic, margin)
    per_chunk = ops.chunk_size(per_chunk, len(batch))
    s2_plan = _s2_plan(shape, grid, periodic) if with_s2 and isinstance(ops, KernelOps) else None
    slices_3d = nd == 2 and d == 3
    if nd == 2 and d == 2:
        multipliers = planar_multipliers(grid, (2, 4))
    elif slices_3d:
        m_max = max(truncations)
        ms = np.arange(2, m_max + 1, 2)
        multipliers = planar_multipliers(grid, tuple(int(m) for m in ms))
        # π a_m / m², the weight of harmonic m in the d = 3 integrals I[P2], I[P4], per truncation.
        w2 = np.pi * slice_harmonic_coefficients(2, m_max)[ms] / ms ** 2
        w4 = np.pi * slice_harmonic_coefficients(4, m_max)[ms] / ms ** 2
        weights = [(ops.const(np.where(ms <= t, w2, 0.0)), ops.const(np.where(ms <= t, w4, 0.0)))
                   for t in truncations]
    else:
        multipliers = ops.spherical(grid, (2, 4))

    results: list[tuple[list, list]] = [([], []) for _ in (truncations if slices_3d else (0,))]
    curves = []
    for start in range(0, len(batch), per_chunk):
        part = batch[start:start + per_chunk]
        phi, moments, part_s2 = ops.phi_and_moments(part, periodic, grid, multipliers, window, s2_plan)
        curves.append(part_s2)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = 1 / (phi * (1 - phi))
            if nd == 2 and d == 2:
                pairs = [(phi + (moments[:, 0] + moments[:, 1]) * scale,
                          phi + (moments[:, 2] + moments[:, 3]) * scale)]
            elif slices_3d:
                per_m = moments[:, 0::2] + moments[:, 1::2]
                pairs = []
                for v2, v4 in weights:
                    z = phi + 9 / 2 * (per_m @ v2) * scale
                    pairs.append((z, 5 * z / 21 + 16 * phi / 21 + 150 / 7 * (per_m @ v4) * scale))
            else:
                z = phi + moments[:, :5].sum(axis=1) * scale
                pairs = [(z, 5 * z / 21 + 16 * phi / 21 + 16 / 21 * moments[:, 5:].sum(axis=1) * scale)]
        single = (phi <= 0) | (phi >= 1)
        for (zeta, eta), (z, e) in zip(results, pairs):
            zeta.append(ops.where(single, np.nan, z))
            eta.append(ops.where(single, np.nan, e))
    pairs = [(ops.concat(zeta), ops.concat(eta)) for zeta, eta in results]
    return pairs, (np.concatenate(curves) if s2_plan is not None else None)


def three_point_parameters(images: "ArrayLike | torch.Tensor", d: int = 3, *, periodic: bool = True,
                           margin: int | None = None, extrapolate: bool = True, harmonics: int | None = None,
                           ndim: int | None = None, workers: int | None = None) -> tuple[Any, Any]:
    """Three-point parameters ζ2 and η2 of the pore phase (value 1), per image.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` (2D images) or ``(N, D, H, W)`` (volumes); 1 = pore.
        A torch tensor (any device) is transformed with ``torch.fft`` where it lives and gives
        tensors there: float32 tensors in float32, all others in float64.
    d : {3, 2}
        Dimension of the medium the parameters describe. ``3`` (default): for 2D images, the
        3D parameters of a statistically isotropic material from its planar sections
        (stereology, as in the paper); for volumes, the 3D parameters directly. ``2``: a
        genuinely two-dimensional medium (2D images only).
    periodic : bool
        ``True`` (default): each image is one period of a periodic medium (exact for periodic
        synthetic media). ``False``, for crops of larger samples and other non-periodic
        images: the unobserved surroundings are filled with the mean medium (zero
        fluctuation, so no false interfaces appear at the borders) and the average runs over
        the pixels at least ``margin`` from the border, which see most of their
        surroundings. On 128² crops of periodic media this removes a bias of about -0.012 in
        ζ2 that either boundary treatment has when averaging over the whole crop
        (docs/properties.md).
    margin : int, optional
        With ``periodic=False``: width in pixels of the border excluded from the average
        (default ``min(side) // 16``; 0 averages over the whole image). Ignored when periodic.
    extrapolate : bool
        Remove the leading pixel-discretization error (default). Pixelized interfaces bias
        the lattice estimate by an amount proportional to the pixel size (about
        ``-0.2 / R`` for disks of radius ``R`` pixels). The same image sampled at twice the
        pixel size is available exactly: its ``2^dim`` interleaved sub-lattices. Richardson
        extrapolation ``2 X(h) - mean X(2h)`` cancels the linear term (docs/properties.md:
        error ``~3e-3`` at 8 pixels per particle radius, against ``2.5e-2`` without). For
        d = 3 slices the correction is taken over the harmonics up to 8, which carry it
        (the higher ones change the result by < 6e-4). Costs about 1.7 times the plain
        estimate; needs sides of at least 8 pixels.
    harmonics : int, optional
        d = 3 on 2D images only: highest harmonic ``M`` of the angular expansion (even, >= 4;
        default :data:`DEFAULT_SLICE_HARMONICS`). Cost grows linearly, the truncation error
        falls like ``M^-3`` (:func:`slice_truncation_bound`).
    ndim : {None, 2, 3}
        Spatial dimension; pass 3 for a single volume ``(D, H, W)``.
    workers : int
        FFT threads (default: :func:`microvae.get_threads`; ``-1``: all cores).

    Returns
    -------
    (ndarray, ndarray)
        ζ2 and η2, float64 (tensors for tensor input), shape ``(N,)``. Images holding a single phase have no defined
        parameters and give NaN.

    Notes
    -----
    Computed from the pore phase; the rock phase's parameters follow from the sum rules
    ``ζ1 = 1 - ζ2``, ``η1 = 1 - η2``, which this method satisfies exactly. Cost per image:
    one forward FFT plus one complex inverse FFT per harmonic (d = 2: 2; d = 3 slices:
    ``M/2``; volumes: 7, two real spherical harmonics per transform); ``extrapolate`` adds
    the same on the half-resolution sub-lattices (d = 3 slices: harmonics up to 8), and
    ``periodic=False`` quadruples the transform sizes (8× for volumes). 2D NumPy batches run in
    the compiled kernel (:mod:`microvae._spectral`, several images per SIMD vector, inverse
    transforms pruned to the averaging window), tensors with ``torch.fft``. Volumes: 168 bytes
    per padded grid point (work arrays and the cached multipliers) up to 1 GiB, beyond that a
    slab path whose peak is about 16 bytes per point of the half spectrum plus the window's
    planes (peak 3.4 GiB for a 400³ crop). Measurements: docs/properties.md, section 7.
    """
    check_d(d)
    if is_tensor(images):
        batch, nd = as_binary_tensor(images, ndim)
    else:
        batch, nd = as_binary_batch(images, ndim=ndim)
    zeta, eta, _ = parameters_of_batch(batch, nd, d, periodic=periodic, margin=margin, extrapolate=extrapolate,
                                       harmonics=harmonics, workers=workers)
    return zeta, eta


def parameters_of_batch(batch, nd, d, *, periodic, margin, extrapolate, harmonics, workers, with_s2=False,
                        ops=None):
    """:func:`three_point_parameters` of a validated batch (uint8 array or float tensor).

    Returns ``(zeta2, eta2, s2)``: with ``with_s2``, the radial S2 of each image (as
    :func:`microvae.correlations.s2` with ``periodic``) where the compiled kernel computed it from
    the same forward transform, else None. ``ops`` overrides the engine (the benchmark runs
    :class:`NumpyOps`, the SciPy path of before the kernel, as its reference).
    """
    if ops is None:
        ops = (TorchOps(batch) if is_tensor(batch) else KernelOps(workers) if nd == 2
               else NumpyOps(workers) if _fits_in_memory(batch.shape[1:], periodic) else SlabOps(workers))
    if nd == 3 and d == 2:
        raise ValueError("d=2 describes a two-dimensional medium; volumes take d=3")
    if harmonics is not None and not (nd == 2 and d == 3):
        raise ValueError("harmonics applies to d=3 on 2D images (the slice expansion) only")
    m_max = DEFAULT_SLICE_HARMONICS if harmonics is None else harmonics
    if not isinstance(m_max, (int, np.integer)) or m_max < 4 or m_max % 2:
        raise ValueError(f"harmonics must be an even integer >= 4, got {harmonics!r}")
    m_coarse = min(int(m_max), _COARSE_SLICE_HARMONICS)
    side = min(batch.shape[1:])
    if periodic:
        margin = 0
    else:
        margin = side // 16 if margin is None else margin
        if not isinstance(margin, (int, np.integer)) or not 0 <= 2 * margin < side:
            raise ValueError(f"margin must be an integer in [0, {(side - 1) // 2}] for images of side {side}, "
                             f"got {margin!r}")
    if not extrapolate:
        pairs, curves = _lattice_parameters(batch, nd, d, periodic, margin, (m_max,), ops, with_s2)
        return pairs[0] + (curves,)
    if side < 8:
        raise ValueError(f"extrapolate=True needs image sides of at least 8 pixels, got {batch.shape[1:]}; "
                         "pass extrapolate=False for smaller images")
    fine, curves = _lattice_parameters(batch, nd, d, periodic, margin, (m_max, m_coarse), ops, with_s2)
    (zeta, eta), (zeta_low, eta_low) = fine if len(fine) == 2 else fine * 2
    coarse_z = coarse_e = 0.0
    offsets = list(np.ndindex(*(2,) * nd))
    subs = [ops.contiguous(batch[(slice(None),) + tuple(slice(o, None, 2) for o in off)]) for off in offsets]
    # One batch per sub-lattice shape (a single one for even sides): fewer, fuller kernel calls.
    for shape in dict.fromkeys(tuple(sub.shape[1:]) for sub in subs):
        group = [sub for sub in subs if tuple(sub.shape[1:]) == shape]
        # About the same border, in coarse pixels.
        z, e = _lattice_parameters(ops.concat(group), nd, d, periodic, (margin + 1) // 2, (m_coarse,), ops)[0][0]
        coarse_z = coarse_z + z.reshape(len(group), len(batch)).sum(0)
        coarse_e = coarse_e + e.reshape(len(group), len(batch)).sum(0)
    # Richardson on the low harmonics, which carry the discretization error: X(h) + [X_low(h) - X_low(2h)].
    return zeta + zeta_low - coarse_z / len(offsets), eta + eta_low - coarse_e / len(offsets), curves


def zeta2(images: "ArrayLike | torch.Tensor", d: int = 3, **kwargs: Any) -> Any:
    """Three-point microstructural parameter ζ2 of the pore phase; see :func:`three_point_parameters`."""
    return three_point_parameters(images, d, **kwargs)[0]


def eta2(images: "ArrayLike | torch.Tensor", d: int = 3, **kwargs: Any) -> Any:
    """Three-point microstructural parameter η2 of the pore phase; see :func:`three_point_parameters`."""
    return three_point_parameters(images, d, **kwargs)[1]
