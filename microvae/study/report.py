"""The outputs of a study: ``results.json`` (assembled from the cells), the figures and ``report.md``
(rendered from ``results.json`` alone, so the two never disagree)."""
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io import provenance
from .config import StudyConfig, paper_differences
from .rundir import RunDir
from .stats import summarize, verdict

__all__ = ["assemble_results", "write_figures", "headline_table", "morphology_table", "realism_table", "render_report"]


def assemble_results(config: StudyConfig, digest: str, data: dict | None, split: dict[str, np.ndarray],
                     cells: list[dict], distribution: dict, timing: dict, figures: dict[str, Path], settings: dict,
                     pool_sizes: dict, morphology: dict, realism: dict | None = None) -> dict:
    """The ``results.json`` object of a finished study: configuration, data, split, every
    training cell, the summary and verdict, distribution and morphology statistics, realism, timing."""
    props = config.properties
    baseline = [c for c in cells if c["generator"] is None]
    summary = summarize(cells, props)
    return {
        "config": config.to_dict(), "generator_settings": settings, "digest": digest, "data": data or {},
        "split": {k: v.tolist() for k, v in split.items()},
        "generated_usable": pool_sizes,
        "baseline": {p: [c["r2"][p] for c in baseline] for p in props},
        "augmented": [{"generator": c["generator"], "added": c["added"], "draw": c["draw"], "r2": c["r2"],
                       "rmse": c["rmse"], "n_train": c["n_train"], "epochs": c["epochs"], "cnn_seed": c["cnn_seed"]}
                      for c in cells if c["generator"] is not None],
        "baseline_cells": [{"draw": c["draw"], "r2": c["r2"], "rmse": c["rmse"], "epochs": c["epochs"],
                            "cnn_seed": c["cnn_seed"]} for c in baseline],
        "summary": summary, "verdict": verdict(summary, config), "distribution": distribution,
        "morphology": morphology, "realism": realism,
        "timing": timing, "figures": {k: Path(v).name for k, v in figures.items()},
        "provenance": provenance({}),
    }


_COLORS = {"authentic": "black", "vae": "tab:blue", "mrf": "tab:orange"}


def write_figures(run: RunDir, auth_images: np.ndarray, table: dict[str, np.ndarray], split: dict[str, np.ndarray],
                  gen: dict[str, dict], props: Sequence[str], cells: list[dict], s2_curves: dict[str, np.ndarray],
                  config: StudyConfig, morphology: dict) -> dict[str, Path]:
    """Write the study's figures (sample mosaics, property histograms, S2 and morphology curves,
    R² against added samples) into the run folder; returns their paths by name."""
    from ..compare import plot_comparison
    from ..correlations import radial_distances
    from ..plotting import mosaic, plot_s2, save_figure, subplots

    fig_dir = run.file("figures")
    paths = {}
    n_show = 16
    test = split["test"]
    # Square 4 x 4 mosaics, shown side by side in the report as in the paper's Fig. 7.
    paths["mosaic_authentic"] = mosaic(fig_dir / "mosaic_authentic.png", auth_images[test[:n_show]], ncols=4,
                                       title="authentic (test images)", overwrite=True)
    for name, g in gen.items():
        paths[f"mosaic_{name}"] = mosaic(fig_dir / f"mosaic_{name}.png", g["images"][:n_show], ncols=4,
                                         title=f"{name.upper()} samples", overwrite=True)

    quantities = ["porosity", *props]
    fig, axes = subplots(1, len(quantities), figsize=(3.2 * len(quantities), 2.8), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        sets = [("authentic", table[q])] + [(n, g["table"][q][g["usable"]]) for n, g in gen.items()
                                            if len(g["usable"])]
        # Bins span the bulk of all sets; a few extreme samples would otherwise squash the rest.
        lo = min(np.nanpercentile(v, 0.5) for _, v in sets)
        hi = max(np.nanpercentile(v, 99.5) for _, v in sets)
        bins = np.linspace(lo, hi, 31) if hi > lo else 10
        for name, v in sets:
            ax.hist(v, bins=bins, density=True, histtype="step", lw=1.5, color=_COLORS.get(name), label=name)
        ax.set_xlabel(q)
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=8)
    paths["histograms"] = save_figure(fig, fig_dir / "histograms.png", overwrite=True)

    r_max = s2_curves["authentic"].shape[1] - 1
    names = list(s2_curves)
    paths["s2"] = plot_s2(fig_dir / "s2.png", radial_distances(r_max), [s2_curves[n] for n in names], names,
                          overwrite=True)
    paths["morphology"] = plot_comparison(fig_dir / "morphology.png", morphology, overwrite=True)

    summary = summarize(cells, props)
    fig, axes = subplots(1, len(props), figsize=(3.6 * len(props), 3.0), squeeze=False)
    for ax, p in zip(axes[0], props):
        b = summary["baseline"][p]
        ax.axhline(b["mean"], color="gray", lw=1, label="baseline")
        if np.isfinite(b["std"]):
            ax.axhspan(b["mean"] - b["std"], b["mean"] + b["std"], color="gray", alpha=0.2)
        for k, name in enumerate(gen):
            sizes = [m for m in config.added if str(m) in summary.get(name, {})]
            means = [summary[name][str(m)][p]["mean"] for m in sizes]
            stds = [np.nan_to_num(summary[name][str(m)][p]["std"]) for m in sizes]
            # Offset the generators a little so error bars do not hide each other.
            xs = np.asarray(sizes, dtype=float) * (1 + 0.02 * (k - (len(gen) - 1) / 2))
            ax.errorbar(xs, means, yerr=stds, marker="o", ms=4, capsize=3, color=_COLORS.get(name),
                        label=name.upper())
        ax.set_xlabel("generated samples added")
        ax.set_title(p)
    axes[0][0].set_ylabel("test R²")
    axes[0][-1].legend(fontsize=8)
    paths["r2_vs_added"] = save_figure(fig, fig_dir / "r2_vs_added.png", overwrite=True)
    return paths


def _nan(x):
    """A value of ``results.json``, where NaN is written as null, as the number it was."""
    return math.nan if x is None else x


def _pm(s, digits=3):
    mean, std = _nan(s["mean"]), _nan(s["std"])
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f}"


def _num(x, digits=3):
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def headline_table(results: dict) -> str:
    """The Markdown table of test R² (mean ± std over draws) per generator, size and property."""
    cfg, summary = results["config"], results["summary"]
    props = cfg["properties"]
    lines = ["| generator | added | draws | " + " | ".join(f"R² {p}" for p in props) + " |",
             "|---|---:|---:|" + "---:|" * len(props)]
    base = summary["baseline"]
    lines.append(f"| none (baseline) | 0 | {base[props[0]]['n']} | " + " | ".join(_pm(base[p]) for p in props) + " |")
    for g in cfg["generators"]:
        for m in cfg["added"]:
            s = summary.get(g, {}).get(str(m))
            if s:
                lines.append(f"| {g.upper()} | {m} | {s[props[0]]['n']} | "
                             + " | ".join(_pm(s[p]) for p in props) + " |")
    return "\n".join(lines)


# Table labels in the order of microvae.compare.CURVES (the figure's order).
_CURVE_LABELS = {"s2": "S2(r)", "lineal_path_pore": "lineal path L(r), pore",
                 "lineal_path_solid": "lineal path L(r), solid", "chord_pore": "chord-length distribution, pore",
                 "chord_solid": "chord-length distribution, solid", "cluster": "two-point cluster function C2(r), pore"}
_SCALAR_LABELS = {"specific_surface": "specific surface (face count), 1/px",
                  "specific_surface_s2": "specific surface from S2'(0), 1/px",
                  "euler_density": "Euler characteristic per area, 1/px²",
                  "perimeter_density": "pore perimeter per area, 1/px",
                  "cluster_density": "pore clusters per area, 1/px²",
                  "largest_cluster_fraction": "largest-cluster fraction of the pore pixels",
                  "percolation_fraction": "percolation (fraction of axes spanned)",
                  "mean_chord_pore": "mean chord length, pore, px", "mean_chord_solid": "mean chord length, solid, px",
                  "pore_solidity": "pore solidity (area / convex hull, area-weighted)"}


def _signed(x, digits=3):
    return "–" if x is None or not np.isfinite(x) else f"{x:+.{digits}g}"


def morphology_table(results: dict) -> str:
    """The Markdown table of the morphology comparison (``results["morphology"]``, a
    :func:`microvae.compare.compare_sets` result): one row per quantity with the authentic value,
    then the difference from it of the noise floor (authentic half vs half) and of each generator.

    Scalars: difference of the means (Wasserstein-1 distance over the authentic std); curves:
    largest / RMS difference of the mean curve; diversity: the value of each set.
    """
    m = results["morphology"]
    a = m["authentic"]
    cols = ([(f"noise floor ({m['noise_floor']['n']} vs {m['noise_floor']['n']})", m["noise_floor"])]
            if m["noise_floor"] else [])
    cols += [(f"{g.upper()} ({e['n']})", e) for g, e in m["generated"].items()]

    def pm(s):
        return f"{_num(s['mean'])} ± {_num(s['std'])}"

    rows = [("porosity: mean ± std (Δ mean)", pm(a["porosity"]),
             [_signed(e["porosity"]["mean_diff"]) for _, e in cols]),
            ("porosity: std ratio", "", [_num(e["porosity"]["std_ratio"]) for _, e in cols]),
            ("porosity: W1/σ (KS p)", "",
             [f"{_num(e['porosity']['w1_rel'])} ({_num(e['porosity']['ks_pvalue'], 2)})" for _, e in cols])]
    for k in [k for k in _CURVE_LABELS if k in a["curves"]] + [k for k in a["curves"] if k not in _CURVE_LABELS]:
        rows.append((f"{_CURVE_LABELS.get(k, k)}: max / RMS Δ of the mean curve", "",
                     [f"{_num(e['curves'][k]['max_diff'])} / {_num(e['curves'][k]['rms_diff'])}" for _, e in cols]))
    for k, s in a["scalars"].items():
        rows.append((f"{_SCALAR_LABELS.get(k, k)}: mean ± std (Δ mean, W1/σ)", pm(s),
                     [f"{_signed(e['scalars'][k]['mean_diff'])} ({_num(e['scalars'][k]['w1_rel'])})"
                      for _, e in cols]))
    rows.append(("diversity, mean pairwise correlation (value)", _num(a["diversity"]),
                 [_num(e["diversity"]) for _, e in cols]))
    if all("pattern_js" in e for _, e in cols):  # results.json files written before it lack it
        rows.append(("3×3 pattern JS divergence from the authentic set, mbit (value)", "",
                     [_num(None if e["pattern_js"] is None else 1000 * e["pattern_js"]) for _, e in cols]))
    lines = [f"| quantity | authentic ({a['n']}) | " + " | ".join(name for name, _ in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    lines += [f"| {q} | {v} | " + " | ".join(c) + " |" for q, v, c in rows]
    return "\n".join(lines)


def realism_table(results: dict) -> str:
    """The Markdown table of the realism section: per generator and for the noise floor, the
    classifier two-sample test's accuracy against held-out authentic images (``results["realism"]``),
    the 3x3 pattern divergence and the pore solidity's W1/σ (``results["morphology"]``) and each
    label's W1/σ."""
    r, m = results["realism"], results["morphology"]
    keys = list(r["labels"]["reference"])
    head = ["set", "C2ST accuracy [95 % CI]", "3×3 pattern JS, mbit", "pore solidity W1/σ"] + [
        f"W1/σ {k}" for k in keys]
    sets = [("noise floor", r["c2st"]["noise_floor"], m["noise_floor"], r["labels"]["reference"])]
    sets += [(g.upper(), r["c2st"][g], m["generated"].get(g), r["labels"][g]) for g in r["labels"] if g != "reference"]

    def test(t):
        if "skipped" in t:
            return f"– ({t['skipped']})"
        return f"{t['accuracy']:.3f} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}]"

    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, t, morph, labels in sets:
        js = _num(1000 * morph["pattern_js"]) if morph and morph.get("pattern_js") is not None else "–"
        solidity = _num(morph["scalars"]["pore_solidity"]["w1_rel"]) if morph else "–"
        lines.append(f"| {name} | {test(t)} | {js} | {solidity} | "
                     + " | ".join(_num(labels[k]["w1_rel"]) for k in keys) + " |")
    return "\n".join(lines)


def _realism_text(results):
    r = results["realism"]
    floor = r["c2st"]["noise_floor"]
    return ["## Realism: can a classifier tell the samples from the rock?", "",
            f"Classifier two-sample test (`microvae.c2st`): a small CNN learns to tell a generator's samples from "
            f"{r['n_held_out']} held-out authentic images that no generator was fitted on, and its accuracy on "
            "images it did not train on is reported (0.5: indistinguishable, 1: every image gives its set away; "
            "mean of the classifier seeds, 95 % interval). 3×3 pattern JS: Jensen–Shannon divergence of the "
            "frequencies of the local 3×3 pixel configurations (specks, rounded or cusped boundaries, thin necks). "
            "Pore solidity W1/σ: how far the pores' convexity is distributed from the authentic one. W1/σ of the "
            "labels: Wasserstein-1 distance over the authentic std. Noise floor: the classifier between two random "
            f"halves of the held-out images ({floor.get('n_per_class', '–')} per class), the patterns and solidity "
            "between two halves of the authentic images (as in the morphology section), the labels of the "
            "authentic test images against the training + validation images.", "", realism_table(results), ""]


def _morphology_text(results):
    m = results["morphology"]
    st = m["settings"]
    lines = ["## Morphology of generated vs authentic samples", "",
             f"Reference set: {m['reference']}. Measured with `microvae.compare.compare_sets` (curves up to "
             f"r = {st['r_max']} px, {st['connectivity']}-connected pores; chord lengths along the axes). The noise "
             "floor compares two disjoint random halves of the authentic images: differences of that size come "
             "from sampling alone (halves are smaller than the full sets, so the floor is a little above the "
             "sampling noise of the generator columns). Generator and noise-floor columns hold differences from the "
             "authentic value; W1/σ is the Wasserstein-1 distance divided by the authentic std.", "",
             morphology_table(results), ""]
    if m["not_compared"]:
        lines += [f"Not compared (fewer than two samples): {', '.join(g.upper() for g in m['not_compared'])}.", ""]
    lines += ["![morphology curves](figures/morphology.png)", ""]
    return lines


def render_report(results: dict) -> str:
    """``report.md`` text from a ``results.json`` object (so the report never disagrees with it)."""
    cfg, dist, verdict = results["config"], results["distribution"], results["verdict"]
    data = results.get("data") or {}
    pcfg = cfg["predictor"]
    lines = [
        f"# Augmentation study — preset `{cfg['preset']}`",
        "",
        f"microvae {results['provenance']['microvae_version']}, created {results['provenance']['created']}, "
        f"run digest `{results['digest']}`, total time {results['timing']['total_s'] / 60:.1f} min.",
        "",
        "## Setup",
        "",
        f"- Authentic data: {data.get('description', 'user images')}.",
        f"- {cfg['image_size']}×{cfg['image_size']} px images, split {cfg['n_train']} train / {cfg['n_val']} "
        f"validation / {cfg['n_test']} test (seed {cfg['seed']}); labels: `microvae.label` with "
        + ", ".join(f"{k}={v}" for k, v in cfg["label"].items()) + ".",
        f"- Generators ({', '.join(g.upper() for g in cfg['generators'])}) fitted on the "
        f"{cfg['n_train'] + cfg['n_val']} "
        f"training + validation images; {cfg['n_generated']} samples each, labeled the same way.",
        f"- CNN: 4 × (conv 3×3 + ReLU + max-pool 2), channels {tuple(pcfg['channels'])}, FC {pcfg['hidden']}, "
        f"{'one multi-output network' if pcfg['joint'] else 'one network per property'}, MSE on standardized "
        f"targets, Adam lr {pcfg['lr']}, batch {pcfg['batch_size']}, early stopping on validation loss "
        f"(patience {pcfg['patience']}, at most {pcfg['max_epochs']} epochs).",
        f"- Added generated samples: {', '.join(map(str, cfg['added']))}; {cfg['draws']} random draws per size "
        "(one when all samples are added); the baseline is repeated with the same CNN seeds.",
    ]
    if data.get("sampling"):
        lines.append(f"- Samples: {_sampling_text(data['sampling'])}.")
    reduced = paper_differences(cfg)
    if reduced:
        lines.append("- Departures from the paper's protocol (preset `paper`): " + "; ".join(reduced) + ".")
    lines += ["", "## Test R² with generated samples added (paper Fig. 8b)", "",
              "Mean ± standard deviation over draws, on the authentic test images.", "", headline_table(results), "",
              "![R² vs added samples](figures/r2_vs_added.png)", "", "## Verdict", ""]
    lines += _verdict_text(verdict, cfg)
    lines += ["", "## Distribution of generated vs authentic samples (paper Fig. 8a)", "",
              f"Authentic: all {dist['authentic']['n']} labeled images. KS = two-sample Kolmogorov–Smirnov "
              "statistic (p-value), W/σ = Wasserstein-1 distance divided by the authentic std. The reference row "
              "compares authentic test with authentic training + validation images: differences of that size are "
              "sampling noise.", "",
              "| set | n | quantity | mean ± std | KS (p) | W/σ |", "|---|---:|---|---:|---:|---:|"]
    for q in dist["quantities"]:
        a = dist["authentic"][q]
        lines.append(f"| authentic | {a['n']} | {q} | {_pm(a, 4)} | | |")
        ref = dist["reference"][q]
        lines.append(f"| reference | | {q} | | {_nan(ref['ks']):.3f} ({_num(ref['ks_pvalue'], 2)}) | "
                     f"{_num(ref['wasserstein_rel'], 3)} |")
        for g, e in dist["generators"].items():
            s = e[q]
            lines.append(f"| {g.upper()} | {s['n']} | {q} | {_pm(s, 4)} | {_nan(s['ks']):.3f} "
                         f"({_num(s['ks_pvalue'], 2)}) | "
                         f"{_num(s['wasserstein_rel'], 3)} |")
    lines += ["", "Diversity: mean pixel-wise correlation between two different images of a set (about 0 for "
              "independent samples, near 1 when a generator repeats one picture, i.e. mode collapse): "
              f"authentic {_num(dist.get('authentic_pairwise_correlation'), 3)}"
              + "".join(f", {g.upper()} {_num(e.get('pairwise_correlation'), 3)}"
                        for g, e in dist["generators"].items())
              + ".", ""]
    for g, e in dist["generators"].items():
        extra = f"; {e['n_flagged_invalid']} flagged outside the formulas' validity" if "n_flagged_invalid" in e else ""
        s2_diff = _nan(e["s2_max_abs_diff_of_mean"])
        lines.append(f"- {g.upper()}: {e['n_usable']} of {e['n']} samples with finite labels{extra}; largest "
                     f"difference of the mean S2 curve from the authentic one {s2_diff:.4f}.")
    lines += ["", "![property histograms](figures/histograms.png)", "", "![S2](figures/s2.png)", ""]
    if results.get("morphology"):  # results.json files written before the comparison lack it
        lines += _morphology_text(results)
    if results.get("realism"):
        lines += _realism_text(results)
    width = f"{100 // (1 + len(cfg['generators'])) - 1}%"
    lines += ["## Samples (paper Fig. 7)", "", "<p>" + " ".join(
        f'<img src="figures/mosaic_{name}.png" alt="{name}" width="{width}">'
        for name in ("authentic", *cfg["generators"])) + "</p>", ""]
    t = results["timing"]
    lines += ["## Timing", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k[:-2].replace('_', ' ')} | {v:.0f} |" for k, v in t.items()]
    lines += ["", "Full configuration, per-draw values and the split are in `results.json`; label tables in "
              "`labels/`.", ""]
    return "\n".join(lines)


def _sampling_text(note):
    if "volume_shape" in note:
        overlap = note["in_plane_overlap_px"]
        return (f"{note['kind']} of a {'×'.join(map(str, note['volume_shape']))} volume on a grid of step "
                f"{note['stride']} px ({note['grid_samples']} candidates; "
                + ("tiles do not overlap within a plane" if overlap == 0 else
                   f"**tiles overlap by {overlap} px**, so neighbouring samples in different splits are correlated")
                + ")")
    return f"{note['kind']} ({note['grid_samples']} candidates)"


def _verdict_text(v, cfg):
    out = []
    for g in cfg["generators"]:
        key = f"{g}_mean_gain_over_baseline"
        if key in v:
            n = len(v["sizes"]) * len(v["properties"])
            out.append(f"- {g.upper()} augmentation: mean change of test R² over the baseline "
                       f"{_nan(v[key]):+.3f} (averaged over sizes and properties); above the baseline in "
                       f"{v[f'{g}_cells_above_baseline']} of {n} (size, property) cells.")
    if "matches_paper" in v:
        per = ", ".join(f"{p} {_nan(d):+.3f}" for p, d in v["vae_minus_mrf_mean_r2"].items())
        out.append(f"- VAE minus MRF mean test R², averaged over sizes: {per}; the VAE is ahead in "
                   f"{v['vae_wins']} of {v['comparisons']} (size, property) comparisons (by more than two "
                   f"standard errors of the difference in {v['vae_clearly_ahead']}; the MRF by that margin in "
                   f"{v['mrf_clearly_ahead']}).")
        out.append("- **This run " + ("matches" if v["matches_paper"] else "does not match")
                   + " the paper's finding that VAE augmentation beats MRF augmentation.**")
    return out
