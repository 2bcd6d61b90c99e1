"""Statistics of a study: summaries over draws, the match of generated to authentic
distributions (Fig. 8a), diversity, and the verdict.

Every mean ± std in the outputs comes from :func:`summary_stats` (sample std, ``DDOF = 1``),
which is :mod:`microvae.compare`'s summary: the same ``DDOF`` as the distribution distances and
the diversity (:func:`~microvae.compare.pairwise_correlation`) computed there.
"""
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..compare import DDOF, Descriptors, compare_sets, describe, distribution_distance, mean_std, pairwise_correlation
from .config import StudyConfig

__all__ = ["DDOF", "summary_stats", "compare_samples", "pairwise_correlation", "describe_sets", "distribution_match",
           "realism_match",
           "morphology_match", "summarize", "verdict"]


def summary_stats(values: ArrayLike) -> dict:
    """``{"n", "mean", "std"}`` of the finite values, as :mod:`microvae.compare` summarizes them."""
    return {"n": int(np.isfinite(np.asarray(values, dtype=np.float64)).sum()), **mean_std(values)}


def compare_samples(ref: ArrayLike, other: ArrayLike) -> dict:
    """Two-sample match of ``other`` to ``ref`` (:func:`microvae.compare.distribution_distance`):
    KS statistic and p-value, Wasserstein-1 distance, and that distance divided by the
    reference std (scale-free)."""
    d = distribution_distance(ref, other)
    return {"ks": d["ks"], "ks_pvalue": d["ks_pvalue"], "wasserstein": d["w1"], "wasserstein_rel": d["w1_rel"]}


def describe_sets(auth_images: np.ndarray, gen: dict[str, dict]) -> dict[str, Descriptors]:
    """Per-image descriptors (:func:`microvae.compare.describe`) of the authentic images and of
    every generated set, computed once for the S2 curves and the morphology comparison.

    Returns ``{"authentic": Descriptors, "<generator>": Descriptors}``.
    """
    out = {"authentic": describe(auth_images, name="authentic images")}
    out.update({name: describe(g["images"], name=f"{name} samples") for name, g in gen.items()})
    return out


def distribution_match(auth_images: np.ndarray, table: dict[str, np.ndarray], split: dict[str, np.ndarray],
                       gen: dict[str, dict], props: Sequence[str],
                       descriptors: dict[str, Descriptors]) -> tuple[dict, dict[str, np.ndarray]]:
    """Porosity, property and S2 match of every generated set to the authentic images (Fig. 8a).

    The reference row compares the authentic test images with the authentic training +
    validation images: the size of the statistics that sampling alone produces. The S2 curves
    are those of ``descriptors`` (:func:`describe_sets`).
    """
    quantities = ["porosity", *props]
    fit = np.concatenate([split["train"], split["val"]])
    s2_curves = {name: d.curves["s2"] for name, d in descriptors.items()}
    out: dict[str, Any] = {
        "quantities": quantities,
        "authentic": {"n": int(len(auth_images)), **{q: summary_stats(table[q]) for q in quantities}},
        "authentic_flagged_invalid": int((~table["valid"]).sum()) if "valid" in table else None,
        "authentic_pairwise_correlation": pairwise_correlation(auth_images),
        "reference": {"what": "authentic test vs authentic training + validation",
                      **{q: compare_samples(table[q][fit], table[q][split["test"]]) for q in quantities}},
        "generators": {}}
    auth_mean = s2_curves["authentic"].mean(axis=0)
    for name, g in gen.items():
        usable, gt = g["usable"], g["table"]
        entry: dict[str, Any] = {"n": int(len(g["images"])), "n_usable": int(len(usable)),
                 "s2_max_abs_diff_of_mean": float(np.abs(s2_curves[name].mean(axis=0) - auth_mean).max()),
                 "pairwise_correlation": pairwise_correlation(g["images"])}
        if "valid" in gt:
            entry["n_flagged_invalid"] = int((~gt["valid"]).sum())
        for q in quantities:
            entry[q] = {**summary_stats(gt[q][usable]), **compare_samples(table[q], gt[q][usable])}
        out["generators"][name] = entry
    return out, s2_curves


def morphology_match(descriptors: dict[str, Descriptors], *, seed: int) -> dict:
    """Morphology of every generated set against all the authentic images, by
    :func:`microvae.compare.compare_sets`, with its noise floor (two disjoint random halves of
    the authentic images, split with ``seed``).

    The authentic set is the one the distribution section (:func:`distribution_match`) compares
    with: every labeled authentic image (training, validation and test). Sets of fewer than two
    images cannot be compared and are listed under ``"not_compared"``.

    Returns
    -------
    dict
        The :func:`~microvae.compare.compare_sets` result (``generated`` empty when no set can be
        compared) plus ``reference`` (which authentic images) and ``not_compared``.
    """
    auth = descriptors["authentic"]
    sets = {k: d for k, d in descriptors.items() if k != "authentic" and len(d) >= 2}
    if sets:
        out = compare_sets(auth, sets, seed=seed)
    else:
        # compare_sets needs one generated set: the authentic ones alone give the authentic
        # summary and the noise floor.
        out = compare_sets(auth, {"authentic": auth}, seed=seed)
        out["generated"] = {}
    out["reference"] = (f"all {len(auth)} labeled authentic images (training + validation + test), as in the "
                        "distribution section")
    out["not_compared"] = [k for k in descriptors if k != "authentic" and k not in sets]
    return out


# Fewer images per class than this and the classifier test is not run (it would say nothing).
MIN_C2ST_IMAGES = 10


def realism_match(held_out: np.ndarray, table: dict[str, np.ndarray], split: dict[str, np.ndarray],
                  gen: dict[str, dict], options: dict, *, seed: int) -> dict:
    """Can a classifier tell each generator's samples from authentic images it never learned from,
    and how far are the distributions of all the labels?

    Parameters
    ----------
    held_out : ndarray
        Authentic images no generator was fitted on (the study's test images and the pool's
        unused images, plus any extra held-out images).
    table, split, gen :
        The authentic label table and split, and the generators' samples and label tables.
    options : dict
        :func:`microvae.c2st.c2st` options.
    seed : int
        Seeds the split of ``held_out`` into halves for the classifier's noise floor.

    Returns
    -------
    dict
        ``n_held_out``; ``c2st``: per generator the :func:`~microvae.c2st.c2st` result against
        ``held_out`` and ``"noise_floor"``, :func:`~microvae.c2st.c2st_halves` of ``held_out``
        (``{"skipped": reason}`` where fewer than :data:`MIN_C2ST_IMAGES` images per class
        exist); ``labels``: the :func:`~microvae.compare.label_distances` of every label of the
        tables (porosity, ζ2, η2 and the properties, as far as the labeller gives them) of each
        generator's usable samples from all labeled authentic images, and as the noise floor
        (``"reference"``) of the authentic test images from the training + validation images.
    """
    from ..c2st import c2st, c2st_halves
    from ..compare import LABELS, label_distances

    def run(n_class, fn, *args, **kwargs):
        if n_class < MIN_C2ST_IMAGES:
            return {"skipped": f"{n_class} images per class; the test needs {MIN_C2ST_IMAGES}"}
        return fn(*args, **kwargs)

    tests = {name: run(min(len(held_out), len(g["images"])), c2st, g["images"], held_out, name=f"{name} samples",
                       **options) for name, g in gen.items()}
    tests["noise_floor"] = run(len(held_out) // 2, c2st_halves, held_out, split_seed=seed, **options)
    keys = [k for k in LABELS if k in table]
    fit = np.concatenate([split["train"], split["val"]])
    labels = {"reference": label_distances({k: table[k][split["test"]] for k in keys},
                                           {k: table[k][fit] for k in keys}, keys=keys)}
    labels.update({name: label_distances({k: g["table"][k][g["usable"]] for k in keys}, table, keys=keys)
                   for name, g in gen.items()})
    return {"n_held_out": int(len(held_out)), "c2st": tests, "labels": labels}


def summarize(cells: list[dict], props: Sequence[str]) -> dict:
    """Mean, std and count of test R² per generator and size, from cell records.

    Returns ``{"baseline": {prop: stats}, "<generator>": {"<added>": {prop: stats}}}``.
    """
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        key = ("baseline", None) if c["generator"] is None else (c["generator"], c["added"])
        groups.setdefault(key, []).append(c)
    out: dict[str, Any] = {}
    for (g, m), group in groups.items():
        stats = {p: summary_stats([c["r2"][p] for c in group]) for p in props}
        if g == "baseline":
            out["baseline"] = stats
        else:
            out.setdefault(g, {})[str(m)] = stats
    return out


def verdict(summary: dict, config: StudyConfig) -> dict:
    """Plain comparison of generators by mean test R² over all sizes and properties."""
    gens = [g for g in config.generators if g in summary]
    out: dict[str, Any] = {"sizes": list(config.added), "properties": list(config.properties)}
    base = summary.get("baseline", {})
    for g in gens:
        gains = [summary[g][str(m)][p]["mean"] - base[p]["mean"] for m in config.added for p in config.properties
                 if str(m) in summary[g]]
        out[f"{g}_mean_gain_over_baseline"] = float(np.mean(gains))
        out[f"{g}_cells_above_baseline"] = int(sum(x > 0 for x in gains))
    if {"vae", "mrf"} <= set(gens):
        diffs: dict[str, list[float]] = {}
        clear = [0, 0]
        for p in config.properties:
            diffs[p] = []
            for m in config.added:
                v, r = summary["vae"][str(m)][p], summary["mrf"][str(m)][p]
                d = v["mean"] - r["mean"]
                diffs[p].append(d)
                # Standard error of the difference of two means over independent draws; sizes
                # run once (all samples) have no spread estimate and are not counted as clear.
                se = math.sqrt(v["std"] ** 2 / v["n"] + r["std"] ** 2 / r["n"]) if min(v["n"], r["n"]) > 1 else math.nan
                if np.isfinite(se) and abs(d) > 2 * se:
                    clear[d < 0] += 1
        flat = [x for v in diffs.values() for x in v]
        out["vae_minus_mrf_mean_r2"] = {p: float(np.mean(v)) for p, v in diffs.items()}
        out["vae_minus_mrf_by_size"] = {p: dict(zip(map(str, config.added), map(float, v))) for p, v in diffs.items()}
        out["vae_wins"] = int(sum(x > 0 for x in flat))
        out["comparisons"] = len(flat)
        out["vae_clearly_ahead"], out["mrf_clearly_ahead"] = clear
        # A majority of (size, property) comparisons, not the mean difference: one diverging
        # cell (a negative R²) would otherwise decide the verdict.
        out["matches_paper"] = bool(out["vae_wins"] > len(flat) / 2)
    return out
