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

Modules: :mod:`.descriptors` (:func:`describe`), :mod:`.distances` (between value
distributions, pixel patterns and images), :mod:`.labels` (label distributions), :mod:`.sets`
(:func:`compare_sets`) and :mod:`.report` (JSON, figure, table). Every public name is
importable from ``microvae.compare``.
"""
from .descriptors import CURVES, SCALARS, Descriptors, describe
from .distances import (
    DDOF,
    distribution_distance,
    mean_std,
    nearest_correlation,
    pairwise_correlation,
    pattern_divergence,
)
from .labels import LABEL_OPTIONS, LABELS, label_distances, label_values
from .report import format_table, plot_comparison, save_json
from .sets import compare_sets

__all__ = ["Descriptors", "describe", "compare_sets", "distribution_distance", "pairwise_correlation",
           "nearest_correlation", "mean_std", "label_values", "label_distances", "pattern_divergence",
           "plot_comparison", "format_table", "save_json", "CURVES", "SCALARS", "DDOF", "LABELS", "LABEL_OPTIONS"]
