"""Harmonic moments of large volumes in slabs: :mod:`microvae.properties.harmonic` for volumes
whose padded grid does not fit in memory as a whole (a 400³ crop is an 800³ grid).

The in-memory path holds the volume's spectrum, one complex work array per step and the cached
multipliers (168 bytes per grid point: 86 GB for 800³). Here the half spectrum ``F`` of
``δ = I - φ`` is the only grid-sized array besides ``T``, the window's planes of one inverse
transform: ``F`` is built plane by plane (2D transforms) and then along z in column blocks; for
each real multiplier ``U`` the product ``F U`` is inverted along z in column blocks (keeping the
window's planes in ``T``), then ``T`` plane by plane in 2D, and ``δ (U δ)²`` is summed over the
window. The multipliers are evaluated per block as homogeneous polynomials (the solid harmonics
of :func:`~microvae.properties.multipliers.harmonic_basis`, fitted exactly on the sphere) over
``|q|^l``, never stored. Peak memory: ``(L_z + w_z) L_y (L_x/2 + 1)`` complex entries (``w_z``:
the window's planes), complex128 below ``_COMPLEX128_BYTES``, else complex64 (relative rounding
1e-7 on the moments); measurements in docs/properties.md, section 7.
"""
from functools import lru_cache

import numpy as np
import scipy.fft

from ..threads import fft_workers
from ._engines import NumpyArrays
from .multipliers import harmonic_basis

__all__ = ["volume_moments", "SlabOps"]

_BLOCK_BYTES = 64 * 2 ** 20
_COMPLEX128_BYTES = 2 ** 31


@lru_cache(maxsize=4)
def _solid_harmonics(l):
    """Monomial exponents ``(a, b, c)`` of ``q_z^a q_y^b q_x^c`` (``a + b + c = l``) and the
    coefficients ``(2l+1, n_monomials)`` of the basis ``U_k`` of ``harmonic_basis(l)`` as
    homogeneous polynomials of degree l: on the unit sphere the degree-l monomials span exactly
    the harmonics of degree l, l - 2, ..., so the least-squares fit on random directions is exact."""
    exps = [(a, b, l - a - b) for a in range(l + 1) for b in range(l + 1 - a)]
    dirs, coef = harmonic_basis(l)
    u = np.random.default_rng(0).normal(size=(4 * len(exps), 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    uz, uy, ux = u[:, 0], u[:, 1], u[:, 2]
    # Same convention as multipliers.spherical_multipliers: direction (a, b, c) dotted with (ux, uy, uz).
    legendre = np.stack([np.polynomial.legendre.legval(ux * a + uy * b + uz * c, [0] * l + [1]) for a, b, c in dirs])
    values = coef @ legendre
    design = np.stack([uz ** a * uy ** b * ux ** c for a, b, c in exps], axis=1)
    fit = np.linalg.lstsq(design, values.T, rcond=None)[0].T
    return exps, fit


def _axis_powers(n, l):
    """Powers ``0..l`` of the frequencies (radians per pixel) of an FFT axis of length ``n``; at
    the Nyquist frequency of an even length the odd powers are 0, the average over ``±π`` that
    keeps the multipliers even in q (as :func:`~microvae.properties.multipliers._alias_average`)."""
    idx = np.arange(n)
    q = 2 * np.pi * np.where(idx <= n // 2, idx, idx - n) / n
    powers = np.stack([q ** a for a in range(l + 1)])
    if n % 2 == 0:
        powers[1::2, n // 2] = 0.0
    return powers


def _multiplier_block(l, coefs, exps, pz, py, px, inv_norm):
    """``U(q)`` on a block: ``Σ c q^α / |q|^l``; ``pz, py, px``: the axes' powers restricted to
    the block, ``inv_norm``: ``1 / |q|^l`` on the block (0 at q = 0)."""
    out = np.zeros(inv_norm.shape)
    for a in range(l + 1):
        plane = sum(c * np.multiply.outer(py[b], px[cx]) for c, (az, b, cx) in zip(coefs, exps) if az == a and c)
        if np.ndim(plane):
            out += pz[a][:, None, None] * plane
    return out * inv_norm


def volume_moments(volume, periodic, grid, window, degrees, workers):
    """Porosity and the window means of ``δ (U_k δ)²`` of one volume for the real multipliers of
    ``degrees`` (in the order of :func:`~microvae.properties.multipliers.spherical_multipliers`)."""
    nz, ny, nx = volume.shape
    lz, ly, lx = grid
    wc = lx // 2 + 1
    zw, yw, xw = window
    n_window = zw.stop - zw.start
    phi = float(volume.mean())
    entries = (lz + n_window) * ly * wc
    store = np.complex128 if 16 * entries <= _COMPLEX128_BYTES else np.complex64
    # F: 2D transforms of the planes, then along z in column blocks.
    spec = np.zeros((lz, ly, wc), dtype=store)
    step = max(1, _BLOCK_BYTES // (16 * ly * wc))
    for z in range(0, nz, step):
        planes = volume[z:z + step].astype(np.float64) - phi
        spec[z:z + len(planes)] = scipy.fft.rfft2(planes, s=(ly, lx), workers=workers)
    col = max(1, _BLOCK_BYTES // (16 * lz * wc))
    for y in range(0, ly, col):
        spec[:, y:y + col] = scipy.fft.fft(spec[:, y:y + col], axis=0, workers=workers)
    # Frequencies: powers per axis, 1 / |q|^l per column block.
    lmax = max(degrees)
    pz, py, px = _axis_powers(lz, lmax), _axis_powers(ly, lmax), _axis_powers(lx, lmax)[:, :wc]
    qz2 = _axis_powers(lz, 2)[2]
    qyx2 = np.add.outer(_axis_powers(ly, 2)[2], _axis_powers(lx, 2)[2][:wc])
    window_planes = np.empty((n_window, ly, wc), dtype=store)
    moments = []
    for l in degrees:
        exps, fit = _solid_harmonics(l)
        for coefs in fit:
            for y in range(0, ly, col):
                q2 = qz2[:, None, None] + qyx2[None, y:y + col]
                with np.errstate(divide="ignore"):
                    inv_norm = np.where(q2 > 0, q2 ** (-l / 2), 0.0)
                mult = _multiplier_block(l, coefs, exps, pz, py[:, y:y + col], px, inv_norm)
                block = scipy.fft.ifft(spec[:, y:y + col] * mult, axis=0, workers=workers)
                window_planes[:, y:y + col] = block[zw]
            total = 0.0
            for z in range(0, n_window, step):
                end = min(z + step, n_window)
                field = scipy.fft.irfft2(window_planes[z:end], s=(ly, lx), workers=workers)[:, yw, xw]
                delta = volume[zw.start + z:zw.start + end, yw, xw].astype(np.float64) - phi
                total += float(np.sum(delta * field * field))
            moments.append(total / (n_window * (yw.stop - yw.start) * (xw.stop - xw.start)))
    return phi, np.array(moments)


class SlabOps(NumpyArrays):
    """The estimator's operations for volumes too large for the in-memory path: one volume at a
    time through :func:`volume_moments`; the multipliers are evaluated per block."""

    def __init__(self, workers):
        self.workers = fft_workers(workers)

    def chunk_size(self, per_chunk, n):
        return 1

    def spherical(self, grid, degrees):
        return degrees  # evaluated block by block in volume_moments

    def phi_and_moments(self, part, periodic, grid, degrees, window, s2_plan=None):
        phi, moments = zip(*(volume_moments(v, periodic, grid, window, degrees, self.workers) for v in part))
        return np.array(phi), np.stack(moments), None
