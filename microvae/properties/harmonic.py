"""Three-point parameters ζ2, η2 of the pore phase by the exact FFT harmonic method.

Method (DESIGN.md §5, PHYSICS.md). With a harmonic kernel ``k(r) = Y(r̂) / |r|^d`` the pair sum
of the three-point function factorizes,

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

This is exactly the local-integrand rewrite of PHYSICS.md (``B - φ2 χ(t)``), with the
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
import itertools
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import scipy.fft
from numpy.typing import ArrayLike

from .._tensor import as_binary_tensor, is_tensor
from .._validate import as_binary_batch, check_d
from ..threads import fft_workers

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


# ---------------------------------------------------------------------------- coefficients

def slice_harmonic_coefficients(l: int, m_max: int) -> np.ndarray:
    """Cosine coefficients ``a_m`` of ``|sin θ| P_l(cos θ) = Σ_m a_m cos(mθ)``, ``m = 0..m_max``.

    ``sin θ P_l(cos θ)`` is a finite sine series ``Σ_k b_k sin kθ`` (k <= l + 1), so
    ``a_m = (2/π) Σ_k b_k ∫_0^π sin kθ cos mθ dθ`` in closed form; odd m vanish (the weight has
    period π) and so do ``m < l`` (``a_m ∝ ∫ P_l T_m du``).
    """
    if l not in (2, 4):
        raise ValueError(f"l must be 2 or 4, got {l!r}")
    x, w = np.polynomial.legendre.leggauss(32)
    theta = np.pi * (x + 1) / 2
    f = np.sin(theta) * np.polynomial.legendre.legval(np.cos(theta), [0] * l + [1])
    k = np.arange(1, l + 2)
    b = 2 / np.pi * (np.sin(np.outer(k, theta)) * f) @ (w * np.pi / 2)
    m = np.arange(int(m_max) + 1)

    def sin_cos(j):
        # ∫_0^π sin(u) dθ-type term: (1 - cos(jπ)) / j, zero for j = 0.
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(j == 0, 0.0, (1 - np.cos(np.pi * j)) / np.where(j == 0, 1, j))
    integral = 0.5 * (sin_cos(k[:, None] + m) + sin_cos(k[:, None] - m))
    a = 2 / np.pi * b @ integral
    a[1::2] = 0.0
    a[np.abs(a) < 1e-14] = 0.0
    return a


def slice_truncation_bound(m_max: int, porosity: ArrayLike | None = None) -> tuple[Any, Any]:
    """Worst-case error of the d = 3 slice expansion truncated after harmonic ``m_max``.

    Uses ``|<δ |R δ|²>| <= max|δ| <|R δ|²> = max(φ1, φ2) φ1 φ2``, valid for every image. With
    ``porosity`` the bound for that porosity; without, the worst case ``max(φ1, φ2) = 1``.

    Returns
    -------
    (float or ndarray, float or ndarray)
        Bounds on the errors of ζ2 and η2.
    """
    m_max = int(m_max)
    tail_len = max(4 * m_max, 4096)
    m = np.arange(m_max + 1, tail_len + 1)
    tails = []
    for l in (2, 4):
        a = slice_harmonic_coefficients(l, tail_len)[m_max + 1:]
        # The coefficients decay as m^-2: close the sum beyond tail_len with the integral of
        # the last term's power law.
        last = abs(a[-2]) * (tail_len - 1) ** 2 if tail_len % 2 else abs(a[-1]) * tail_len ** 2
        tails.append(np.sum(np.abs(a) / m ** 2) + last / (2 * 3 * tail_len ** 3))
    big = 1.0 if porosity is None else np.maximum(porosity, 1 - np.asarray(porosity, dtype=np.float64))
    zeta_err = np.pi * 9 / 2 * big * tails[0]
    eta_err = np.pi * 150 / 7 * big * tails[1] + 5 / 21 * zeta_err
    return zeta_err, eta_err


# ---------------------------------------------------------------------------- multipliers

def _alias_average(func, shape):
    """Evaluate the stacked multipliers ``func(*q) -> (K, ...)`` on the FFT grid of ``shape``.

    ``q`` is in radians per pixel. For even sides the Nyquist frequency stands for both +π
    and -π; there the multipliers are averaged over all sign choices, so that they stay even
    in q (real, even kernels and real outputs, as the continuum kernels are).
    """
    nd = len(shape)
    freqs, nyquist = [], []
    for ax, n in enumerate(shape):
        idx = np.arange(n)
        freqs.append(2 * np.pi * np.where(idx <= n // 2, idx, idx - n) / n)
        nyquist.append(n // 2 if n % 2 == 0 else None)

    def evaluate(values):
        axes = []
        for k, v in enumerate(values):
            view = [1] * nd
            view[k] = -1
            axes.append(np.asarray(v, dtype=np.float64).reshape(view))
        return func(*axes)

    out = evaluate(freqs)
    out = np.array(np.broadcast_to(out, out.shape[:1] + tuple(len(f) for f in freqs)))
    even = [k for k in range(nd) if nyquist[k] is not None]
    # Subsets in increasing size, so entries on several Nyquist planes end with the full average.
    for size in range(1, len(even) + 1):
        for subset in itertools.combinations(even, size):
            acc = 0.0
            for signs in np.ndindex(*(2,) * size):
                vals = list(freqs)
                for k, flip in zip(subset, signs):
                    vals[k] = [np.pi if flip else -np.pi]
                acc = acc + evaluate(vals)
            index = (slice(None),) + np.ix_(*[np.array([nyquist[k]]) if k in subset else np.arange(len(freqs[k]))
                                               for k in range(nd)])
            out[index] = np.broadcast_to(acc, out[index].shape) / 2 ** size
    return out


def _unit(*q):
    """Unit vector components of q (zero at q = 0) and the mask of q != 0."""
    norm = np.sqrt(sum(c * c for c in q))
    safe = np.where(norm > 0, norm, 1.0)
    return [c / safe for c in q], norm > 0


@lru_cache(maxsize=16)
def _planar_multipliers(shape, harmonics):
    """Complex multipliers ``e^{imφ_q}`` (zero at q = 0) on the FFT grid, one per harmonic.

    Real part ``cos mφ_q`` and imaginary part ``sin mφ_q`` are each even in q, so one complex
    inverse transform yields the two real fields ``C_m δ`` (real part) and ``S_m δ``
    (imaginary part) with ``|R_m δ|² = (C_m δ)² + (S_m δ)²``.
    """
    def f(qy, qx):
        (uy, ux), nz = _unit(qy, qx)
        angle = np.arctan2(uy, ux)
        return np.stack([np.where(nz, np.exp(1j * m * angle), 0.0) for m in harmonics])
    out = _alias_average(f, shape)
    out.setflags(write=False)
    return out


def _harmonic_basis(l):
    """Directions and coefficients of an orthonormal real basis of degree-l spherical harmonics.

    ``P_l(x·y)`` is the reproducing kernel of the degree-l harmonics: the basis scaled by
    ``sqrt(4π/(2l+1))`` satisfies ``Σ_k U_k(x) U_k(y) = P_l(x·y)``. For 2l+1 directions
    ``n_j`` in general position, ``U_k = Σ_j W_kj P_l(·n_j)`` with ``W = G^{-1/2}``,
    ``G_ij = P_l(n_i·n_j)``, is such a basis.
    """
    n = 2 * l + 1
    # Fibonacci directions: well spread, deterministic.
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    azim = np.pi * (1 + 5 ** 0.5) * k
    dirs = np.stack([np.sqrt(1 - z * z) * np.cos(azim), np.sqrt(1 - z * z) * np.sin(azim), z], axis=1)
    gram = np.polynomial.legendre.legval(dirs @ dirs.T, [0] * l + [1])
    vals, vecs = np.linalg.eigh(gram)
    if vals.min() < 1e-8 * vals.max():
        raise RuntimeError("degenerate directions for the spherical-harmonic basis")
    return dirs, (vecs / np.sqrt(vals)) @ vecs.T


@lru_cache(maxsize=4)
def _spherical_multipliers(shape, degrees):
    """Real spherical-harmonic multipliers ``U_lk(q̂)`` (``Σ_k U_lk² = 1``) of a volume grid, the
    2l+1 of each degree in ``degrees`` in order, packed in pairs as ``U_a + i U_b`` (a zero
    partner completes an odd count): one complex inverse transform yields both real fields."""
    bases = [(l, *_harmonic_basis(l)) for l in degrees]

    def f(qz, qy, qx):
        (uz, uy, ux), nz = _unit(qz, qy, qx)
        parts = []
        for l, dirs, coef in bases:
            legendre = np.stack([np.polynomial.legendre.legval(ux * a + uy * b + uz * c, [0] * l + [1])
                                 for a, b, c in dirs])
            parts.append(np.where(nz, np.tensordot(coef, legendre, axes=1), 0.0))
        real = np.concatenate(parts)
        if len(real) % 2:
            real = np.concatenate([real, np.zeros_like(real[:1])])
        return real[0::2] + 1j * real[1::2]
    out = _alias_average(f, shape)
    out.setflags(write=False)
    return out


def harmonic_kernel(shape: tuple[int, int], m: int) -> np.ndarray:
    """Real-space form of the 2D harmonic kernel on a periodic grid, FFT order.

    Returns the complex kernel ``k`` with ``(k ⋆ I)(x) = Σ_r k(r) I(x + r) = (R_m I)(x)``
    (``R_m``: multiplier ``e^{imφ_q}``, zero at q = 0) for a periodic image of ``shape``: the
    continuum kernel ``(m / 2π) i^m e^{imφ} / |r|²`` (normalized to unit multiplier)
    restricted to the frequencies of the lattice. Its pair sums are the continuum integrals
    of the band-limited interpolant of S3; pointwise it is not the continuum kernel (the
    square lattice aliases the angular factor into m ± 4j). Used to check the factorization
    against brute-force pair sums.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2:
        raise ValueError("harmonic_kernel is defined for 2D grids")
    return np.fft.ifft2(_planar_multipliers(shape, (int(m),))[0])


# ---------------------------------------------------------------------------- evaluation

def _fluctuations(batch, periodic, grid):
    """``δ = I - φ2`` per image, zero-padded to ``grid`` for the non-periodic estimator."""
    n = len(batch)
    phi = batch.reshape(n, -1).mean(axis=1)
    delta = batch.astype(np.float64) - phi.reshape((n,) + (1,) * (batch.ndim - 1))
    if not periodic:
        padded = np.zeros((n,) + grid)
        padded[(slice(None),) + tuple(slice(0, s) for s in batch.shape[1:])] = delta
        delta = padded
    return phi, delta


def _padded_grid(shape, periodic):
    if periodic:
        return tuple(shape)
    return tuple(scipy.fft.next_fast_len(2 * n, real=True) for n in shape)


@numba.njit(cache=True)
def _weighted_squares(delta, field, lo, hi):
    """Per image: ``Σ δ (Re f)²`` and ``Σ δ (Im f)²`` over the window ``lo <= index < hi``.

    ``delta`` and ``field`` are ``(N, D, H, W)`` (2D images with D = 1). One pass without
    temporaries; serial, since it is memory bound and far cheaper than the FFTs around it
    (threading it only added scheduling overhead in measurements).
    """
    out = np.zeros((delta.shape[0], 2))
    for i in range(delta.shape[0]):
        s_re = 0.0
        s_im = 0.0
        for z in range(lo[0], hi[0]):
            for y in range(lo[1], hi[1]):
                for x in range(lo[2], hi[2]):
                    v = field[i, z, y, x]
                    w = delta[i, z, y, x]
                    s_re += w * v.real * v.real
                    s_im += w * v.imag * v.imag
        out[i, 0] = s_re
        out[i, 1] = s_im
    return out


class _NumpyOps:
    """Array operations of the estimator for NumPy batches: SciPy FFTs, a numba reduction."""

    chunk_scale = 1

    def __init__(self, workers):
        self.workers = fft_workers(workers)

    def const(self, value):
        return value

    where = staticmethod(np.where)
    concat = staticmethod(np.concatenate)
    contiguous = staticmethod(np.ascontiguousarray)
    fluctuations = staticmethod(_fluctuations)

    def fftn(self, delta):
        return scipy.fft.fftn(delta, axes=tuple(range(1, delta.ndim)), workers=self.workers)

    def moments(self, delta, spec, multipliers, window):
        """``<δ (U δ)²>`` over the observed window for each real multiplier ``U``; the complex
        ``multipliers`` pack two real ones each (real, imaginary part). Shape (N, 2 len(multipliers))."""
        axes = tuple(range(1, delta.ndim))
        as4 = (lambda a: a[:, None]) if delta.ndim == 3 else (lambda a: a)
        lo = np.array([0] * (4 - delta.ndim) + [w.start for w in window], dtype=np.int64)
        hi = np.array([1] * (4 - delta.ndim) + [w.stop for w in window], dtype=np.int64)
        n_obs = float(np.prod(hi - lo))
        d4 = as4(delta)
        buf = np.empty_like(spec)
        out = np.empty((len(delta), 2 * len(multipliers)))
        for k, mult in enumerate(multipliers):
            np.multiply(spec, mult, out=buf)
            field = scipy.fft.ifftn(buf, axes=axes, workers=self.workers, overwrite_x=True)
            out[:, 2 * k:2 * k + 2] = _weighted_squares(d4, as4(field), lo, hi) / n_obs
        return out


class _TorchOps:
    """The same operations for a torch tensor, with ``torch.fft`` on the tensor's device and in
    its floating dtype; the multipliers are the cached NumPy ones, copied to the device once."""

    def __init__(self, like):
        import torch

        self.torch = torch
        self.device, self.dtype = like.device, like.dtype
        self.cdtype = torch.complex64 if like.dtype == torch.float32 else torch.complex128
        # GPUs need big batches to fill.
        self.chunk_scale = 8 if like.device.type == "cuda" else 1

    def const(self, value):
        return self.torch.as_tensor(value, dtype=self.dtype, device=self.device)

    def where(self, cond, a, b):
        return self.torch.where(cond, self.const(a) if isinstance(a, float) else a, b)

    def concat(self, parts):
        return self.torch.cat(parts)

    def contiguous(self, x):
        return x.contiguous()

    def fluctuations(self, batch, periodic, grid):
        n = len(batch)
        phi = batch.reshape(n, -1).mean(dim=1)
        delta = batch - phi.reshape((n,) + (1,) * (batch.ndim - 1))
        if not periodic:
            pad = []
            for size, g in zip(reversed(batch.shape[1:]), reversed(grid)):
                pad += [0, g - size]
            delta = self.torch.nn.functional.pad(delta, pad)
        return phi, delta

    def fftn(self, delta):
        return self.torch.fft.fftn(delta, dim=tuple(range(1, delta.ndim)))

    def moments(self, delta, spec, multipliers, window):
        dims = tuple(range(1, delta.ndim))
        mults = _device_multipliers(multipliers, self.device, self.cdtype)
        observed = (slice(None),) + tuple(window)
        d_obs = delta[observed][..., None]
        n_obs = float(np.prod(d_obs.shape[1:-1]))
        out = []
        for mult in mults:
            field = self.torch.fft.ifftn(spec * mult, dim=dims)[observed]
            # (Re f)² and (Im f)² in one pass, as the last axis of the real view.
            out.append((self.torch.view_as_real(field).square() * d_obs).sum(dim=dims) / n_obs)
        return self.torch.cat(out, dim=1)


_DEVICE_MULTIPLIERS = {}


def _device_multipliers(multipliers, device, cdtype):
    """Device copies of the (lru-cached, read-only) multiplier arrays, keyed by their identity."""
    import torch

    key = (id(multipliers), str(device), cdtype)
    hit = _DEVICE_MULTIPLIERS.get(key)
    if hit is None or hit[0] is not multipliers:
        if len(_DEVICE_MULTIPLIERS) >= 8:
            _DEVICE_MULTIPLIERS.clear()
        hit = (multipliers, torch.tensor(multipliers, dtype=cdtype, device=device))
        _DEVICE_MULTIPLIERS[key] = hit
    return hit[1]


def _batch_plan(shape, periodic, margin):
    grid = _padded_grid(shape, periodic)
    window = tuple(slice(margin, n - margin) for n in shape)
    # δ (8 bytes per pixel), its spectrum, the product and the field (16 each).
    per_image = 56 * float(np.prod(grid))
    return grid, window, max(1, int(_CHUNK_BYTES // per_image))


def _lattice_parameters(batch, nd, d, periodic, margin, truncations, ops):
    """ζ2, η2 of a validated batch on its own pixel lattice (no resolution extrapolation).

    For d = 3 on 2D images, one ``(ζ2, η2)`` pair per harmonic truncation in
    ``truncations`` (the moments are computed once, up to the largest); otherwise a single
    pair, whatever ``truncations`` holds. ``ops``: :class:`_NumpyOps` or :class:`_TorchOps`.
    """
    shape = tuple(batch.shape[1:])
    grid, window, per_chunk = _batch_plan(shape, periodic, margin)
    per_chunk *= ops.chunk_scale
    slices_3d = nd == 2 and d == 3
    if nd == 2 and d == 2:
        multipliers = _planar_multipliers(grid, (2, 4))
    elif slices_3d:
        m_max = max(truncations)
        ms = np.arange(2, m_max + 1, 2)
        multipliers = _planar_multipliers(grid, tuple(int(m) for m in ms))
        # π a_m / m², the weight of harmonic m in the d = 3 integrals I[P2], I[P4], per truncation.
        w2 = np.pi * slice_harmonic_coefficients(2, m_max)[ms] / ms ** 2
        w4 = np.pi * slice_harmonic_coefficients(4, m_max)[ms] / ms ** 2
        weights = [(ops.const(np.where(ms <= t, w2, 0.0)), ops.const(np.where(ms <= t, w4, 0.0)))
                   for t in truncations]
    else:
        multipliers = _spherical_multipliers(grid, (2, 4))

    results = [([], []) for _ in (truncations if slices_3d else (0,))]
    for start in range(0, len(batch), per_chunk):
        part = batch[start:start + per_chunk]
        phi, delta = ops.fluctuations(part, periodic, grid)
        moments = ops.moments(delta, ops.fftn(delta), multipliers, window)
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
    return [(ops.concat(zeta), ops.concat(eta)) for zeta, eta in results]


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
    ``periodic=False`` quadruples the transform sizes (8× for volumes). Memory: 56 bytes per
    (padded) pixel of a chunk of images (chunks of ~48 MiB), plus the cached multipliers
    (16 bytes per pixel and harmonic; for a 128³ volume 7 × 34 MB).
    """
    check_d(d)
    if is_tensor(images):
        batch, nd = as_binary_tensor(images, ndim)
        ops = _TorchOps(batch)
    else:
        batch, nd = as_binary_batch(images, ndim=ndim)
        ops = _NumpyOps(workers)
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
        return _lattice_parameters(batch, nd, d, periodic, margin, (m_max,), ops)[0]
    if side < 8:
        raise ValueError(f"extrapolate=True needs image sides of at least 8 pixels, got {batch.shape[1:]}; "
                         "pass extrapolate=False for smaller images")
    fine = _lattice_parameters(batch, nd, d, periodic, margin, (m_max, m_coarse), ops)
    (zeta, eta), (zeta_low, eta_low) = fine if len(fine) == 2 else fine * 2
    coarse_z = coarse_e = 0.0
    offsets = list(np.ndindex(*(2,) * nd))
    for off in offsets:
        sub = ops.contiguous(batch[(slice(None),) + tuple(slice(o, None, 2) for o in off)])
        # About the same border, in coarse pixels.
        z, e = _lattice_parameters(sub, nd, d, periodic, (margin + 1) // 2, (m_coarse,), ops)[0]
        coarse_z += z
        coarse_e += e
    # Richardson on the low harmonics, which carry the discretization error: X(h) + [X_low(h) - X_low(2h)].
    return (zeta + zeta_low - coarse_z / len(offsets), eta + eta_low - coarse_e / len(offsets))


def zeta2(images: "ArrayLike | torch.Tensor", d: int = 3, **kwargs: Any) -> Any:
    """Three-point microstructural parameter ζ2 of the pore phase; see :func:`three_point_parameters`."""
    return three_point_parameters(images, d, **kwargs)[0]


def eta2(images: "ArrayLike | torch.Tensor", d: int = 3, **kwargs: Any) -> Any:
    """Three-point microstructural parameter η2 of the pore phase; see :func:`three_point_parameters`."""
    return three_point_parameters(images, d, **kwargs)[1]
