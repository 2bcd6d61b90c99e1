"""The distributions of the study's labels (porosity, ζ2, η2, E, D, k) of two image sets compared.

:func:`label_values` labels a set with :func:`microvae.label` under :data:`LABEL_OPTIONS`;
:func:`label_distances` compares the label distributions of two sets by
:func:`~microvae.compare.distribution_distance`.
"""
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .distances import distribution_distance

__all__ = ["LABELS", "LABEL_OPTIONS", "label_values", "label_distances"]

#: Labels of :func:`microvae.label` (the study's) compared by :func:`label_distances`.
LABELS = ("porosity", "zeta2", "eta2", "E", "D", "k")
#: Label options of :func:`label_values`: images are planar sections of a 3D rock (``d=3``) and
#: crops of a larger sample (non-periodic estimators).
LABEL_OPTIONS = {"d": 3, "periodic": False}


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
    from ..properties import LABEL_KEYS, label

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
