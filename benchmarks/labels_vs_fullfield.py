"""How good are the strong-contrast labels? Full-field De/D2, E/E1 and k against the labels on
non-overlapping Berea subvolumes (docs/labels_vs_fullfield/).

    OMP_NUM_THREADS=1 python benchmarks/labels_vs_fullfield.py compute --n 32 --size 64
    python benchmarks/labels_vs_fullfield.py report

``compute`` appends one JSON line per subvolume to ``OUT/subvolumes.jsonl`` (a rerun skips the
subvolumes already there, so it resumes); ``report`` reads it and writes ``report_numbers.md``
(the tables quoted in report.md), ``results.json``, ``results.csv`` and the scatter plots.
Per subvolume: full-field De/D2 (taufactor, reservoir faces), E/E1 (periodic FFT-CG) and k
(Stokes, mirrored along the flow axis), each per axis; strong-contrast labels (a) from the
subvolume's own 3D statistics (``label(vol[None], d=3, periodic=False)``) and (b) the paper's
way, from its 2D slices along the three axes (``label(slices, d=3, periodic=False)``, mean);
porosity alone and a Kozeny–Carman k as the cheap proxies. Needs ../shared/data/berea.zip.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "berea.zip"
DEFAULT_OUT = ROOT / "docs" / "labels_vs_fullfield"


def kozeny_carman(vol, constant=5.0):
    """``k = φ³ / (c S_v²)`` (pixel²), S_v the interface area per volume from the voxel-face
    count times 2/3 (the mean projection factor of a randomly oriented surface on the three
    lattice axes), Kozeny constant c = 5."""
    faces = sum(np.count_nonzero(np.diff(vol.astype(np.int8), axis=a)) for a in range(vol.ndim))
    s_v = (2.0 / 3.0) * faces / vol.size
    phi = vol.mean()
    return float(phi ** 3 / (constant * s_v ** 2)) if s_v > 0 else float("nan")


def grid_positions(shape, size, n, seed):
    starts = [np.arange(0, s - size + 1, size) for s in shape]
    grid = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape))
    rng = np.random.default_rng(seed)
    return grid[rng.permutation(len(grid))[:n]]


def compute(args):
    import torch

    from microvae.fullfield import solve_diffusivity, solve_elastic_moduli, solve_permeability
    from microvae.io import load
    from microvae.properties import label

    torch.set_num_threads(args.threads)
    vol = load(args.data, pore_value=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = out / "subvolumes.jsonl"
    def done():  # re-read before each subvolume: a second process may work from the other end
        if not lines.exists():
            return set()
        return {(r["size"], tuple(r["position"])) for r in map(json.loads, lines.read_text().splitlines())}

    dtype = getattr(torch, args.dtype)
    positions = grid_positions(vol.shape, args.size, args.n, args.seed)
    for pos in positions[::-1] if args.reverse else positions:
        key = (args.size, tuple(int(p) for p in pos))
        if key in done():
            continue
        sub = np.ascontiguousarray(vol[tuple(slice(p, p + args.size) for p in pos)])
        rec = {"size": args.size, "position": [int(p) for p in pos], "porosity": float(sub.mean())}
        t = time.perf_counter()
        dif = solve_diffusivity(sub)
        rec["time_D"] = time.perf_counter() - t
        t = time.perf_counter()
        ela = solve_elastic_moduli(sub, tol=args.tol, dtype=dtype)
        rec["time_E"] = time.perf_counter() - t
        t = time.perf_counter()
        flow = solve_permeability(sub, periodic=False, tol=args.tol, dtype=dtype)
        rec["time_k"] = time.perf_counter() - t
        rec.update(D_axes=dif["D"].tolist(), D_converged=bool(dif["converged"].all()),
                   D_iterations=dif["iterations"].tolist(), percolates=dif["percolates"].tolist(),
                   E=ela["E_rel"], K=ela["K"], G=ela["G"], C=np.asarray(ela["C"]).tolist(),
                   E_iterations=ela["iterations"], E_converged=bool(ela["converged"]),
                   k_axes=flow["k"].tolist(), k_iterations=flow["iterations"], k_converged=bool(flow["converged"]))
        t = time.perf_counter()
        lab3 = label(sub[None], d=3, periodic=False, workers=1)
        rec["time_label3d"] = time.perf_counter() - t
        from microvae.io import slices

        t = time.perf_counter()
        cut = slices(sub, args.size, axes=(0, 1, 2), stride=4)  # every 4th plane along each axis
        lab2 = label(cut, d=3, periodic=False, workers=1)
        rec["time_label_slices"] = time.perf_counter() - t
        rec["n_slices"] = len(cut)
        for name, lab in (("sc3d", lab3), ("slices", lab2)):
            rec[name] = {key: float(np.mean(lab[key])) for key in ("zeta2", "eta2", "E", "D", "k")}
            rec[name]["valid_fraction"] = float(np.mean(lab["valid"]))
        rec["k_kc"] = kozeny_carman(sub)
        with open(lines, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"{key}: phi {rec['porosity']:.3f} D {np.mean(rec['D_axes']):.4f} E {rec['E']:.3f} "
              f"k {np.mean(rec['k_axes']):.4f} | sc3d D {rec['sc3d']['D']:.4f} E {rec['sc3d']['E']:.3f} "
              f"| {rec['time_D']:.0f}+{rec['time_E']:.0f}+{rec['time_k']:.0f} s", flush=True)


def resolution(args):
    """The same crops at the native voxel size and refined 2x (each voxel split into 2³): how
    much of each full-field value is discretization of the voxel geometry."""
    import torch

    from microvae.fullfield import solve_diffusivity, solve_elastic_moduli, solve_permeability
    from microvae.io import load

    torch.set_num_threads(args.threads)
    vol = load(args.data, pore_value=0)
    out = Path(args.out)
    lines = out / "resolution.jsonl"
    done = {tuple(json.loads(x)["position"]) for x in lines.read_text().splitlines()} if lines.exists() else set()
    for pos in grid_positions(vol.shape, args.size, args.n, args.seed):
        if tuple(int(p) for p in pos) in done:
            continue
        crop = np.ascontiguousarray(vol[tuple(slice(p, p + args.size) for p in pos)])
        rec = {"position": [int(p) for p in pos], "size": args.size, "porosity": float(crop.mean())}
        for name, img, scale in (("native", crop, 1), ("refined", crop.repeat(2, 0).repeat(2, 1).repeat(2, 2), 2)):
            t = time.perf_counter()
            rec[name] = {"D": float(solve_diffusivity(img)["D"].mean()),
                         "E": solve_elastic_moduli(img, tol=args.tol, dtype=torch.float32)["E_rel"],
                         # k in native pixel² (the refined pixel is half as long)
                         "k": float(solve_permeability(img, periodic=False, tol=args.tol,
                                                       dtype=torch.float32)["k"].mean()) / scale ** 2,
                         "seconds": time.perf_counter() - t}
        with open(lines, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(rec, flush=True)


PROPERTIES = {"D": "De/D2", "E": "E/E1", "k": "k (pixel²)"}
#: The rock of ``compute`` (solve_elastic_moduli's defaults): E1 = 9 K1 G1 / (3 K1 + G1).
E1 = 9 * 4.3 * 3.8 / (3 * 4.3 + 3.8)


def directional_youngs(C):
    """E_i/E1 along each axis, E_i = 1/(C⁻¹)_ii: the stiffness under uniaxial stress along i
    (the stored Mandel C is in the units of K1)."""
    return 1 / np.diag(np.linalg.inv(np.asarray(C, dtype=float)))[:3] / E1


def _table(records):
    """Flat per-subvolume columns."""
    cols = {"x0": [], "y0": [], "z0": [], "porosity": [], "percolates": [], "converged": []}
    for r in records:
        for c, v in zip(("x0", "y0", "z0"), r["position"]):
            cols[c].append(v)
        cols["porosity"].append(r["porosity"])
        cols["percolates"].append(int(all(r["percolates"])))
        cols["converged"].append(int(r["D_converged"] and r["E_converged"] and r["k_converged"]))
    for prop in ("D", "k"):
        ax = np.array([r[f"{prop}_axes"] for r in records])
        cols[f"{prop}_ff"] = ax.mean(1)
        for a in range(3):
            cols[f"{prop}_ff_{a}"] = ax[:, a]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"{prop}_ff_anisotropy"] = ax.max(1) / ax.min(1)
    cols["E_ff"] = [r["E"] for r in records]
    ax = np.array([directional_youngs(r["C"]) for r in records])
    for a in range(3):
        cols[f"E_ff_{a}"] = ax[:, a]
    cols["E_ff_anisotropy"] = ax.max(1) / ax.min(1)
    for method in ("sc3d", "slices"):
        for prop in ("D", "E", "k", "zeta2", "eta2"):
            cols[f"{prop}_{method}"] = [r[method][prop] for r in records]
        cols[f"valid_{method}"] = [r[method]["valid_fraction"] for r in records]
    cols["k_kc"] = [r["k_kc"] for r in records]
    for t in ("time_D", "time_E", "time_k", "time_label3d", "time_label_slices"):
        cols[t] = [r[t] for r in records]
    cols["E_iterations"] = [r["E_iterations"] for r in records]
    cols["k_iterations"] = [r["k_iterations"] for r in records]
    return {k: np.asarray(v, dtype=float) for k, v in cols.items()}


def _partial_spearman(a, b, control):
    """Rank correlation of a and b with the (linear, in ranks) part explained by ``control``
    removed: what a label says about the full-field ranking beyond porosity."""
    from scipy.stats import pearsonr, rankdata

    ra, rb, rc = rankdata(a), rankdata(b), rankdata(control)
    X = np.column_stack([np.ones_like(rc), rc])
    res_a = ra - X @ np.linalg.lstsq(X, ra, rcond=None)[0]
    res_b = rb - X @ np.linalg.lstsq(X, rb, rcond=None)[0]
    return float(pearsonr(res_a, res_b).statistic)


def _stats(pred, ref, porosity):
    from scipy.stats import spearmanr

    ok = np.isfinite(pred) & np.isfinite(ref) & (ref > 0)
    rel = (pred[ok] - ref[ok]) / ref[ok]
    rho = spearmanr(pred[ok], ref[ok]).statistic if ok.sum() > 2 else float("nan")
    partial = _partial_spearman(pred[ok], ref[ok], porosity[ok]) if ok.sum() > 3 else float("nan")
    return {"n": int(ok.sum()), "spearman": float(rho), "spearman_beyond_porosity": partial,
            "median_abs_rel_error": float(np.median(np.abs(rel))), "bias_median_rel_error": float(np.median(rel)),
            "median_ratio": float(np.median(pred[ok] / ref[ok]))}


def _figure(t, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.2), dpi=120)
    axes = fig.subplots(1, 3)
    # Flagged: an axis without a pore path, a solve that did not converge, or an invalid label.
    bad = (t["percolates"] == 0) | (t["converged"] == 0)
    for ax, prop in zip(axes, ("D", "E", "k")):
        ref = t[f"{prop}_ff"]
        series = [("sc3d", "strong contrast, 3D statistics", "o"), ("slices", "strong contrast, 2D slices", "s")]
        if prop == "k":
            series.append(("kc", "Kozeny–Carman", "^"))
        lo, hi = np.inf, -np.inf
        for key, name, marker in series:
            pred = t[f"k_{key}"] if key == "kc" else t[f"{prop}_{key}"]
            invalid = bad | ((t[f"valid_{key}"] < 1) if key != "kc" else False)
            pos = ref > 0
            ax.scatter(ref[~invalid & pos], pred[~invalid & pos], marker=marker, s=18, alpha=0.75, label=name)
            if (invalid & pos).any():
                ax.scatter(ref[invalid & pos], pred[invalid & pos], marker="x", s=30, color="red",
                           label="flagged" if key == "sc3d" else None)
            vals = np.concatenate([ref[pos], pred[pos]])
            vals = vals[np.isfinite(vals) & (vals > 0)]
            lo, hi = min(lo, vals.min()), max(hi, vals.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
        if prop != "E":
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"full-field {PROPERTIES[prop]}")
        ax.set_ylabel(f"label {PROPERTIES[prop]}")
        ax.set_title(PROPERTIES[prop])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def report(args):
    from scipy.stats import spearmanr

    from microvae.io import atomic_write, save_table

    out = Path(args.out)
    records = [json.loads(line) for line in (out / "subvolumes.jsonl").read_text().splitlines() if line.strip()]
    unique = {}
    for r in records:  # two processes may both finish the subvolume where they met
        unique.setdefault((r["size"], tuple(r["position"])), r)
    records = [r for r in unique.values() if r["size"] == args.size]
    others = [r for r in unique.values() if r["size"] != args.size]
    t = _table(records)
    summary = {"n_subvolumes": len(records), "size": args.size, "properties": {}}
    for prop in ("D", "E", "k"):
        ref = t[f"{prop}_ff"]
        rows = {m: _stats(t[f"{prop}_{m}"], ref, t["porosity"]) for m in ("sc3d", "slices")}
        # Porosity alone: a ranking proxy only (E falls with porosity, so its ρ is negative).
        rows["porosity"] = {"spearman": float(spearmanr(t["porosity"], ref).statistic)}
        if prop == "k":
            rows["kozeny_carman"] = _stats(t["k_kc"], ref, t["porosity"])
        summary["properties"][prop] = {"full_field_median": float(np.median(ref)),
                                       "full_field_range": [float(ref.min()), float(ref.max())], "methods": rows}
        an = t[f"{prop}_ff_anisotropy"]
        summary["properties"][prop]["axis_max_over_min_median"] = float(np.median(an[np.isfinite(an)]))
    summary["flags"] = {"full_field_not_percolating": int((t["percolates"] == 0).sum()),
                        "full_field_not_converged": int((t["converged"] == 0).sum()),
                        "sc3d_invalid": int((t["valid_sc3d"] < 1).sum()),
                        "slices_with_any_invalid": int((t["valid_slices"] < 1).sum())}
    summary["seconds_per_subvolume_median"] = {k: float(np.median(t[k])) for k in
                                               ("time_D", "time_E", "time_k", "time_label3d", "time_label_slices")}
    summary["iterations_median"] = {"E": float(np.median(t["E_iterations"])), "k": float(np.median(t["k_iterations"]))}
    summary["other_sizes"] = [
        {"size": r["size"], "position": r["position"], "porosity": r["porosity"],
         "full_field": {"D": float(np.mean(r["D_axes"])), "E": r["E"], "k": float(np.mean(r["k_axes"]))},
         "full_field_axes": {"D": r["D_axes"], "E": directional_youngs(r["C"]).tolist(), "k": r["k_axes"]},
         "ratio_sc3d": {p: r["sc3d"][p] / v for p, v in (("D", np.mean(r["D_axes"])), ("E", r["E"]),
                                                         ("k", np.mean(r["k_axes"]))) if v > 0},
         "ratio_slices": {p: r["slices"][p] / v for p, v in (("D", np.mean(r["D_axes"])), ("E", r["E"]),
                                                             ("k", np.mean(r["k_axes"]))) if v > 0},
         "seconds": {"D": r["time_D"], "E": r["time_E"], "k": r["time_k"], "label3d": r["time_label3d"]}}
        for r in others]
    res_path = out / "resolution.jsonl"
    if res_path.exists():
        res = [json.loads(x) for x in res_path.read_text().splitlines() if x.strip()]
        change = {p: [r["refined"][p] / r["native"][p] - 1 for r in res if r["native"][p] > 0] for p in ("D", "E", "k")}
        summary["resolution"] = {"crops": res, "refined_over_native_minus_1": change}
    atomic_write(out / "results.json", lambda fh: json.dump(summary, fh, indent=2), mode="w", overwrite=True)
    save_table(out / "results.csv", t, {"source": "benchmarks/labels_vs_fullfield.py", "size": args.size},
               overwrite=True)
    _figure(t, out / "scatter.png")
    lines = [f"Subvolumes: {len(records)} of {args.size}³.", "",
             "| property | method | Spearman | Spearman beyond porosity | median abs rel. error | "
             "bias (median rel. error) | median ratio label/full-field | n |",
             "|---|---|---|---|---|---|---|---|"]
    for prop, block in summary["properties"].items():
        for m, st in block["methods"].items():
            if "n" in st:
                lines.append(f"| {PROPERTIES[prop]} | {m} | {st['spearman']:.3f} | "
                             f"{st['spearman_beyond_porosity']:+.2f} | {st['median_abs_rel_error']:.2f} | "
                             f"{st['bias_median_rel_error']:+.2f} | {st['median_ratio']:.2f} | {st['n']} |")
            else:
                lines.append(f"| {PROPERTIES[prop]} | {m} | {st['spearman']:.3f} | – | – | – | – | |")
    lines += ["", "Per-axis spread of the full-field values, max/min over the three axes (E: E_i = 1/(C⁻¹)_ii), "
              "median: " + ", ".join(f"{PROPERTIES[p]} {b['axis_max_over_min_median']:.3f}"
                                     for p, b in summary["properties"].items())]
    lines += ["", "```", json.dumps({k: v for k, v in summary.items() if k not in ("properties", "resolution")},
                                    indent=2), "```"]
    if "resolution" in summary:
        lines += ["", "Resolution (refined 2x / native - 1, per crop):", "```",
                  json.dumps(summary["resolution"]["refined_over_native_minus_1"]), "```"]
    text = "\n".join(lines) + "\n"
    atomic_write(out / "report_numbers.md", lambda fh: fh.write(text), mode="w", overwrite=True)
    print(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, func, n, size, seed in (("compute", compute, 32, 64, 0), ("resolution", resolution, 4, 32, 1)):
        c = sub.add_parser(name)
        c.add_argument("--data", default=str(DEFAULT_DATA))
        c.add_argument("--out", default=str(DEFAULT_OUT))
        c.add_argument("--n", type=int, default=n)
        c.add_argument("--size", type=int, default=size)
        c.add_argument("--seed", type=int, default=seed)
        c.add_argument("--tol", type=float, default=1e-2)
        c.add_argument("--threads", type=int, default=1)
        c.set_defaults(func=func)
        if name == "compute":
            c.add_argument("--dtype", default="float32", choices=("float32", "float64"))
            c.add_argument("--reverse", action="store_true",
                           help="work through the subvolumes from the last (a second process on the same output)")
    r = sub.add_parser("report")
    r.add_argument("--out", default=str(DEFAULT_OUT))
    r.add_argument("--size", type=int, default=64)
    r.set_defaults(func=report)
    args = p.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
