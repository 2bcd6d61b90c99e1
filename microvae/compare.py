"""Fidelity of generated microstructures: how far an image set is from an authentic one.

:func:`compare_sets` measures one or several generated sets against the authentic images with
the descriptors of :mod:`microvae.morphology` (and S2 from :mod:`microvae.correlations`), and,
as the noise floor, two disjoint random halves of the authentic set against each other: a
difference of that size is what sampling alone produces. :func:`describe` computes the per-image
descriptors of a set once, for callers that compare many sets against the same authentic images.

Measures that see what a person sees, beyond averaged descriptors: :func:`pattern_divergence`
(local 3x3 pixel configurations: specks, rounded or cusped boundaries, thin necks), the pore
solidity among the scalars (how convex the pores are), :func:`label_distances` (the
distributions of the study's labels: porosity, ζ2, η2, E, D, k) and the classifier two-sample
test of :mod:`microvae.c2st` (can a small CNN tell the set from held-out authentic images?).
:func:`compare_sets` adds the last two on request (``labels``, ``c2st``), with their noise floors.

Conventions: binary images, 1 = pore; lengths in pixels; densities per pixel; sample standard
deviations over images with ``ddof=1`` (:data:`DDOF`, also the study's); every curve is
averaged over the images of a set first (the "mean curve"), then the sets' mean curves are
compared.
"""
import io as _io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import morphology as _m
from ._validate import as_binary_batch, check_finite
from .io import atomic_write, jsonable, write_json

__all__ = ["Descriptors", "describe", "compare_sets", "distribution_distance", "pairwise_correlation",
           "nearest_correlation", "mean_std", "label_values", "label_distances", "pattern_divergence",
           "plot_comparison", "format_table", "save_json", "CURVES", "SCALARS", "DDOF", "LABELS", "LABEL_OPTIONS"]

# Curve name -> (label of the x axis, description).
DDOF = 1  #: sample standard deviation over images: compare and the study's outputs (microvae.study.stats)

CURVES = {
    "s2": ("r", "two-point function S2(r), radial, periodic"),
    "lineal_path_pore": ("r", "lineal path L(r) of the pore phase, along the axes"),
    "lineal_path_solid": ("r", "lineal path L(r) of the solid phase, along the axes"),
    "chord_pore": ("chord length", "chord-length probability of the pore phase (interior chords)"),
    "chord_solid": ("chord length", "chord-length probability of the solid phase (interior chords)"),
    "cluster": ("r", "two-point cluster function C2(r) of the pore phase, along the axes"),
}
SCALARS = {
    "specific_surface": "interface per pixel, pixel-face count (morphology.specific_surface 'count')",
    "specific_surface_s2": "interface per pixel from S2'(0) (morphology.specific_surface 's2')",
    "euler_density": "Euler characteristic of the pore phase per pixel",
    "perimeter_density": "pore perimeter per pixel (Crofton; surface area per voxel in 3D)",
    "cluster_density": "pore clusters per pixel",
    "largest_cluster_fraction": "largest pore cluster / pore pixels",
    "percolation_fraction": "fraction of the axes along which a pore cluster spans the image",
    "mean_chord_pore": "mean interior chord length of the pore phase, pixels",
    "mean_chord_solid": "mean interior chord length of the solid phase, pixels",
    "pore_solidity": "pore convexity: area-weighted mean solidity (area / convex hull) of the pore clusters of at "
                     "least 10 px (morphology.pore_solidity; 2D only, NaN for volumes)",
}
#: Labels of :func:`microvae.label` (the study's) compared by :func:`label_distances`.
LABELS = ("porosity", "zeta2", "eta2", "E", "D", "k")
#: Label options of :func:`label_values`: images are planar sections of a 3D rock (``d=3``) and
#: crops of a larger sample (non-periodic estimators).
LABEL_OPTIONS = {"d": 3, "periodic": False}


class Descriptors:
    """Per-image descriptors of one image set (from :func:`describe`).

    Attributes
    ----------
    images : ndarray of uint8
        The validated batch ``(N,) + spatial``.
    ndim, r_max, connectivity : int
        Settings the descriptors were computed with.
    porosity : ndarray, shape ``(N,)``
    curves : dict of ndarray
        :data:`CURVES` name -> ``(N, len(x))``; the x values in :attr:`x`.
    scalars : dict of ndarray
        :data:`SCALARS` name -> ``(N,)``.
    patterns : ndarray
        ``(N, K)``: frequencies of the binary configurations of 3x3 windows (2D) or 2x2x2
        windows (3D) per image (:func:`microvae.morphology.pattern_histogram`).
    """

    def __init__(self, images: np.ndarray, ndim: int, r_max: int, connectivity: int, porosity: np.ndarray,
                 curves: dict[str, np.ndarray], scalars: dict[str, np.ndarray], patterns: np.ndarray):
        self.images, self.ndim, self.r_max, self.connectivity = images, ndim, r_max, connectivity
        self.porosity, self.curves, self.scalars, self.patterns = porosity, curves, scalars, patterns

    def __len__(self):
        return len(self.images)

    @property
    def x(self) -> dict[str, np.ndarray]:
        """x values of each curve: ``r = 0..r_max``, chord lengths ``1..max side``."""
        lengths = np.arange(1, max(self.images.shape[1:]) + 1)
        return {k: (lengths if k.startswith("chord") else np.arange(self.r_max + 1)) for k in CURVES}

    def subset(self, index: ArrayLike) -> "Descriptors":
        """The descriptors of ``images[index]``."""
        idx = np.asarray(index)
        return Descriptors(self.images[idx], self.ndim, self.r_max, self.connectivity, self.porosity[idx],
                           {k: v[idx] for k, v in self.curves.items()},
                           {k: v[idx] for k, v in self.scalars.items()}, self.patterns[idx])

    def __repr__(self):
        return (f"Descriptors(n={len(self)}, shape={self.images.shape[1:]}, r_max={self.r_max}, "
                f"connectivity={self.connectivity})")


def describe(images: ArrayLike, *, r_max: int | None = None, connectivity: int | None = None, ndim: int | None = None,
             name: str = "images") -> Descriptors:
    """Per-image descriptors of an image set, computed once for any number of comparisons.

    Parameters
    ----------
    images : array_like
        Binary ``(N, H, W)`` or ``(N, D, H, W)`` (``ndim=3`` for one volume), 1 = pore.
    r_max : int, optional
        Largest distance of the S2, L and C2 curves, pixels (default: half the smallest side).
    connectivity : int, optional
        Pore connectivity for C2, the cluster statistics and the Euler characteristic: 4
        (default) or 8 in 2D, 6 (default) or 26 in 3D.
    ndim : {None, 2, 3}
    name : str
        Name of the set in error messages.

    Returns
    -------
    Descriptors
    """
    from .correlations import s2

    batch, nd = as_binary_batch(images, ndim=ndim, name=name)
    shape = batch.shape[1:]
    r_max = _m.check_r_max(shape, r_max)
    if r_max > min(shape) // 2:
        raise ValueError(f"r_max must be at most {min(shape) // 2} (half the smallest side; S2 is periodic) "
                         f"for {name} of shape {shape}, got {r_max}")
    connectivity = _m.check_connectivity(nd, connectivity)
    found = _m.descriptors(batch, r_max, connectivity=connectivity, ndim=nd)
    curves = {"s2": s2(batch, r_max=r_max, ndim=nd)}
    curves.update((k, found[k]) for k in ("lineal_path_pore", "chord_pore", "lineal_path_solid", "chord_solid",
                                          "cluster"))
    scalars = {k: found[k] for k in SCALARS}
    porosity = batch.reshape(len(batch), -1).mean(axis=1)
    return Descriptors(batch, nd, r_max, connectivity, porosity, curves, scalars, _m.pattern_histogram(batch, ndim=nd))


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
        ks = stats.ks_2samp(ref, oth)
        w1 = float(stats.wasserstein_distance(ref, oth))
        out.update(ks=float(ks.statistic), ks_pvalue=float(ks.pvalue), w1=w1, w1_rel=w1 / sd_r if sd_r else nan)
    return out


def label_values(images: ArrayLike, *, keys: Sequence[str] = LABELS, **options) -> dict[str, np.ndarray]:
    """Per-image labels of an image set: :func:`microvae.label` with :data:`LABEL_OPTIONS`.

    Parameters
    ----------
    images : array_like
        Binary ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    keys : sequence of str
        Labels to keep (names of :data:`microvae.properties.LABEL_KEYS`).
    **options
        :func:`microvae.label` options replacing :data:`LABEL_OPTIONS` (``d``, ``periodic``,
        the rock's moduli ``K1``, ``G1``, ...).

    Returns
    -------
    dict of str -> ndarray of float64, shape ``(N,)``
        Non-finite where a label is undefined (an image of one phase).
    """
    from .properties import LABEL_KEYS, label

    unknown = [k for k in keys if k not in LABEL_KEYS]
    if unknown or not keys:
        raise ValueError(f"unknown labels {unknown or list(keys)}; choose from {list(LABEL_KEYS)}")
    out = label(images, **{**LABEL_OPTIONS, **options})
    return {k: np.asarray(out[k], dtype=np.float64) for k in keys}


def label_distances(images: ArrayLike | Mapping[str, ArrayLike], authentic: ArrayLike | Mapping[str, ArrayLike], *,
                    keys: Sequence[str] = LABELS, **options) -> dict[str, dict[str, float]]:
    """How far the distribution of each label of ``images`` is from the authentic one.

    Parameters
    ----------
    images, authentic : array_like or mapping
        Binary image batches, labeled here by :func:`label_values`, or mappings of per-image
        label arrays (a :func:`label_values` result, a study's label table) holding ``keys``.
    keys : sequence of str
        Labels compared (default :data:`LABELS`: porosity, ζ2, η2, E, D, k).
    **options
        :func:`label_values` options for the sets given as images.

    Returns
    -------
    dict
        Per label, the :func:`distribution_distance` of the finite values of ``images`` from
        those of ``authentic``: KS statistic ``ks`` and ``ks_pvalue`` (SciPy's two-sample
        test), ``w1`` and ``w1_rel`` (Wasserstein-1 distance over the authentic std), means,
        stds and their differences.
    """
    def table(values, name):
        if isinstance(values, Mapping):
            missing = [k for k in keys if k not in values]
            if missing:
                raise KeyError(f"{name} labels lack {missing}")
            return values
        return label_values(values, keys=keys, **options)

    a, b = table(authentic, "authentic"), table(images, "images")
    return {k: distribution_distance(a[k], b[k]) for k in keys}


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
    from .morphology import pattern_histogram

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


def _mean_curve(curves):
    """Mean and std (ddof=:data:`DDOF`) over images, ignoring NaN (an image without chords)."""
    with warnings.catch_warnings():
        # An all-NaN column (no image has a chord of that length) is a NaN mean, not a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(curves, axis=0, ddof=DDOF) if len(curves) > DDOF else np.full(curves.shape[1], np.nan)
        return np.nanmean(curves, axis=0), std


def _compare(ref, oth, max_images):
    entry: dict[str, Any] = {
        "n": len(oth), "porosity": distribution_distance(ref.porosity, oth.porosity), "curves": {},
        "scalars": {k: distribution_distance(ref.scalars[k], oth.scalars[k]) for k in SCALARS},
        "pattern_js": pattern_divergence(oth, ref),
        "diversity": pairwise_correlation(oth.images, max_images),
        "reference_diversity": pairwise_correlation(ref.images, max_images)}
    for k in CURVES:
        mean_r, _ = _mean_curve(ref.curves[k])
        mean_o, sd_o = _mean_curve(oth.curves[k])
        diff = mean_o - mean_r
        ok = np.isfinite(diff)
        entry["curves"][k] = {"mean": mean_o, "std": sd_o,
                              "max_diff": float(np.abs(diff[ok]).max()) if ok.any() else math.nan,
                              "rms_diff": float(np.sqrt(np.mean(diff[ok] ** 2))) if ok.any() else math.nan}
    return entry


def _described(images, name, reference=None, **settings):
    if isinstance(images, Descriptors):
        asked = {k: v for k, v in settings.items() if v is not None}
        have = {"r_max": images.r_max, "connectivity": images.connectivity, "ndim": images.ndim}
        if any(have[k] != v for k, v in asked.items()):
            raise ValueError(f"{name} descriptors were computed with {have}, not {asked}")
        if reference is not None and (images.r_max, images.connectivity, images.images.shape[1:]) != (
                reference.r_max, reference.connectivity, reference.images.shape[1:]):
            raise ValueError(f"{name} descriptors were computed with other settings or image shape than the "
                             f"authentic ones ({images!r} vs {reference!r})")
        return images
    batch, _ = as_binary_batch(images, ndim=settings["ndim"], name=name)
    if reference is not None and batch.shape[1:] != reference.images.shape[1:]:
        raise ValueError(f"{name} images {batch.shape[1:]} and authentic images "
                         f"{reference.images.shape[1:]} differ in shape")
    return describe(batch, name=name, **settings)


def compare_sets(authentic: ArrayLike | Descriptors,
                 generated: ArrayLike | Descriptors | Mapping[str, ArrayLike | Descriptors], *,
                 r_max: int | None = None, seed: int = 0, connectivity: int | None = None, ndim: int | None = None,
                 noise_floor: bool = True, max_images: int = 200, labels: bool = False,
                 label_options: Mapping[str, Any] | None = None, c2st: bool | Mapping[str, Any] = False,
                 held_out: ArrayLike | None = None) -> dict[str, Any]:
    """Compare generated image sets with an authentic one by porosity, curves and scalar descriptors,
    local pixel patterns and, on request, label distributions and a classifier two-sample test.

    Parameters
    ----------
    authentic : array_like or Descriptors
        Binary ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore, at least 2 images (4 for the noise
        floor); or its :func:`describe` result, to describe it only once over many calls.
    generated : array_like, Descriptors or mapping
        One set (reported under the name ``"generated"``) or ``{name: set}`` for several; every
        set has the authentic image shape.
    r_max : int, optional
        Largest distance of the S2, L and C2 curves (default: half the smallest side).
    seed : int
        Seeds the random split of the authentic set into two disjoint halves (noise floor).
    connectivity : int, optional
        Pore connectivity: 4 (default) or 8 in 2D, 6 (default) or 26 in 3D.
    ndim : {None, 2, 3}
    noise_floor : bool
        Also compare two disjoint random halves of the authentic set.
    max_images : int
        Images per set entering the diversity (:func:`pairwise_correlation`).
    labels : bool
        Also compare the distributions of the labels (:func:`label_distances`; about 6 ms per
        64 px image to label).
    label_options : mapping, optional
        :func:`label_values` options (default :data:`LABEL_OPTIONS`).
    c2st : bool or mapping
        Also run the classifier two-sample test (:func:`microvae.c2st.c2st`) of every set
        against ``held_out``; a mapping gives its options. It costs tens of seconds of CPU per
        set (docs/vae.md, "Realism").
    held_out : array_like, optional
        The authentic images the classifier sees: images no generator learned from. Default
        ``authentic`` (pass the held-out images whenever ``authentic`` includes the
        generators' training images: a generator copying them would otherwise pass). 2D only.

    Returns
    -------
    dict (JSON-serializable; NaN becomes ``None``)
        ``settings``: ``ndim``, ``image_shape``, ``r_max``, ``connectivity``, ``seed``.
        ``x``: per curve name (:data:`CURVES`), its x values.
        ``authentic``: ``n``, ``porosity`` and each of ``scalars`` (:data:`SCALARS`) as
        ``{"mean", "std"}``, ``curves`` as ``{"mean", "std"}`` lists, ``diversity``.
        ``generated``: per name, ``n``; ``porosity`` and each of ``scalars``: the
        :func:`distribution_distance` from the authentic values (``mean``, ``std``,
        ``mean_diff``, ``rel_diff``, ``std_ratio``, ``ks``, ``ks_pvalue``, ``w1``, ``w1_rel``);
        ``curves``: per curve ``mean``, ``std`` and the ``max_diff`` and ``rms_diff`` of the mean
        curve from the authentic mean curve; ``diversity``; ``pattern_js``: the
        :func:`pattern_divergence` from the authentic images, bits; with ``labels``, ``labels``:
        the :func:`label_distances` per label; with ``c2st``, ``c2st``: the
        :func:`microvae.c2st.c2st` result.
        ``noise_floor``: the same entry for the second authentic half against the first (``n``
        is the size of each half; ``split_seed``; its ``c2st`` is :func:`microvae.c2st.c2st_halves`
        of ``held_out``), or ``None`` when disabled or fewer than 4 authentic images.
        With ``labels``, ``authentic["labels"]`` holds each label's mean and std and
        ``settings["labels"]`` the label options; with ``c2st``, ``settings["c2st"]`` holds the
        classifier's options and the number of held-out images.
    """
    settings = {"r_max": r_max, "connectivity": connectivity, "ndim": ndim}
    auth = _described(authentic, "authentic", **settings)
    if isinstance(generated, Mapping):
        if not generated:
            raise ValueError("generated holds no image sets")
        sets = dict(generated)
    else:
        sets = {"generated": generated}
    settings = {"r_max": auth.r_max, "connectivity": auth.connectivity, "ndim": auth.ndim}
    gens = {str(k): _described(v, f"generated set {k!r}", auth, **settings) for k, v in sets.items()}
    for name, desc in (("authentic", auth), *gens.items()):
        if len(desc) < 2:
            raise ValueError(f"{name} holds {len(desc)} image; comparing distributions needs at least 2")
    n = len(auth)
    result: dict[str, Any] = {
        "settings": {"ndim": auth.ndim, "image_shape": list(auth.images.shape[1:]), "r_max": auth.r_max,
                     "connectivity": auth.connectivity, "seed": seed},
        "x": {k: v for k, v in auth.x.items()},
        "authentic": {"n": n, "porosity": mean_std(auth.porosity),
                      "scalars": {k: mean_std(v) for k, v in auth.scalars.items()},
                      "curves": {k: dict(zip(("mean", "std"), _mean_curve(v))) for k, v in auth.curves.items()},
                      "diversity": pairwise_correlation(auth.images, max_images)},
        "generated": {},
        "noise_floor": None,
    }
    if labels:
        label_options = {**LABEL_OPTIONS, **(label_options or {})}
        tables = {name: label_values(d.images, **label_options) for name, d in (("authentic", auth), *gens.items())}
        result["authentic"]["labels"] = {k: mean_std(v) for k, v in tables["authentic"].items()}
        result["settings"]["labels"] = label_options
    if c2st is not False:
        from .c2st import C2ST_DEFAULTS, c2st_halves
        from .c2st import c2st as _c2st

        c2st_options = {} if c2st is True else dict(c2st)
        held, _ = as_binary_batch(auth.images if held_out is None else held_out, ndim=2, name="held_out")
        result["settings"]["c2st"] = {**C2ST_DEFAULTS, **c2st_options, "n_held_out": len(held)}
    for name, desc in gens.items():
        entry = _compare(auth, desc, max_images)
        del entry["reference_diversity"]
        if labels:
            entry["labels"] = label_distances(tables[name], tables["authentic"])
        if c2st is not False:
            entry["c2st"] = _c2st(desc.images, held, name=f"generated set {name!r}", **c2st_options)
        result["generated"][name] = entry
    if noise_floor and n >= 4:
        order = np.random.default_rng(seed).permutation(n)
        index_a, index_b = np.sort(order[:n // 2]), np.sort(order[n // 2:2 * (n // 2)])
        entry = _compare(auth.subset(index_a), auth.subset(index_b), max_images)
        entry["n"] = n // 2
        if labels:
            entry["labels"] = label_distances({k: v[index_b] for k, v in tables["authentic"].items()},
                                              {k: v[index_a] for k, v in tables["authentic"].items()})
        if c2st is not False:
            entry["c2st"] = c2st_halves(held, split_seed=seed, **c2st_options)
        result["noise_floor"] = entry
    return jsonable(result)


def mean_std(values: ArrayLike) -> dict[str, float]:
    """``{"mean", "std"}`` of the finite values: the summary of every set in :func:`compare_sets`.

    The standard deviation is the sample one (``ddof=``:data:`DDOF`); NaN where undefined (no
    finite value; fewer than two for the std).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std(ddof=DDOF)) if len(v) > DDOF else math.nan}


def save_json(path: str | os.PathLike, result: dict, *, overwrite: bool = False) -> Path:
    """Write a :func:`compare_sets` result as JSON (:func:`microvae.io.write_json`), atomically
    (refuses to replace a file unless ``overwrite``)."""
    return write_json(path, result, overwrite=overwrite, indent=1)


def plot_comparison(path: str | os.PathLike, result: dict, *, curves: Sequence[str] | None = None,
                    overwrite: bool = False, dpi: int = 120) -> Path:
    """Figure of the mean curves ± 1 std band of each set: authentic and every generated set.

    Parameters
    ----------
    path : str or Path
        PNG to write (atomically; an existing file is kept unless ``overwrite``).
    result : dict
        A :func:`compare_sets` result.
    curves : sequence of str, optional
        Curve names (default: all of :data:`CURVES`).
    overwrite : bool
    dpi : int

    Returns
    -------
    Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(curves) if curves is not None else list(CURVES)
    unknown = [c for c in names if c not in CURVES]
    if unknown:
        raise ValueError(f"unknown curves {unknown}; choose from {list(CURVES)}")
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(fig)
    sets = [("authentic", result["authentic"]), *result["generated"].items()]
    for i, key in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        x = np.asarray(result["x"][key], dtype=float)
        for label, entry in sets:
            mean = np.asarray(entry["curves"][key]["mean"], dtype=float)
            std = np.asarray(entry["curves"][key]["std"], dtype=float)
            line, = ax.plot(x, mean, label=f"{label} ({entry['n']})", lw=2 if label == "authentic" else 1.2,
                            color="black" if label == "authentic" else None)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
        if key.startswith("chord"):
            ax.set_xlim(1, min(x[-1], 4 * result["settings"]["r_max"]))
        ax.set_xlabel(f"{CURVES[key][0]} (pixels)")
        ax.set_title(CURVES[key][1], fontsize=8)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()), overwrite=overwrite)


def _fmt(value, digits=3):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def format_table(result: dict, *, digits: int = 3) -> str:
    """A Markdown table of a :func:`compare_sets` result: one column per generated set and one for
    the noise floor (authentic half vs half)."""
    cols = [(name, e) for name, e in result["generated"].items()]
    if result["noise_floor"] is not None:
        cols.append(("noise floor", result["noise_floor"]))
    a = result["authentic"]
    f = lambda v: _fmt(v, digits)  # noqa: E731
    header = ["quantity", f"authentic ({a['n']})"] + [f"{n} ({e['n']})" for n, e in cols]
    rows = [["porosity mean ± std", f"{f(a['porosity']['mean'])} ± {f(a['porosity']['std'])}"]
            + [f"{f(e['porosity']['mean'])} ± {f(e['porosity']['std'])}" for _, e in cols]]
    porosity_rows = (("ks_pvalue", "porosity KS p"), ("w1_rel", "porosity W1/σ"), ("std_ratio", "porosity std ratio"))
    for key, label in porosity_rows:
        rows.append([label, ""] + [f(e["porosity"][key]) for _, e in cols])
    for key in CURVES:
        rows.append([f"{key}: max / rms diff", ""]
                    + [f"{f(e['curves'][key]['max_diff'])} / {f(e['curves'][key]['rms_diff'])}" for _, e in cols])
    for key in SCALARS:
        rows.append([f"{key}: mean (rel diff, W1/σ)", f(a["scalars"][key]["mean"])]
                    + [f"{f(e['scalars'][key]['mean'])} ({f(e['scalars'][key]['rel_diff'])}, "
                       f"{f(e['scalars'][key]['w1_rel'])})" for _, e in cols])
    rows.append(["diversity (pairwise corr.)", f(a["diversity"])] + [f(e["diversity"]) for _, e in cols])
    rows.append(["3x3 pattern JS divergence, mbit", ""]
                + [f(None if e["pattern_js"] is None else 1000 * e["pattern_js"]) for _, e in cols])
    for key, s in a.get("labels", {}).items():
        rows.append([f"label {key}: mean (W1/σ, KS p)", f(s["mean"])]
                    + [f"{f(e['labels'][key]['mean'])} ({f(e['labels'][key]['w1_rel'])}, "
                       f"{_fmt(e['labels'][key]['ks_pvalue'], 2)})" for _, e in cols])
    if "c2st" in result["settings"]:
        rows.append([f"C2ST accuracy [95 % CI] vs {result['settings']['c2st']['n_held_out']} held-out", "0.5"]
                    + [f"{f(e['c2st']['accuracy'])} [{f(e['c2st']['ci'][0])}, {f(e['c2st']['ci'][1])}]"
                       for _, e in cols])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
