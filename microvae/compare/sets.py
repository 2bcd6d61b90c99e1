"""Compare generated image sets with an authentic one, against the noise floor of sampling.

:func:`compare_sets` measures one or several generated sets against the authentic images by
their descriptors (:mod:`microvae.compare.descriptors`), the distances of
:mod:`microvae.compare.distances` and, on request, the label distributions
(:mod:`microvae.compare.labels`) and the classifier two-sample test of
:mod:`microvae.c2st`; as the noise floor, two disjoint random halves of the authentic set are
compared with each other the same way. Every curve is averaged over the images of a set first
(the "mean curve"), then the sets' mean curves are compared.
"""
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import as_binary_batch
from ..io import jsonable
from .descriptors import CURVES, SCALARS, Descriptors, describe
from .distances import DDOF, distribution_distance, mean_std, pairwise_correlation, pattern_divergence
from .labels import LABEL_OPTIONS, label_distances, label_values

__all__ = ["compare_sets"]


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
        from ..c2st import C2ST_DEFAULTS, c2st_halves
        from ..c2st import c2st as _c2st

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
