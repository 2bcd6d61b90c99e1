"""Distances between image sets: of value distributions, of local pixel patterns, of pixels.

:func:`distribution_distance` compares the values of a per-image quantity (means, stds, the
Kolmogorov-Smirnov statistic, the Wasserstein-1 distance), :func:`mean_std` summarises one set,
:func:`pattern_divergence` compares the local 3x3 pixel configurations of two sets, and
:func:`pairwise_correlation` and :func:`nearest_correlation` measure the diversity of a set and
its closeness to training images.

Conventions: binary images, 1 = pore; sample standard deviations over images with ``ddof=1``
(:data:`DDOF`, also the study's).
"""
import math
import warnings

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_finite
from .descriptors import Descriptors

__all__ = ["DDOF", "mean_std", "distribution_distance", "pattern_divergence", "pairwise_correlation",
           "nearest_correlation"]

DDOF = 1  #: sample standard deviation over images: compare and the study's outputs (microvae.study.stats)


def mean_std(values: ArrayLike) -> dict[str, float]:
    """``{"mean", "std"}`` of the finite values: the summary of every set in :func:`compare_sets`.

    The standard deviation is the sample one (``ddof=``:data:`DDOF`); NaN where undefined (no
    finite value; fewer than two for the std).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std(ddof=DDOF)) if len(v) > DDOF else math.nan}


def distribution_distance(reference: ArrayLike, other: ArrayLike) -> dict[str, float]:
    """How far the values ``other`` are distributed from ``reference`` (non-finite values dropped).

    Returns
    -------
    dict
        ``mean``, ``std`` of ``other`` and ``reference_mean``, ``reference_std`` (``ddof=1``);
        ``mean_diff`` (other - reference), ``rel_diff`` (that over ``|reference_mean|``),
        ``std_ratio`` (other / reference), the two-sample Kolmogorov-Smirnov statistic ``ks`` and
        ``ks_pvalue``, the Wasserstein-1 distance ``w1`` and ``w1_rel`` (over ``reference_std``).
        NaN where undefined (empty set, zero reference mean or std).
    """
    from scipy import stats

    ref = np.asarray(reference, dtype=np.float64).ravel()
    oth = np.asarray(other, dtype=np.float64).ravel()
    ref, oth = ref[np.isfinite(ref)], oth[np.isfinite(oth)]
    nan = math.nan
    (mean_r, sd_r), (mean_o, sd_o) = (mean_std(v).values() for v in (ref, oth))
    out = {"mean": mean_o, "std": sd_o, "reference_mean": mean_r, "reference_std": sd_r,
           "mean_diff": mean_o - mean_r, "rel_diff": (mean_o - mean_r) / abs(mean_r) if mean_r else nan,
           "std_ratio": sd_o / sd_r if sd_r else nan, "ks": nan, "ks_pvalue": nan, "w1": nan, "w1_rel": nan}
    if len(ref) and len(oth):
        with warnings.catch_warnings():
            # SciPy falls back to the asymptotic p-value when the exact one fails (ties, large
            # sets) and says so each time; the fallback is the documented behaviour, not news.
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
            ks = stats.ks_2samp(ref, oth)
        w1 = float(stats.wasserstein_distance(ref, oth))
        out.update(ks=float(ks.statistic), ks_pvalue=float(ks.pvalue), w1=w1, w1_rel=w1 / sd_r if sd_r else nan)
    return out


def _js_bits(p, q):
    """Jensen-Shannon divergence of two discrete distributions, bits."""
    m = (p + q) / 2
    return float(sum(0.5 * np.sum(x[x > 0] * np.log2(x[x > 0] / m[x > 0])) for x in (p, q)))


def pattern_divergence(images: ArrayLike | Descriptors, authentic: ArrayLike | Descriptors, *,
                       size: int | None = None, ndim: int | None = None) -> float:
    """Jensen-Shannon divergence between the local pixel configurations of two image sets, bits.

    Each set's frequencies of the binary configurations of ``size``-pixel windows
    (:func:`microvae.morphology.pattern_histogram`: 3x3 in 2D, 2x2x2 in 3D), pooled over its
    images, compared by the Jensen-Shannon divergence (0 for equal frequencies, 1 bit for
    disjoint ones). It sees what a person sees at the pixel scale: specks, rounded or cusped
    boundaries, one-pixel necks, checkerboard texture. Sampling alone gives a small positive
    value (compare with the authentic-halves noise floor of :func:`compare_sets`).

    Parameters
    ----------
    images, authentic : array_like or Descriptors
        Binary image sets of one image shape, or their :func:`describe` results (which hold
        the default windows' frequencies).
    size : int, optional
        Window side (default 3 in 2D, 2 in 3D; ``Descriptors`` hold the default).
    ndim : {None, 2, 3}

    Returns
    -------
    float
    """
    from ..morphology import pattern_histogram

    def freq(x, name):
        if isinstance(x, Descriptors):
            if size is not None and size != (3 if x.ndim == 2 else 2):
                raise ValueError(f"{name} descriptors hold the default window size, not size={size}")
            return x.patterns
        return pattern_histogram(x, size, ndim=ndim)

    p, q = freq(images, "images"), freq(authentic, "authentic")
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"the sets' windows differ ({p.shape[1]} and {q.shape[1]} configurations)")
    return _js_bits(p.mean(axis=0), q.mean(axis=0))


def _unit_rows(images, max_images):
    """Images as rows of unit-norm, mean-free pixel vectors (single-phase images dropped)."""
    images = np.asarray(images)
    check_finite(images)
    x = np.asarray(images[:max_images], dtype=np.float64).reshape(min(len(images), max_images), -1)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1)
    return x[norm > 0] / norm[norm > 0, None]


def nearest_correlation(images: ArrayLike, reference: ArrayLike, max_images: int = 500) -> float:
    """Median over ``images`` of the largest Pearson pixel correlation with any ``reference`` image.

    A memorization check for generators: with ``reference`` the training images, copies of
    training images score near 1, while new images of the same medium score what held-out
    authentic images score against the same training set (compare the two). Same-shape sets;
    the first ``max_images`` of each enter.

    Parameters
    ----------
    images, reference : array_like
        ``(N, ...)`` binary images of one shape.
    max_images : int

    Returns
    -------
    float
    """
    a, b = _unit_rows(images, max_images), _unit_rows(reference, max_images)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"images of {a.shape[1]} pixels and reference images of {b.shape[1]} pixels differ in shape")
    if not len(a) or not len(b):
        return math.nan
    return float(np.median((a @ b.T).max(axis=1)))


def pairwise_correlation(images: ArrayLike, max_images: int = 200) -> float:
    """Mean Pearson correlation between the pixels of two different images of a set.

    Over all pairs of the first ``max_images`` images. About 0 for independent samples of a
    homogeneous medium; near 1 when a generator draws the same picture again and again (mode
    collapse), whatever the porosity of each draw. Images of one phase only (no variance) are
    left out; NaN when fewer than two remain.

    Parameters
    ----------
    images : array_like
        ``(N, ...)``: binary images or probability maps.
    max_images : int

    Returns
    -------
    float
    """
    x = _unit_rows(images, max_images)
    if len(x) < 2:
        return math.nan
    gram = x @ x.T
    n = len(x)
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))
