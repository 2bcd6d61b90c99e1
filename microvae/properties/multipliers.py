"""Fourier multipliers of the harmonic kernels of the three-point parameters (docs/physics.md §6).

In Fourier space the kernels ``e^{imφ}/r²`` (2D) and ``Y_lm(r̂)/r³`` (3D) of the exact FFT harmonic
method are pure angular multipliers: ``e^{imφ_q}`` on a plane, real spherical harmonics of ``q̂``
in a volume (zero at ``q = 0``). This module evaluates them on FFT grids, with the cosine
coefficients of the d = 3 slice expansion and its truncation bound;
:mod:`microvae.properties.harmonic` uses them.
"""
import itertools
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["slice_harmonic_coefficients", "slice_truncation_bound", "harmonic_kernel", "planar_multipliers",
           "spherical_multipliers", "harmonic_basis"]


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


def _alias_average(func, shape):
    """Evaluate the stacked multipliers ``func(*q) -> (K, ...)`` on the FFT grid of ``shape``.

    ``q`` is in radians per pixel. For even sides the Nyquist frequency stands for both +π
    and -π; there the multipliers are averaged over all sign choices, so that they stay even
    in q (real, even kernels and real outputs, as the continuum kernels are).
    """
    nd = len(shape)
    freqs, nyquist = [], []
    for n in shape:
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
def planar_multipliers(shape: tuple[int, ...], harmonics: tuple[int, ...]) -> np.ndarray:
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


def harmonic_basis(l: int) -> tuple[np.ndarray, np.ndarray]:
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
def spherical_multipliers(shape: tuple[int, ...], degrees: tuple[int, ...]) -> np.ndarray:
    """Real spherical-harmonic multipliers ``U_lk(q̂)`` (``Σ_k U_lk² = 1``) of a volume grid, the
    2l+1 of each degree in ``degrees`` in order, packed in pairs as ``U_a + i U_b`` (a zero
    partner completes an odd count): one complex inverse transform yields both real fields."""
    bases = [(l, *harmonic_basis(l)) for l in degrees]

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
    grid = tuple(int(n) for n in shape)
    if len(grid) != 2:
        raise ValueError("harmonic_kernel is defined for 2D grids")
    return np.fft.ifft2(planar_multipliers(grid, (int(m),))[0])
