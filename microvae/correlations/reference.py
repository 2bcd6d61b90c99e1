"""Slow, obviously-correct versions of the correlation kernels, for tests and for checking.

Each function loops over displacements explicitly (no FFTs), one image at a time.
"""
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["s2_map_reference", "s2_radial_reference", "s3_map_reference", "s3_triangle_reference"]


def _pair_mean(image, a, b, periodic):
    """Mean of ``image[x] * image[x + a] * image[x + b]`` over valid x (b may be zero)."""
    if periodic:
        prod = image * np.roll(image, [-v for v in a], axis=range(image.ndim))
        prod = prod * np.roll(image, [-v for v in b], axis=range(image.ndim))
        return prod.mean()
    sl0, sla, slb = [], [], []
    for n, da, db in zip(image.shape, a, b):
        lo = max(0, -da, -db)
        hi = min(n, n - da, n - db)
        if hi <= lo:
            return np.nan
        sl0.append(slice(lo, hi))
        sla.append(slice(lo + da, hi + da))
        slb.append(slice(lo + db, hi + db))
    return (image[tuple(sl0)] * image[tuple(sla)] * image[tuple(slb)]).mean()


def _offsets(shape):
    """All displacements of a map in FFT order, as an index grid of signed vectors."""
    return np.stack(np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n).astype(int) for n in shape], indexing="ij"), -1)


def s2_map_reference(image: ArrayLike, *, periodic: bool = True) -> np.ndarray:
    """Full S2 map of one binary image, FFT order, by a loop over displacements."""
    image = np.asarray(image, dtype=np.float64)
    zero = (0,) * image.ndim
    offs = _offsets(image.shape)
    out = np.empty(image.shape)
    for idx in np.ndindex(image.shape):
        out[idx] = _pair_mean(image, tuple(offs[idx]), zero, periodic)
    return out


def s2_radial_reference(image: ArrayLike, r_max: int, *, periodic: bool = True) -> np.ndarray:
    """Radial S2 (bins ``round(|r|) = b``) of one image from an explicit displacement loop.

    Enumerates displacements with components in ``[-r_max, r_max]`` directly (not via the map),
    so it checks the binning of the fast version independently.
    """
    image = np.asarray(image, dtype=np.float64)
    sums = np.zeros(r_max + 1)
    counts = np.zeros(r_max + 1)
    zero = (0,) * image.ndim
    rng = range(-r_max, r_max + 1)
    for vec in np.ndindex(*(len(rng),) * image.ndim):
        d = tuple(v - r_max for v in vec)
        if periodic and any(abs(c) * 2 > n or (c * 2 == n and c > 0) for c, n in zip(d, image.shape)):
            continue  # the periodic map has one copy of each displacement, the negative Nyquist one
        b = int(np.floor(np.sqrt(sum(c * c for c in d)) + 0.5))
        if b <= r_max:
            sums[b] += _pair_mean(image, d, zero, periodic)
            counts[b] += 1
    return sums / counts


def s3_map_reference(image: ArrayLike, r1: tuple[int, ...], *, periodic: bool = True) -> np.ndarray:
    """``S3(r1, r2)`` over all ``r2`` (FFT order) of one image, by a loop over ``r2``."""
    image = np.asarray(image, dtype=np.float64)
    offs = _offsets(image.shape)
    out = np.empty(image.shape)
    for idx in np.ndindex(image.shape):
        out[idx] = _pair_mean(image, tuple(int(v) for v in r1), tuple(offs[idx]), periodic)
    return out


def s3_triangle_reference(image: ArrayLike, r: float, s: float, theta: float, n_angles: int = 720) -> float:
    """Orientation-averaged periodic S3 of one 2D image for one triangle, exactly over positions.

    Averages over ``n_angles`` equally spaced orientations of the triangle, each evaluated over
    all pixels with offsets rounded to the nearest pixel (the rule of the Monte Carlo sampler),
    so its expectation is what :func:`microvae.correlations.s3` estimates.
    """
    image = np.asarray(image, dtype=np.float64)
    total = 0.0
    for phi in 2 * np.pi * np.arange(n_angles) / n_angles:
        a = (int(np.floor(r * np.sin(phi) + 0.5)), int(np.floor(r * np.cos(phi) + 0.5)))
        b = (int(np.floor(s * np.sin(phi + theta) + 0.5)), int(np.floor(s * np.cos(phi + theta) + 0.5)))
        total += _pair_mean(image, a, b, True)
    return total / n_angles
