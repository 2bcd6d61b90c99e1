"""Ablations of the morphology-aware VAE on real rock (docs/vae.md, "What makes the samples right").

The study's protocol on a segmented volume: ``authentic_pool`` cuts non-overlapping 64 px slices
along all three axes, ``split_indices`` picks 100 train + 100 validation images (the 200 the
generators learn from) and every other slice of the pool is held out for the measurement. Each
variant (a set of :class:`microvae.vae.TrainConfig` overrides on the quick preset) is trained
on the 200 images and sampled 1000 times with each binarization (matched threshold, 0.5
threshold, Bernoulli); ``--mrf`` fits the MRF baseline on the same 200 images instead. Samples
are saved, so :func:`microvae.compare.compare_sets` can score them against the held-out slices
(``--evaluate``) without training again.

    python -m benchmarks.vae_ablation train --variant strided_bce --seed 0 --out abl
    python -m benchmarks.vae_ablation mrf --seed 0 --out abl
    python -m benchmarks.vae_ablation evaluate --out abl --table abl/table.md
    python -m benchmarks.vae_ablation evaluate --out abl --realism --samplings fitted+smooth-matched

``--realism`` adds the columns of ``benchmarks/realism.py`` (classifier two-sample test against
the held-out slices, W1/σ of the labels E, D, k, 3x3 pattern divergence); the classifier costs
tens of seconds of CPU per row, so ``--samplings`` can restrict the samplings evaluated.

Needs ../shared/data/berea.zip (or --data, --pore-value).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from microvae.io import load

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "berea.zip"
STRIDED = {"downsample": "stride", "channels": [32, 32, 64, 64, 96, 96]}
# The quick preset before the strided layout was chosen (pooling layout, 1500 steps).
POOL = {"downsample": "pool", "channels": [16, 32, 64], "recon": "bce", "steps": 1500, "kl_warmup": 300,
        "style_start": 600, "style_warmup": 300}

# Overrides of the quick preset, by name. Names join the factors a variant changes; every
# variant but "preset" spells out its layout, so a name means the same model whatever the
# preset is.
VARIANTS = {
    "preset": {},
    "current": {"downsample": "pool", "channels": [16, 32, 64], "recon": "sse", "steps": 1000,
                "kl_warmup": 300, "style_start": 400, "style_warmup": 200},
    "strided_sse_plain": {**STRIDED, "recon": "sse", "style_mode": "none", "steps": 3000, "kl_warmup": 300},
    "strided_bce_plain": {**STRIDED, "recon": "bce", "style_mode": "none", "steps": 3000, "kl_warmup": 300},
    "strided_bce_style": {**STRIDED, "recon": "bce", "steps": 2000, "kl_warmup": 300, "style_start": 800,
                          "style_warmup": 400},
    "strided_bce_aug_plain": {**STRIDED, "recon": "bce", "style_mode": "none", "steps": 2000, "kl_warmup": 300,
                              "augment": True},
    "strided_bce_style_w02": {**STRIDED, "recon": "bce", "steps": 2000, "kl_warmup": 300, "style_start": 800,
                              "style_warmup": 400, "w_st": 0.2},
    "strided_bce_style_kl3": {**STRIDED, "recon": "bce", "steps": 2000, "kl_warmup": 300, "style_start": 800,
                              "style_warmup": 400, "w_kl": 3.0},
    "strided_bce_vgg19": {**STRIDED, "recon": "bce", "steps": 2000, "kl_warmup": 300, "style_start": 800,
                          "style_warmup": 400, "style_weights": "vgg19-normalized", "style_width": 1.0,
                          "style_batch": 4},
    "strided_bce_style_1000": {**STRIDED, "recon": "bce", "steps": 1000, "kl_warmup": 300, "style_start": 400,
                               "style_warmup": 200},
    # Gatys et al.'s layers: the first ReLU of each block instead of the last.
    "strided_bce_first_relus": {**STRIDED, "recon": "bce", "steps": 2000, "kl_warmup": 300, "style_start": 800,
                                "style_warmup": 400, "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]},
    # The pooling layout, and one factor of it changed at a time.
    "pool": POOL,
    "pool_sse": {**POOL, "recon": "sse"},
    "pool_plain": {**POOL, "style_mode": "none"},
    "pool_no_mc": {**POOL, "w_mc": 0.0},
    "pool_1000": {**POOL, "steps": 1000, "style_start": 400, "style_warmup": 200},
    "pool_vgg19": {**POOL, "style_weights": "vgg19-normalized", "style_width": 1.0, "style_batch": 4},
    # The authors' style term: Grams of mean-centred features, squared differences scaled by
    # 1 / (4 C^2 (HW)^2) (Grams here are F F^T / (C H W), hence w_st = 1/4), unit weights otherwise.
    "pool_authors_style": {**POOL, "style_center": True, "style_normalize": False, "w_st": 0.25, "w_mc": 1.0},
    "pool_first_relus": {**POOL, "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]},
}


def _data(args):
    """(the 200 images generators learn from, the held-out images)."""
    from microvae.study import authentic_pool, embedded_dataset, make_config, split_indices

    if args.data == "embedded":
        # The study's embedded synthetic set (make demo), with as many images as Berea's pool.
        pool = embedded_dataset(make_config("quick"), 756)
    else:
        volume = load(args.data, pore_value=args.pore_value)
        pool, _ = authentic_pool(volume[None], ndim=3, size=args.size, needed=300, seed=0)
    split = split_indices(len(pool), 100, 100, 100, seed=0)
    fit = np.sort(np.concatenate([split["train"], split["val"]]))
    held = np.setdiff1d(np.arange(len(pool)), fit)
    return pool[fit], pool[held]


def _train(args):
    import torch

    from microvae.vae import train_vae

    torch.set_num_threads(args.threads)
    fit, _ = _data(args)
    if args.variant not in VARIANTS:
        raise SystemExit(f"unknown variant {args.variant!r}; known: {sorted(VARIANTS)}")
    overrides = {**VARIANTS[args.variant], **json.loads(args.set)}
    tag = f"{args.variant}_s{args.seed}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = train_vae(fit, preset="quick", out_dir=out / "runs" / tag, seed=args.seed, progress=False,
                    image_size=args.size, **overrides)
    meta = {"variant": args.variant, "seed": args.seed, "overrides": overrides,
            "train_seconds": time.perf_counter() - t0, "threads": args.threads, "final_terms": run.history[-1]}
    (out / "runs" / tag / "ablation.json").write_text(json.dumps(meta, indent=2))
    print(tag, f"{meta['train_seconds']:.0f} s", flush=True)


def _mrf(args):
    from microvae.mrf import MRF

    fit, _ = _data(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = MRF().fit(fit, seed=args.seed)
    x = model.sample(args.n, size=args.size, seed=args.seed + 1000)
    np.savez_compressed(out / f"mrf_s{args.seed}.npz", samples=x)
    (out / f"mrf_s{args.seed}.json").write_text(json.dumps({"seed": args.seed,
                                                            "train_seconds": time.perf_counter() - t0}))
    print("mrf", args.seed, f"{time.perf_counter() - t0:.0f} s", flush=True)


# Ways of turning a trained VAE into binary samples: (binarize, latent, smooth px).
SAMPLINGS = {"0.5": ("threshold", "prior", 0.0), "bernoulli": ("bernoulli", "prior", 0.0),
             "matched": ("matched", "prior", 0.0), "matched+smooth1": ("matched", "prior", 1.0),
             "fitted": ("matched", "fitted", 0.0), "fitted+smooth0.5": ("matched", "fitted", 0.5),
             "fitted+smooth0.7": ("matched", "fitted", 0.7),
             "fitted+smooth1": ("matched", "fitted", 1.0), "fitted+smooth1.25": ("matched", "fitted", 1.25),
             "fitted+smooth1.5": ("matched", "fitted", 1.5),
             "fitted+smooth2": ("matched", "fitted", 2.0),
             # The width at which the samples' specific surface matches the training images'.
             "fitted+smooth-matched": ("matched", "fitted", "matched")}


def vae_samples(run_dir, fit, n, seed, names=tuple(SAMPLINGS)):
    """{sampling name: (n, S, S) samples} of the trained VAE in ``run_dir``, for the samplings ``names``."""
    from microvae.morphology import specific_surface
    from microvae.nn import VAE
    from microvae.vae import TrainConfig, TrainResult, check_samples, fit_latent, load_checkpoint, sample

    ckpt = load_checkpoint(run_dir)
    config = TrainConfig(**ckpt["config"])
    vae = VAE(**config.model_kwargs())
    vae.load_state_dict(ckpt["model"])
    vae.eval()
    porosity = fit.reshape(len(fit), -1).mean(axis=1)
    surface = float(specific_surface(fit).mean())
    fitted = fit_latent(vae, fit)
    out = {}
    for name in names:
        binarize, latent, smooth = SAMPLINGS[name]
        check = check_samples(vae, porosity, seed=ckpt["seed"], latent=fitted if latent == "fitted" else None,
                              smooth=smooth, surface=surface)
        result = TrainResult(run_dir=Path(run_dir), model=vae, config=config, step=ckpt["step"], history=[],
                             samples=check)
        out[name] = sample(result, n, seed=seed, binarize=binarize)
    return out


# The targets of the quick preset (issue "VAE fidelity" §5); curves marked "mrf" are judged
# against 1.5 x the MRF's difference on the same seed.
CURVE_TARGETS = {"s2": 0.015, "lineal_path_pore": "mrf", "lineal_path_solid": "mrf", "chord_pore": "mrf",
                 "chord_solid": "mrf", "cluster": "mrf"}
COLUMNS = ["phi_mean", "dphi", "phi_std_ratio", "s2_max", "lineal_path_pore_max", "lineal_path_solid_max",
           "chord_pore_max", "chord_solid_max", "cluster_max", "cluster_density_rel", "euler_density_rel",
           "specific_surface_rel", "diversity", "nearest_train"]
# With --realism (benchmarks/realism.py's measures against the held-out slices).
REALISM_COLUMNS = ["c2st", "w1_rel_E", "w1_rel_D", "w1_rel_k", "pattern_mbit"]


def realism_columns(images, held, held_labels, c2st_options, halves=None):
    """The --realism columns of one set (``halves``: the held-out indices of the two authentic
    halves, for the noise-floor row, whose set is ``held[halves[1]]`` against ``held[halves[0]]``)."""
    from benchmarks.realism import judge

    if halves is not None:
        a, b = halves
        row = judge(held[b], held[a], {k: v[a] for k, v in held_labels.items()}, c2st_options)
    else:
        row = judge(images, held, held_labels, c2st_options)
    return {"c2st": row["c2st"]["accuracy"], **{f"w1_rel_{k}": row["labels"][k]["w1_rel"] for k in "EDk"},
            "pattern_mbit": 1000 * row["pattern_js"]}


def score(entry):
    """The target quantities of one compared set (a ``compare_sets`` generated entry)."""
    phi = entry["porosity"]
    row = {"phi_mean": phi["mean"], "dphi": phi["mean_diff"], "phi_std_ratio": phi["std_ratio"]}
    for k in CURVE_TARGETS:
        row[f"{k}_max"] = entry["curves"][k]["max_diff"]
    for k in ("cluster_density", "euler_density", "specific_surface"):
        row[f"{k}_rel"] = entry["scalars"][k]["rel_diff"]
    row["diversity"] = entry["diversity"]
    return row


def passes(row, mrf_row):
    """Which targets a scored row meets (``mrf_row``: the MRF's row on the same seed)."""
    ok = {"porosity_mean": abs(row["dphi"]) <= 0.015, "porosity_std": 0.75 <= row["phi_std_ratio"] <= 1.33}
    for k, t in CURVE_TARGETS.items():
        ok[k] = row[f"{k}_max"] <= (t if t != "mrf" else 1.5 * mrf_row[f"{k}_max"])
    ok["cluster_density"] = abs(row["cluster_density_rel"]) <= 0.25
    ok["euler_density"] = abs(row["euler_density_rel"]) <= 0.25
    ok["diversity"] = row["diversity"] <= 0.02
    return ok


def _evaluate(args):
    from microvae.compare import compare_sets, describe, label_values, nearest_correlation

    fit, held = _data(args)
    out = Path(args.out)
    auth = describe(held)
    cache = out / "evaluation_rows.json"
    rows = json.loads(cache.read_text()) if cache.exists() else {}
    samplings = args.samplings.split(",") if args.samplings else list(SAMPLINGS)
    unknown = set(samplings) - set(SAMPLINGS)
    if unknown:
        raise SystemExit(f"unknown samplings {sorted(unknown)}; known: {sorted(SAMPLINGS)}")
    c2st_options = json.loads(args.c2st)

    def wanted(key):
        return key not in rows or (args.realism and "c2st" not in rows[key])

    held_labels = label_values(held) if args.realism else None
    if wanted("authentic:held-out halves"):
        floor = compare_sets(auth, {"x": held[:2]}, seed=0)["noise_floor"]
        rows["authentic:held-out halves"] = {**score(floor), "nearest_train": nearest_correlation(held, fit)}
        if args.realism:
            # compare_sets' split of seed 0, so the halves are the same images in every column.
            order = np.random.default_rng(0).permutation(len(held))
            halves = np.sort(order[:len(held) // 2]), np.sort(order[len(held) // 2:2 * (len(held) // 2)])
            rows["authentic:held-out halves"].update(realism_columns(None, held, held_labels, c2st_options, halves))
    sets = {}
    for path in sorted(out.glob("mrf_s*.npz")):
        with np.load(path) as z:
            sets[f"mrf_s{path.stem.split('_s')[1]}:mrf"] = z["samples"]
    for run_dir in sorted((out / "runs").glob("*_s*")):
        missing = [name for name in samplings if wanted(f"{run_dir.name}:{name}")]
        if not _finished(run_dir) or not missing:
            continue
        seed = int(run_dir.name.rsplit("_s", 1)[1])
        for name, x in vae_samples(run_dir, fit, args.n, seed + 1000, missing).items():
            sets[f"{run_dir.name}:{name}"] = x
    sets = {k: v for k, v in sets.items() if wanted(k)}
    if sets:
        result = compare_sets(auth, sets, seed=0, noise_floor=False)
        for k, entry in result["generated"].items():
            rows[k] = {**score(entry), "nearest_train": nearest_correlation(sets[k], fit)}
            if args.realism:
                rows[k].update(realism_columns(sets[k], held, held_labels, c2st_options))
            cache.write_text(json.dumps(rows, indent=1))
    table = _table(rows)
    (out / "evaluation.json").write_text(json.dumps(table, indent=1))
    columns = COLUMNS + [c for c in REALISM_COLUMNS if any(c in r for r in table)]
    lines = ["| variant | sampling | seeds | " + " | ".join(columns) + " | targets met |",
             "|" + "---|" * (len(columns) + 4)]
    for r in table:
        lines.append(f"| {r['variant']} | {r['sampling']} | {r['seeds']} | "
                     + " | ".join(f"{r[c]:.3f}" if c in r else "–" for c in columns) + f" | {r['met']} {r['failed']} |")
    text = "\n".join(lines)
    print(text)
    if args.table:
        Path(args.table).write_text(text + "\n")


def _finished(run_dir):
    """Whether the run in ``run_dir`` has reached its last step (runs still training are skipped)."""
    from microvae.vae import load_checkpoint

    if not (run_dir / "checkpoint.pt").is_file():
        return False
    ckpt = load_checkpoint(run_dir)
    return ckpt["step"] >= ckpt["config"]["steps"]


def _table(rows):
    """Rows averaged over seeds, with the targets met on average (against the MRF of each seed)."""
    groups = {}
    for key, row in rows.items():
        run, sampling = key.split(":")
        variant, _, seed = run.rpartition("_s")
        groups.setdefault((variant or run, sampling), {})[seed] = row
    mrf = {seed: r for (v, _), g in groups.items() if v == "mrf" for seed, r in g.items()}
    mrf_mean = {c: float(np.mean([r[c] for r in mrf.values()])) for c in COLUMNS} if mrf else None
    table = []
    for (variant, sampling), by_seed in groups.items():
        mean = {c: float(np.mean([r[c] for r in by_seed.values()])) for c in COLUMNS + REALISM_COLUMNS
                if all(c in r for r in by_seed.values())}
        ok = passes(mean, mrf_mean) if mrf_mean else {}
        table.append({"variant": variant, "sampling": sampling, "seeds": ",".join(sorted(by_seed)), **mean,
                      "met": f"{sum(ok.values())}/{len(ok)}", "failed": ", ".join(k for k, v in ok.items() if not v)})
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("train", "mrf", "evaluate"))
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="segmented volume, or 'embedded' (the study's synthetic set)")
    p.add_argument("--pore-value", type=int, default=0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--variant", default="preset")
    p.add_argument("--set", default="{}", help="extra overrides as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=1000, help="samples per binarization")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--table", default=None, help="also write the evaluation table (markdown) here")
    p.add_argument("--realism", action="store_true",
                   help="add the realism columns (C2ST, label W1/σ of E, D, k, 3x3 pattern divergence)")
    p.add_argument("--c2st", default="{}", help="options of microvae.c2st.c2st as JSON (with --realism)")
    p.add_argument("--samplings", default=None, help="comma-separated names of SAMPLINGS to evaluate (default all)")
    args = p.parse_args(argv)
    {"train": _train, "mrf": _mrf, "evaluate": _evaluate}[args.action](args)


if __name__ == "__main__":
    main(sys.argv[1:])
